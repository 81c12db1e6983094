-- Row-level security as a second wall that holds when a handler forgets a check.
--
-- * The tenant context no longer names a 'system' caller: the service's own work (sign-in
--   before anyone is signed in, session bookkeeping, keys) runs as lyceum_identity_system,
--   a role reached only by an explicit SET ROLE.
-- * Only our own roles may execute our functions.
-- * Rules about columns hold in the database: nobody changes their own status,
--   organization or roles, and a revoked session stays revoked.

CREATE OR REPLACE FUNCTION is_privileged() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT has_session_role('admin') OR has_session_role('service')
$$;

-- Whether a statement acts for a caller: the system role, the owner and superusers are
-- not restrained by the column rules.
CREATE FUNCTION acting_for_caller() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT current_user::text NOT IN ('lyceum_identity_system', 'lyceum_identity_owner')
     AND current_setting('is_superuser') = 'off'
$$;

ALTER DEFAULT PRIVILEGES FOR ROLE lyceum_identity_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

CREATE FUNCTION users_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = identity, pg_temp AS $$
BEGIN
  IF acting_for_caller() AND NOT is_privileged() AND OLD.id = current_user_id()
     AND (NEW.status <> OLD.status OR NEW.organization_id IS DISTINCT FROM OLD.organization_id) THEN
    RAISE EXCEPTION 'nobody changes their own status or organization'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER users_column_rules BEFORE UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION users_column_rules();

CREATE FUNCTION role_grants_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = identity, pg_temp AS $$
BEGIN
  IF acting_for_caller() AND NOT is_privileged()
     AND ((TG_OP <> 'INSERT' AND OLD.user_id = current_user_id())
          OR (TG_OP <> 'DELETE' AND NEW.user_id = current_user_id())) THEN
    RAISE EXCEPTION 'nobody grants, changes or revokes their own roles'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER role_grants_column_rules BEFORE INSERT OR UPDATE OR DELETE ON role_grants
  FOR EACH ROW EXECUTE FUNCTION role_grants_column_rules();

CREATE FUNCTION sessions_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = identity, pg_temp AS $$
BEGIN
  IF acting_for_caller() AND OLD.revoked_at IS NOT NULL
     AND (NEW.revoked_at IS NULL OR NEW.revoked_at <> OLD.revoked_at) THEN
    RAISE EXCEPTION 'a revoked session stays revoked' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER sessions_column_rules BEFORE UPDATE ON sessions
  FOR EACH ROW EXECUTE FUNCTION sessions_column_rules();

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA identity FROM PUBLIC;
