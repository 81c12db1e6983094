-- Learning, part 2: workshops, their facilitators, registrations (seats from the kit's
-- capacity pools, one pool per workshop with the workshop's id), attendance and feedback.
-- The same walls as courses: policies for who sees and writes which rows, and column
-- rules for what a caller may change in them; the service's bookkeeping (statistics,
-- seats, payment-driven changes) runs as lyceum_learning_system.

-- Whether a text names a time zone PostgreSQL knows (IANA names such as Europe/Berlin).
CREATE FUNCTION is_time_zone(name text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE SET search_path = learning, pg_temp AS $$
BEGIN
  PERFORM '2000-01-01 00:00'::timestamp AT TIME ZONE name;
  RETURN true;
EXCEPTION WHEN invalid_parameter_value OR feature_not_supported THEN
  RETURN false;
END
$$;

CREATE TABLE workshops (
  id                       uuid PRIMARY KEY,
  instructor_id            uuid NOT NULL,
  organization_id          uuid,
  title                    text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  description              text NOT NULL DEFAULT '' CHECK (length(description) <= 20000),
  pillar                   text NOT NULL CHECK (pillar IN ('adaptability', 'coaching', 'marketplace')),
  level                    text NOT NULL CHECK (level IN ('beginner', 'intermediate', 'advanced')),
  format                   text NOT NULL CHECK (format IN ('online', 'in_person', 'hybrid')),
  start_time               timestamptz NOT NULL,
  end_time                 timestamptz NOT NULL,
  time_zone                text NOT NULL CHECK (length(time_zone) <= 64 AND is_time_zone(time_zone)),
  location                 text NOT NULL DEFAULT '' CHECK (length(location) <= 500),
  meeting_url              text NOT NULL DEFAULT '' CHECK (length(meeting_url) <= 2048),
  capacity                 integer NOT NULL CHECK (capacity BETWEEN 1 AND 100000),
  price_minor              bigint NOT NULL DEFAULT 0 CHECK (price_minor >= 0),
  currency                 text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
  early_bird_price_minor   bigint,
  early_bird_ends_at       timestamptz,
  outcomes                 text[] NOT NULL DEFAULT '{}' CHECK (cardinality(outcomes) <= 50),
  tags                     text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 30),
  prerequisites            text[] NOT NULL DEFAULT '{}' CHECK (cardinality(prerequisites) <= 50),
  status                   text NOT NULL DEFAULT 'draft'
                           CHECK (status IN ('draft', 'published', 'archived', 'cancelled')),
  visibility               text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'organization')),
  featured                 boolean NOT NULL DEFAULT false,
  certificate_enabled      boolean NOT NULL DEFAULT false,
  certificate_template_url text NOT NULL DEFAULT '' CHECK (length(certificate_template_url) <= 2048),
  -- Statistics, O(1) per write in the same transaction as their source; `lyceum verify`
  -- recomputes them. Seats taken are the capacity pool's.
  attended_count           bigint NOT NULL DEFAULT 0 CHECK (attended_count >= 0),
  feedback_count           bigint NOT NULL DEFAULT 0 CHECK (feedback_count >= 0),
  satisfaction_sum         bigint NOT NULL DEFAULT 0,
  average_satisfaction     numeric(3, 2) GENERATED ALWAYS AS
                             (CASE WHEN feedback_count = 0 THEN 0
                                   ELSE round(satisfaction_sum::numeric / feedback_count, 2) END) STORED,
  stats_version            bigint NOT NULL DEFAULT 0,
  -- Bumped by every change of the row, under its lock: the version of status events.
  version                  bigint NOT NULL DEFAULT 1,
  search_vector            tsvector GENERATED ALWAYS AS
                             (setweight(to_tsvector('english', title), 'A') ||
                              setweight(to_tsvector('english', description), 'B')) STORED,
  cancel_reason            text NOT NULL DEFAULT '' CHECK (length(cancel_reason) <= 1000),
  published_at             timestamptz,
  cancelled_at             timestamptz,
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now(),
  CHECK (end_time > start_time),
  CHECK (visibility = 'public' OR organization_id IS NOT NULL),
  -- An early bird has a price below the full one and a cutoff at or before the start, or
  -- neither.
  CHECK ((early_bird_price_minor IS NULL) = (early_bird_ends_at IS NULL)),
  CHECK (early_bird_price_minor IS NULL
         OR (early_bird_price_minor >= 0 AND early_bird_price_minor < price_minor
             AND early_bird_ends_at <= start_time)),
  CHECK (satisfaction_sum BETWEEN feedback_count AND 5 * feedback_count),
  CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
);
CREATE INDEX workshops_catalogue_idx ON workshops (start_time, id) WHERE status = 'published';
CREATE INDEX workshops_instructor_idx ON workshops (instructor_id, start_time);
CREATE INDEX workshops_pillar_level_idx ON workshops (pillar, level) WHERE status = 'published';
CREATE INDEX workshops_organization_idx ON workshops (organization_id) WHERE organization_id IS NOT NULL;
CREATE INDEX workshops_tags_idx ON workshops USING gin (tags);
CREATE INDEX workshops_search_idx ON workshops USING gin (search_vector);

CREATE TABLE workshop_facilitators (
  workshop_id    uuid NOT NULL REFERENCES workshops (id) ON DELETE CASCADE,
  facilitator_id uuid NOT NULL,
  role           text NOT NULL CHECK (role IN ('co_facilitator', 'assistant')),
  added_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workshop_id, facilitator_id)
);
CREATE INDEX workshop_facilitators_facilitator_idx ON workshop_facilitators (facilitator_id);

CREATE TABLE workshop_registrations (
  id              uuid PRIMARY KEY,
  workshop_id     uuid NOT NULL REFERENCES workshops (id),
  user_id         uuid NOT NULL,
  -- Copied from the workshop so that policies and events need no join.
  instructor_id   uuid NOT NULL,
  organization_id uuid,
  status          text NOT NULL CHECK (status IN ('pending_payment', 'registered', 'completed',
                                                  'no_show', 'cancelled', 'refunded')),
  price_minor     bigint NOT NULL DEFAULT 0 CHECK (price_minor >= 0),
  currency        text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
  payment_id      uuid,
  hold_until      timestamptz,
  cancel_reason   text NOT NULL DEFAULT ''
                  CHECK (cancel_reason IN ('', 'registrant', 'staff', 'workshop_cancelled',
                                           'hold_expired', 'unplaced')),
  registered_at   timestamptz NOT NULL DEFAULT now(),
  attended_at     timestamptz,
  cancelled_at    timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  -- One registration per user and workshop; registering again reopens it.
  UNIQUE (workshop_id, user_id),
  CHECK ((status = 'pending_payment') = (hold_until IS NOT NULL)),
  CHECK (status <> 'cancelled' OR cancel_reason <> '')
);
CREATE INDEX workshop_registrations_user_idx ON workshop_registrations (user_id, registered_at DESC);
CREATE INDEX workshop_registrations_workshop_idx ON workshop_registrations (workshop_id, registered_at DESC);
CREATE INDEX workshop_registrations_holds_idx ON workshop_registrations (hold_until)
  WHERE status = 'pending_payment';
CREATE INDEX workshop_registrations_payment_idx ON workshop_registrations (payment_id)
  WHERE payment_id IS NOT NULL;

CREATE TABLE workshop_feedback (
  id                   uuid PRIMARY KEY,
  workshop_id          uuid NOT NULL REFERENCES workshops (id),
  registration_id      uuid NOT NULL REFERENCES workshop_registrations (id),
  user_id              uuid NOT NULL,
  overall_satisfaction integer NOT NULL CHECK (overall_satisfaction BETWEEN 1 AND 5),
  content_rating       integer CHECK (content_rating BETWEEN 1 AND 5),
  delivery_rating      integer CHECK (delivery_rating BETWEEN 1 AND 5),
  interaction_rating   integer CHECK (interaction_rating BETWEEN 1 AND 5),
  nps_score            integer CHECK (nps_score BETWEEN 0 AND 10),
  would_recommend      boolean NOT NULL DEFAULT false,
  what_went_well       text NOT NULL DEFAULT '' CHECK (length(what_went_well) <= 5000),
  what_could_improve   text NOT NULL DEFAULT '' CHECK (length(what_could_improve) <= 5000),
  created_at           timestamptz NOT NULL DEFAULT now(),
  -- One feedback per attendee.
  UNIQUE (workshop_id, user_id)
);
CREATE INDEX workshop_feedback_workshop_idx ON workshop_feedback (workshop_id, created_at DESC, id DESC);

-- Who runs a workshop: its owner, its facilitators, its organization's admins.
CREATE FUNCTION facilitates(workshop uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
  SELECT EXISTS (SELECT 1 FROM workshop_facilitators f
                 WHERE f.workshop_id = workshop AND f.facilitator_id = current_user_id())
$$;

CREATE FUNCTION runs_workshop(workshop uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
  SELECT EXISTS (SELECT 1 FROM workshops w WHERE w.id = workshop
                 AND (w.instructor_id = current_user_id() OR administers(w.organization_id)))
      OR facilitates(workshop)
$$;

CREATE FUNCTION is_registered(workshop uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
  SELECT EXISTS (SELECT 1 FROM workshop_registrations r
                 WHERE r.workshop_id = workshop AND r.user_id = current_user_id())
$$;

CREATE FUNCTION can_view_workshop(workshop uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
  SELECT EXISTS (
    SELECT 1 FROM workshops w
    WHERE w.id = workshop
      AND (is_privileged()
           OR (w.status <> 'draft' AND (w.visibility = 'public' OR w.organization_id = current_org_id()))
           OR runs_workshop(w.id)
           OR is_registered(w.id)))
$$;

-- What a registration made now costs, whatever the caller may see.
CREATE FUNCTION workshop_registration_terms(workshop uuid, OUT price_minor bigint, OUT currency text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
  SELECT CASE WHEN w.early_bird_ends_at IS NOT NULL AND now() < w.early_bird_ends_at
              THEN w.early_bird_price_minor ELSE w.price_minor END,
         w.currency
  FROM workshops w WHERE w.id = workshop
$$;

-- The seats left, from the workshop's capacity pool (the kit's bookkeeping table).
CREATE FUNCTION workshop_seats_remaining(workshop uuid) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
  SELECT p.remaining FROM capacity_pools p WHERE p.id = workshop
$$;

-- A registration share-locks its workshop, so that a cancellation (which locks it for
-- update) waits for registrations in flight and they for it. A row lock under RLS needs
-- the caller's UPDATE policies, which registrants do not have: the owner takes it.
CREATE FUNCTION share_lock_workshop(workshop uuid) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
BEGIN
  PERFORM 1 FROM workshops w WHERE w.id = workshop FOR SHARE;
END
$$;

ALTER TABLE workshops              ENABLE ROW LEVEL SECURITY;
ALTER TABLE workshop_facilitators  ENABLE ROW LEVEL SECURITY;
ALTER TABLE workshop_registrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE workshop_feedback      ENABLE ROW LEVEL SECURITY;

-- Workshops: everything but drafts is visible where the workshop is (public, or its
-- organization's members); the team and registrants see theirs; owners and
-- organization admins write.
CREATE POLICY workshops_privileged ON workshops USING (is_privileged());
CREATE POLICY workshops_listed_read ON workshops FOR SELECT
  USING (status <> 'draft' AND (visibility = 'public' OR organization_id = current_org_id()));
CREATE POLICY workshops_team_read ON workshops FOR SELECT
  USING (instructor_id = current_user_id() OR administers(organization_id) OR facilitates(id)
         OR is_registered(id));
CREATE POLICY workshops_owner_insert ON workshops FOR INSERT
  WITH CHECK (instructor_id = current_user_id() AND has_session_role('instructor')
              AND (organization_id IS NULL OR organization_id = current_org_id()));
CREATE POLICY workshops_owner_update ON workshops FOR UPDATE
  USING (instructor_id = current_user_id() OR administers(organization_id))
  WITH CHECK (instructor_id = current_user_id() OR administers(organization_id));

CREATE POLICY workshop_facilitators_privileged ON workshop_facilitators USING (is_privileged());
CREATE POLICY workshop_facilitators_read ON workshop_facilitators FOR SELECT
  USING (can_view_workshop(workshop_id));
CREATE POLICY workshop_facilitators_owner ON workshop_facilitators
  USING (EXISTS (SELECT 1 FROM workshops w WHERE w.id = workshop_id
                 AND (w.instructor_id = current_user_id() OR administers(w.organization_id))))
  WITH CHECK (EXISTS (SELECT 1 FROM workshops w WHERE w.id = workshop_id
                      AND (w.instructor_id = current_user_id() OR administers(w.organization_id))));

-- Registrations: registrants their own; the team the workshop's.
CREATE POLICY workshop_registrations_privileged ON workshop_registrations USING (is_privileged());
CREATE POLICY workshop_registrations_registrant ON workshop_registrations
  USING (user_id = current_user_id()) WITH CHECK (user_id = current_user_id());
CREATE POLICY workshop_registrations_team_read ON workshop_registrations FOR SELECT
  USING (runs_workshop(workshop_id));
CREATE POLICY workshop_registrations_team_update ON workshop_registrations FOR UPDATE
  USING (runs_workshop(workshop_id)) WITH CHECK (runs_workshop(workshop_id));

-- Feedback: attendees write their own, once; the team reads the workshop's.
CREATE POLICY workshop_feedback_privileged ON workshop_feedback USING (is_privileged());
CREATE POLICY workshop_feedback_author_read ON workshop_feedback FOR SELECT
  USING (user_id = current_user_id());
CREATE POLICY workshop_feedback_attendee_insert ON workshop_feedback FOR INSERT
  WITH CHECK (user_id = current_user_id()
              AND EXISTS (SELECT 1 FROM workshop_registrations r
                          WHERE r.id = registration_id AND r.workshop_id = workshop_feedback.workshop_id
                            AND r.user_id = current_user_id() AND r.status = 'completed'));
CREATE POLICY workshop_feedback_team_read ON workshop_feedback FOR SELECT
  USING (runs_workshop(workshop_id));

-- Workshops: statistics only through the bookkeeping; the owner changes only through
-- admins; the featured flag is the platform's.
CREATE FUNCTION workshops_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = learning, pg_temp AS $$
BEGIN
  IF NOT acting_for_caller() OR is_privileged() THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.attended_count <> 0 OR NEW.feedback_count <> 0 OR NEW.satisfaction_sum <> 0
       OR NEW.stats_version <> 0 OR NEW.featured OR NEW.status <> 'draft' THEN
      RAISE EXCEPTION 'a new workshop is an unfeatured draft without statistics'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.instructor_id <> OLD.instructor_id AND NOT administers(OLD.organization_id) THEN
    RAISE EXCEPTION 'only an administrator changes a workshop''s owner'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.featured <> OLD.featured THEN
    RAISE EXCEPTION 'only platform admins feature a workshop' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.attended_count <> OLD.attended_count OR NEW.feedback_count <> OLD.feedback_count
     OR NEW.satisfaction_sum <> OLD.satisfaction_sum OR NEW.stats_version <> OLD.stats_version THEN
    RAISE EXCEPTION 'a workshop''s statistics are kept by the service'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER workshops_column_rules BEFORE INSERT OR UPDATE ON workshops
  FOR EACH ROW EXECUTE FUNCTION workshops_column_rules();

-- Registrations: a caller never sets a price or a payment; the status moves only the ways
-- a registrant's or a facilitator's own actions move it. Payments, refunds, lapsed holds
-- and cancelled workshops come from the service.
CREATE FUNCTION workshop_registrations_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = learning, pg_temp AS $$
DECLARE
  terms record;
  opening text;
BEGIN
  IF NOT acting_for_caller() OR is_privileged() THEN
    RETURN NEW;
  END IF;
  SELECT * INTO terms FROM workshop_registration_terms(NEW.workshop_id);
  opening := CASE WHEN terms.price_minor = 0 THEN 'registered' ELSE 'pending_payment' END;
  IF TG_OP = 'INSERT' THEN
    IF NEW.price_minor IS DISTINCT FROM terms.price_minor
       OR NEW.currency IS DISTINCT FROM terms.currency
       OR NEW.payment_id IS NOT NULL OR NEW.attended_at IS NOT NULL
       OR NEW.status <> opening THEN
      RAISE EXCEPTION 'a registration starts at the workshop''s terms, unpaid'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.workshop_id <> OLD.workshop_id OR NEW.user_id <> OLD.user_id
     OR NEW.instructor_id <> OLD.instructor_id
     OR NEW.organization_id IS DISTINCT FROM OLD.organization_id THEN
    RAISE EXCEPTION 'a registration''s parties are fixed' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.status = OLD.status THEN
    IF NEW.price_minor <> OLD.price_minor OR NEW.currency <> OLD.currency
       OR NEW.payment_id IS DISTINCT FROM OLD.payment_id THEN
      RAISE EXCEPTION 'a caller cannot change a registration''s price or payment'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.price_minor <> OLD.price_minor OR NEW.currency <> OLD.currency
     OR NEW.payment_id IS DISTINCT FROM OLD.payment_id THEN
    -- Only registering again after a cancellation prices anew, at the current terms,
    -- forgetting the payment of the registration's earlier life.
    IF NOT (OLD.status IN ('cancelled', 'refunded') AND OLD.user_id = current_user_id()
            AND NEW.status = opening AND NEW.price_minor = terms.price_minor
            AND NEW.currency = terms.currency AND NEW.payment_id IS NULL) THEN
      RAISE EXCEPTION 'a caller cannot change a registration''s price or payment'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END IF;
  IF OLD.user_id = current_user_id() THEN
    IF NEW.status = 'cancelled' AND OLD.status IN ('pending_payment', 'registered')
       AND NEW.cancel_reason = 'registrant' THEN
      RETURN NEW;
    END IF;
    IF OLD.status IN ('cancelled', 'refunded') AND NEW.status = opening THEN
      RETURN NEW;
    END IF;
  END IF;
  IF runs_workshop(OLD.workshop_id) THEN
    IF NEW.status = 'cancelled' AND OLD.status IN ('pending_payment', 'registered')
       AND NEW.cancel_reason = 'staff' THEN
      RETURN NEW;
    END IF;
    IF (OLD.status = 'registered' AND NEW.status IN ('completed', 'no_show'))
       OR (OLD.status = 'no_show' AND NEW.status = 'completed') THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'a caller cannot move a registration from % to %', OLD.status, NEW.status
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER workshop_registrations_column_rules BEFORE INSERT OR UPDATE ON workshop_registrations
  FOR EACH ROW EXECUTE FUNCTION workshop_registrations_column_rules();

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA learning FROM PUBLIC;
