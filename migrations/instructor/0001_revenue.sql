-- Instructor revenue, part 1: payments and refunds, fee settings, revenue transactions,
-- and the projections of learning's events the dashboards read. Runs as
-- lyceum_instructor_owner with search_path = instructor.

CREATE FUNCTION current_user_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('lyceum.user_id', true), '')::uuid
$$;

CREATE FUNCTION current_org_id() RETURNS uuid
LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('lyceum.org_id', true), '')::uuid
$$;

CREATE FUNCTION has_session_role(role_name text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT role_name = ANY (string_to_array(coalesce(current_setting('lyceum.roles', true), ''), ','))
$$;

CREATE FUNCTION is_privileged() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT has_session_role('admin') OR has_session_role('service') OR has_session_role('system')
$$;

CREATE FUNCTION administers(org uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT org IS NOT NULL AND org = current_org_id() AND has_session_role('org_admin')
$$;

-- Fee percentages in basis points (2000 = 20.00 %): the platform default (one row) and
-- per-instructor overrides.
CREATE TABLE platform_fee (
  singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  fee_bps      integer NOT NULL DEFAULT 2000 CHECK (fee_bps BETWEEN 0 AND 10000),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO platform_fee DEFAULT VALUES;

CREATE TABLE instructor_fees (
  instructor_id uuid PRIMARY KEY,
  fee_bps       integer NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE invoice_numbers;

CREATE TABLE payments (
  id                      uuid PRIMARY KEY,
  -- The caller's idempotency key and a digest of the parameters it came with.
  request_id              text NOT NULL UNIQUE CHECK (length(request_id) BETWEEN 1 AND 200),
  request_fingerprint     text NOT NULL,
  payer_id                uuid NOT NULL,
  instructor_id           uuid,
  organization_id         uuid,
  amount_minor            bigint NOT NULL CHECK (amount_minor > 0),
  currency                text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  refunded_minor          bigint NOT NULL DEFAULT 0,
  provider                text NOT NULL CHECK (provider IN ('stripe', 'paypal', 'manual')),
  provider_transaction_id text,
  status                  text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded', 'partially_refunded')),
  payment_type            text NOT NULL CHECK (payment_type IN ('course_enrollment', 'workshop_registration',
                                                                'engagement', 'subscription', 'other')),
  related_entity_id       uuid,
  invoice_number          text NOT NULL UNIQUE,
  -- The fee split fixed when the payment succeeded; refunds return it in proportion.
  fee_bps                 integer CHECK (fee_bps BETWEEN 0 AND 10000),
  fee_minor               bigint CHECK (fee_minor >= 0),
  fee_refunded_minor      bigint NOT NULL DEFAULT 0 CHECK (fee_refunded_minor >= 0),
  failure_reason          text,
  created_at              timestamptz NOT NULL DEFAULT now(),
  succeeded_at            timestamptz,
  failed_at               timestamptz,
  updated_at              timestamptz NOT NULL DEFAULT now(),
  CHECK (refunded_minor BETWEEN 0 AND amount_minor),
  CHECK (fee_minor IS NULL OR fee_minor <= amount_minor),
  CHECK (fee_refunded_minor <= coalesce(fee_minor, 0))
);
CREATE INDEX payments_payer_idx ON payments (payer_id, created_at DESC);
CREATE INDEX payments_instructor_idx ON payments (instructor_id, created_at DESC);

CREATE TABLE payment_refunds (
  id           uuid PRIMARY KEY,
  payment_id   uuid NOT NULL REFERENCES payments (id),
  request_id   text NOT NULL UNIQUE,
  amount_minor bigint NOT NULL CHECK (amount_minor > 0),
  reason       text NOT NULL DEFAULT '' CHECK (length(reason) <= 1000),
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_refunds_payment_idx ON payment_refunds (payment_id);

CREATE TABLE revenue_transactions (
  id                        uuid PRIMARY KEY,
  instructor_id             uuid NOT NULL,
  organization_id           uuid,
  transaction_type          text NOT NULL CHECK (transaction_type IN ('course_enrollment',
                                                                      'workshop_registration', 'refund')),
  course_id                 uuid,
  enrollment_id             uuid,
  payment_id                uuid,
  refund_id                 uuid UNIQUE REFERENCES payment_refunds (id),
  student_id                uuid,
  amount_minor              bigint NOT NULL,
  currency                  text NOT NULL,
  fee_bps                   integer NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
  platform_fee_minor        bigint NOT NULL,
  instructor_earnings_minor bigint NOT NULL,
  payout_status             text NOT NULL DEFAULT 'pending' CHECK (payout_status IN ('pending', 'paid', 'cancelled')),
  payout_id                 uuid,
  created_at                timestamptz NOT NULL DEFAULT now(),
  -- Fees and earnings always add up to the amount, to the minor unit.
  CHECK (platform_fee_minor + instructor_earnings_minor = amount_minor),
  -- Sales are positive, refunds negative.
  CHECK ((transaction_type = 'refund') = (amount_minor < 0))
);
-- One sale per paid enrollment, whatever the redeliveries.
CREATE UNIQUE INDEX revenue_transactions_sale_key ON revenue_transactions (enrollment_id)
  WHERE transaction_type = 'course_enrollment';
CREATE INDEX revenue_transactions_instructor_idx ON revenue_transactions (instructor_id, created_at DESC, id DESC);

-- Projections of learning's events, for the dashboards (this schema alone answers them).
CREATE TABLE course_projection (
  course_id       uuid PRIMARY KEY,
  instructor_id   uuid NOT NULL,
  title           text NOT NULL DEFAULT '',
  status          text NOT NULL DEFAULT 'draft',
  enrolled_count  bigint NOT NULL DEFAULT 0,
  completed_count bigint NOT NULL DEFAULT 0,
  rating_sum      bigint NOT NULL DEFAULT 0,
  review_count    bigint NOT NULL DEFAULT 0,
  -- Versions of the last applied event of each kind: older events are ignored.
  counts_version  bigint NOT NULL DEFAULT 0,
  rating_version  bigint NOT NULL DEFAULT 0,
  status_version  bigint NOT NULL DEFAULT 0
);
CREATE INDEX course_projection_instructor_idx ON course_projection (instructor_id);

CREATE TABLE enrollment_projection (
  enrollment_id       uuid PRIMARY KEY,
  course_id           uuid NOT NULL,
  instructor_id       uuid NOT NULL,
  organization_id     uuid,
  student_id          uuid NOT NULL,
  status              text NOT NULL,
  price_minor         bigint NOT NULL DEFAULT 0,
  currency            text NOT NULL DEFAULT 'USD',
  progress_percentage numeric(5, 2) NOT NULL DEFAULT 0,
  completed_lessons   integer NOT NULL DEFAULT 0,
  total_lessons       integer NOT NULL DEFAULT 0,
  -- The enrollment time until the first progress: the timeline of the dashboard.
  last_activity_at    timestamptz NOT NULL,
  enrolled_at         timestamptz NOT NULL,
  status_version      bigint NOT NULL DEFAULT 0,
  progress_version    bigint NOT NULL DEFAULT 0
);
CREATE INDEX enrollment_projection_instructor_idx
  ON enrollment_projection (instructor_id, last_activity_at DESC, enrollment_id DESC);
CREATE INDEX enrollment_projection_course_idx ON enrollment_projection (course_id);
CREATE INDEX enrollment_projection_student_idx ON enrollment_projection (instructor_id, student_id);

-- Names, emails and avatars from identity's user events.
CREATE TABLE student_directory (
  user_id    uuid PRIMARY KEY,
  full_name  text NOT NULL DEFAULT '',
  email      text NOT NULL DEFAULT '',
  avatar_url text NOT NULL DEFAULT '',
  version    bigint NOT NULL DEFAULT 0
);

CREATE TABLE student_activity (
  id            uuid PRIMARY KEY,
  instructor_id uuid NOT NULL,
  organization_id uuid,
  student_id    uuid NOT NULL,
  activity_type text NOT NULL CHECK (activity_type IN ('enrolled', 'lesson_started', 'lesson_completed',
                                                       'quiz_passed', 'course_completed', 'review_posted',
                                                       'enrollment_cancelled', 'workshop_attended')),
  course_id     uuid,
  lesson_id     uuid,
  occurred_at   timestamptz NOT NULL
);
CREATE INDEX student_activity_timeline_idx ON student_activity (instructor_id, occurred_at DESC, id DESC);

ALTER TABLE platform_fee          ENABLE ROW LEVEL SECURITY;
ALTER TABLE instructor_fees       ENABLE ROW LEVEL SECURITY;
ALTER TABLE payments              ENABLE ROW LEVEL SECURITY;
ALTER TABLE payment_refunds       ENABLE ROW LEVEL SECURITY;
ALTER TABLE revenue_transactions  ENABLE ROW LEVEL SECURITY;
ALTER TABLE course_projection     ENABLE ROW LEVEL SECURITY;
ALTER TABLE enrollment_projection ENABLE ROW LEVEL SECURITY;
ALTER TABLE student_directory     ENABLE ROW LEVEL SECURITY;
ALTER TABLE student_activity      ENABLE ROW LEVEL SECURITY;

CREATE POLICY platform_fee_privileged ON platform_fee USING (is_privileged());
CREATE POLICY platform_fee_read ON platform_fee FOR SELECT USING (true);
CREATE POLICY instructor_fees_privileged ON instructor_fees USING (is_privileged());
CREATE POLICY instructor_fees_own ON instructor_fees FOR SELECT USING (instructor_id = current_user_id());

-- Payments: payers and the paid instructor see theirs; org admins their organization's.
CREATE POLICY payments_privileged ON payments USING (is_privileged());
CREATE POLICY payments_parties_read ON payments FOR SELECT
  USING (payer_id = current_user_id() OR instructor_id = current_user_id() OR administers(organization_id));
CREATE POLICY payment_refunds_privileged ON payment_refunds USING (is_privileged());

-- Instructors see only their own rows; org admins their organization's; platform admins all.
CREATE POLICY revenue_transactions_privileged ON revenue_transactions USING (is_privileged());
CREATE POLICY revenue_transactions_own ON revenue_transactions FOR SELECT
  USING (instructor_id = current_user_id() OR administers(organization_id));
CREATE POLICY course_projection_privileged ON course_projection USING (is_privileged());
CREATE POLICY course_projection_own ON course_projection FOR SELECT USING (instructor_id = current_user_id());
CREATE POLICY enrollment_projection_privileged ON enrollment_projection USING (is_privileged());
CREATE POLICY enrollment_projection_own ON enrollment_projection FOR SELECT
  USING (instructor_id = current_user_id() OR administers(organization_id));
CREATE POLICY student_activity_privileged ON student_activity USING (is_privileged());
CREATE POLICY student_activity_own ON student_activity FOR SELECT
  USING (instructor_id = current_user_id() OR administers(organization_id));
-- Instructors read the directory entries of their own students only.
CREATE POLICY student_directory_privileged ON student_directory USING (is_privileged());
CREATE POLICY student_directory_students ON student_directory FOR SELECT
  USING (EXISTS (SELECT 1 FROM enrollment_projection e
                 WHERE e.student_id = user_id AND e.instructor_id = current_user_id()));
