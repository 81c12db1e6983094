-- The kit's steps of every write as SQL functions, so that a write done in one statement
-- (a service's own SQL function, e.g. learning's enroll()) takes them from here instead of
-- repeating them, and Tx uses the same definitions:
--   set_tenant_context: the caller's context for the rest of the transaction;
--   enqueue_event: an event into the outbox and the relay's wake-up at commit (PostgreSQL
--   delivers a transaction's identical notifications once).

-- Only pg_catalog's set_config: nothing to resolve through a search path.
CREATE FUNCTION set_tenant_context(user_id text, org_id text, roles text) RETURNS void
LANGUAGE sql VOLATILE AS $$
  SELECT pg_catalog.set_config('lyceum.user_id', coalesce(user_id, ''), true),
         pg_catalog.set_config('lyceum.org_id', coalesce(org_id, ''), true),
         pg_catalog.set_config('lyceum.roles', coalesce(roles, ''), true)
$$;

-- Pinned to this schema (and pg_temp last), so that no temporary table named outbox can
-- take the events; the relay's channel is named after the schema, as the relay listens.
DO $kit$
BEGIN
  EXECUTE format($create$
    CREATE FUNCTION enqueue_event(event_id uuid, event_subject text, event_envelope bytea)
    RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = %1$I, pg_temp AS $body$
    BEGIN
      INSERT INTO outbox (id, subject, envelope) VALUES (event_id, event_subject, event_envelope);
      PERFORM pg_notify(%2$L, '');
    END
    $body$
  $create$, current_schema(), 'lyceum_outbox_' || current_schema());
END
$kit$;
