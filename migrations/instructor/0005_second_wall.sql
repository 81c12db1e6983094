-- Row-level security as a second wall that holds when a handler forgets a check.
--
-- * The tenant context no longer names a 'system' caller: the service's own work (event
--   handlers, jobs) runs as lyceum_instructor_system, reached only by an explicit SET ROLE.
-- * Only our own roles may execute our functions.
-- * Rules about columns hold in the database: instructors do not verify or feature
--   themselves, and a payer records a payment only as pending, with no fee or outcome.

CREATE OR REPLACE FUNCTION is_privileged() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT has_session_role('admin') OR has_session_role('service')
$$;

-- Whether a statement acts for a caller: the system role, the owner and superusers are
-- not restrained by the column rules.
CREATE FUNCTION acting_for_caller() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT current_user::text NOT IN ('lyceum_instructor_system', 'lyceum_instructor_owner')
     AND current_setting('is_superuser') = 'off'
$$;

ALTER DEFAULT PRIVILEGES FOR ROLE lyceum_instructor_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

CREATE FUNCTION instructor_profiles_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = instructor, pg_temp AS $$
BEGIN
  IF acting_for_caller() AND NOT is_privileged()
     AND ((TG_OP = 'INSERT' AND (NEW.verified OR NEW.featured))
          OR (TG_OP = 'UPDATE' AND (NEW.verified <> OLD.verified OR NEW.featured <> OLD.featured))) THEN
    RAISE EXCEPTION 'only the platform verifies or features an instructor'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER instructor_profiles_column_rules BEFORE INSERT OR UPDATE ON instructor_profiles
  FOR EACH ROW EXECUTE FUNCTION instructor_profiles_column_rules();

-- A payer records their own payment, pending; its outcome and fee come from the payment
-- operators (platform admins and payment services).
CREATE POLICY payments_payer_insert ON payments FOR INSERT
  WITH CHECK (payer_id = current_user_id() AND status = 'pending' AND refunded_minor = 0
              AND fee_bps IS NULL AND fee_minor IS NULL AND fee_refunded_minor = 0
              AND provider_transaction_id IS NULL AND failure_reason IS NULL
              AND succeeded_at IS NULL AND failed_at IS NULL);

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA instructor FROM PUBLIC;
