-- The benchmark's projection: one row per event applied, with both ends of its lag.
CREATE TABLE applied_events (
  event_id    uuid PRIMARY KEY,
  occurred_at timestamptz NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

ALTER TABLE applied_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY applied_events_system ON applied_events
  USING ('system' = ANY (string_to_array(current_setting('lyceum.roles', true), ',')));
