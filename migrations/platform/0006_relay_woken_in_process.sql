-- enqueue_event() without pg_notify. PostgreSQL serialises the commits of notifying
-- transactions on one lock, held through the commit's flush, so concurrent writers could
-- not share flushes; the relay is now woken by its own process after the commit
-- (Database::wake_relay), and polls for what other processes commit.
DO $kit$
BEGIN
  EXECUTE format($create$
    CREATE OR REPLACE FUNCTION enqueue_event(event_id uuid, event_subject text, event_envelope bytea)
    RETURNS void LANGUAGE plpgsql VOLATILE SET search_path = %1$I, pg_temp AS $body$
    BEGIN
      INSERT INTO outbox (id, subject, envelope) VALUES (event_id, event_subject, event_envelope);
    END
    $body$
  $create$, current_schema());
END
$kit$;
