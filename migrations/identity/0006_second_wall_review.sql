-- The second wall, tightened after review: a caller changes nothing of a session but
-- ending it (logging out); its owner and lifetime are the service's.
CREATE OR REPLACE FUNCTION sessions_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = identity, pg_temp AS $$
BEGIN
  IF acting_for_caller() AND (
       (OLD.revoked_at IS NOT NULL
        AND (NEW.revoked_at IS NULL OR NEW.revoked_at <> OLD.revoked_at))
       OR NEW.user_id <> OLD.user_id
       OR NEW.expires_at <> OLD.expires_at
       OR NEW.created_at <> OLD.created_at) THEN
    RAISE EXCEPTION 'a caller only ends a session' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA identity FROM PUBLIC;
