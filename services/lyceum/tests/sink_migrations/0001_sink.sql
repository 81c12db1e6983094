-- A consumer's projection for the event tests: one row per event applied.
CREATE TABLE sink_events (
  id          bigserial PRIMARY KEY,
  event_id    uuid NOT NULL,
  event_type  text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE sink_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY sink_events_system ON sink_events
  USING ('system' = ANY (string_to_array(current_setting('lyceum.roles', true), ',')));
