-- capacity_claim() and capacity_release() switch to the service's system role themselves,
-- for their own duration only (a function's SET clause is undone when it returns), so a
-- caller's transaction takes a seat in one round trip instead of three (switch, call,
-- switch back). The role is named, as every switch to it is; the runtime role may take it
-- because it is a member, and nothing else changes for the rest of the transaction.
-- Running as that role, they also pin their search path.
DO $kit$
DECLARE
  system_role text := 'lyceum_' || current_schema() || '_system';
BEGIN
  EXECUTE format('ALTER FUNCTION capacity_claim(uuid, text, uuid, bigint, timestamptz)
                    SET role = %I', system_role);
  EXECUTE format('ALTER FUNCTION capacity_claim(uuid, text, uuid, bigint, timestamptz)
                    SET search_path = %I, pg_temp', current_schema());
  EXECUTE format('ALTER FUNCTION capacity_release(uuid, uuid, text) SET role = %I', system_role);
  EXECUTE format('ALTER FUNCTION capacity_release(uuid, uuid, text)
                    SET search_path = %I, pg_temp', current_schema());
END
$kit$;
