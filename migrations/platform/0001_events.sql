-- The event tables every service schema carries, owned by the platform kit: the
-- transactional outbox, the consumers' inbox and the dead letters. Applied by
-- `lyceum migrate` in each service's schema before the service's own migrations
-- (tracked in _lyceum_kit_migrations).

-- Written in the same transaction as the state change; published by the relay.
CREATE TABLE outbox (
  id           uuid PRIMARY KEY,        -- the event id (UUID v7), also the Nats-Msg-Id
  subject      text NOT NULL,           -- relative to the bus prefix: identity.user.created
  envelope     bytea NOT NULL,          -- encoded lyceum.events.v1.EventEnvelope
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
-- The relay's claim query walks this index in id (= creation) order.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

-- One row per event a consumer has applied: a redelivery finds its row and is skipped.
CREATE TABLE inbox (
  consumer     text NOT NULL,
  event_id     uuid NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
CREATE INDEX inbox_processed_idx ON inbox (processed_at);

-- Messages a consumer gave up on after its maximum deliveries.
CREATE TABLE dead_letters (
  id          uuid PRIMARY KEY,
  consumer    text NOT NULL,
  subject     text NOT NULL,
  event_id    text NOT NULL,            -- as received; may not even be a UUID
  payload     bytea NOT NULL,
  error       text NOT NULL,
  deliveries  bigint NOT NULL,
  failed_at   timestamptz NOT NULL DEFAULT now(),
  replayed_at timestamptz
);
CREATE INDEX dead_letters_pending_idx ON dead_letters (failed_at) WHERE replayed_at IS NULL;

ALTER TABLE outbox       ENABLE ROW LEVEL SECURITY;
ALTER TABLE inbox        ENABLE ROW LEVEL SECURITY;
ALTER TABLE dead_letters ENABLE ROW LEVEL SECURITY;

-- Any request may add events to the outbox in its own transaction; only the service
-- itself (the relay, consumers, operators' commands) reads or changes these tables.
CREATE POLICY outbox_append ON outbox FOR INSERT WITH CHECK (true);
CREATE POLICY outbox_system ON outbox
  USING ('system' = ANY (string_to_array(current_setting('lyceum.roles', true), ',')));
CREATE POLICY inbox_system ON inbox
  USING ('system' = ANY (string_to_array(current_setting('lyceum.roles', true), ',')));
CREATE POLICY dead_letters_system ON dead_letters
  USING ('system' = ANY (string_to_array(current_setting('lyceum.roles', true), ',')));
