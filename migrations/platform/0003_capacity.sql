-- The capacity primitive every service shares (workshop seats, cohort caps, booking
-- seats, engagement hour budgets, credits): a pool with a remainder the database keeps
-- within bounds, and one claim row per caller's request, so that taking is idempotent
-- and giving back happens exactly once. Only the service's system role touches these
-- tables (row-level security on, no policy): callers reach them through the kit's
-- functions, inside their own transaction.

CREATE TABLE capacity_pools (
  id         uuid PRIMARY KEY,           -- the owning object's id: a workshop, a cohort, ...
  kind       text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,62}$'),
  capacity   bigint NOT NULL CHECK (capacity >= 0),
  remaining  bigint NOT NULL,
  version    bigint NOT NULL DEFAULT 0,  -- bumped by every change, for events and projections
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT capacity_pools_remaining_within_bounds CHECK (remaining BETWEEN 0 AND capacity)
);

CREATE TABLE capacity_claims (
  pool_id        uuid NOT NULL REFERENCES capacity_pools (id) ON DELETE CASCADE,
  request_id     text NOT NULL CHECK (length(request_id) BETWEEN 1 AND 200),
  holder_id      uuid NOT NULL,           -- what holds it: a registration, a booking, ...
  amount         bigint NOT NULL CHECK (amount > 0),
  claimed_at     timestamptz NOT NULL DEFAULT now(),
  hold_until     timestamptz,             -- a provisional claim (pending payment) expires
  released_at    timestamptz,
  release_reason text CHECK (length(release_reason) <= 100),
  PRIMARY KEY (pool_id, request_id),
  CHECK ((released_at IS NULL) = (release_reason IS NULL))
);
-- A holder has at most one live claim on a pool: releasing it twice cannot return twice.
CREATE UNIQUE INDEX capacity_claims_live_holder_key ON capacity_claims (pool_id, holder_id)
  WHERE released_at IS NULL;
CREATE INDEX capacity_claims_expiring_idx ON capacity_claims (hold_until)
  WHERE released_at IS NULL AND hold_until IS NOT NULL;

ALTER TABLE capacity_pools  ENABLE ROW LEVEL SECURITY;
ALTER TABLE capacity_claims ENABLE ROW LEVEL SECURITY;

-- Takes `wanted` from the pool for the request, once. Outcomes: 'claimed' (now),
-- 'replayed' (this request claimed before: nothing changes), 'released' (this request
-- claimed before and was given back), 'exhausted', 'held' (the holder already has a
-- live claim under another request), 'conflict' (the request id came with another holder
-- or amount), 'no_pool'. The pool row is updated last, so its lock is held only from
-- here to the caller's commit.
CREATE FUNCTION capacity_claim(
  pool uuid, request text, holder uuid, wanted bigint, hold timestamptz,
  OUT outcome text, OUT remaining bigint, OUT version bigint)
LANGUAGE plpgsql AS $$
DECLARE
  earlier record;
  inserted integer;
BEGIN
  PERFORM 1 FROM capacity_pools p WHERE p.id = pool;
  IF NOT FOUND THEN
    outcome := 'no_pool';
    RETURN;
  END IF;
  -- No conflict target: a second live claim of the holder (the partial unique index)
  -- is skipped like a repeated request, without the cost of an exception block.
  INSERT INTO capacity_claims (pool_id, request_id, holder_id, amount, hold_until)
  VALUES (pool, request, holder, wanted, hold)
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS inserted = ROW_COUNT;
  IF inserted = 0 THEN
    SELECT c.holder_id, c.amount, c.released_at INTO earlier
      FROM capacity_claims c WHERE c.pool_id = pool AND c.request_id = request;
    outcome := CASE WHEN NOT FOUND THEN 'held'
                    WHEN earlier.holder_id <> holder OR earlier.amount <> wanted THEN 'conflict'
                    WHEN earlier.released_at IS NOT NULL THEN 'released'
                    ELSE 'replayed' END;
    SELECT p.remaining, p.version INTO remaining, version FROM capacity_pools p WHERE p.id = pool;
    RETURN;
  END IF;
  UPDATE capacity_pools p SET remaining = p.remaining - wanted, version = p.version + 1, updated_at = now()
   WHERE p.id = pool AND p.remaining >= wanted
  RETURNING p.remaining, p.version INTO remaining, version;
  IF FOUND THEN
    outcome := 'claimed';
    RETURN;
  END IF;
  -- Not enough left: take back the claim row this call wrote.
  DELETE FROM capacity_claims c WHERE c.pool_id = pool AND c.request_id = request;
  outcome := 'exhausted';
  SELECT p.remaining, p.version INTO remaining, version FROM capacity_pools p WHERE p.id = pool;
END
$$;

-- Gives back the holder's live claim, exactly once: 'released', or 'not_held' when there
-- is none (never claimed, or given back already).
CREATE FUNCTION capacity_release(
  pool uuid, holder uuid, reason text,
  OUT outcome text, OUT remaining bigint, OUT version bigint, OUT request_id text)
LANGUAGE plpgsql AS $$
DECLARE
  given bigint;
BEGIN
  UPDATE capacity_claims c SET released_at = now(), release_reason = reason
   WHERE c.pool_id = pool AND c.holder_id = holder AND c.released_at IS NULL
  RETURNING c.amount, c.request_id INTO given, request_id;
  IF NOT FOUND THEN
    outcome := 'not_held';
    SELECT p.remaining, p.version INTO remaining, version FROM capacity_pools p WHERE p.id = pool;
    RETURN;
  END IF;
  UPDATE capacity_pools p SET remaining = p.remaining + given, version = p.version + 1, updated_at = now()
   WHERE p.id = pool
  RETURNING p.remaining, p.version INTO remaining, version;
  outcome := 'released';
END
$$;
