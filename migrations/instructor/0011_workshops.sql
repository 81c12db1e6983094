-- Workshops, as learning's events tell them (lyceum.events.v1.WorkshopStatusChanged and
-- WorkshopRegistrationChanged): the workshops, for the dashboard's counts and the
-- timeline's titles, and their registrations, whose registrants are the instructor's
-- students and whose paid activations are sales. Revenue transactions and the activity
-- timeline name workshops and registrations; the profile statistics count workshops.

-- One row per workshop. A registration's event that arrives before any of its workshop's
-- creates the row with what it knows (owner, title, start; status 'draft', version 0);
-- the workshop's own events complete it.
CREATE TABLE workshop_projection (
  workshop_id     uuid PRIMARY KEY,
  instructor_id   uuid NOT NULL,
  organization_id uuid,
  title           text NOT NULL DEFAULT '',
  status          text NOT NULL DEFAULT 'draft'
                  CHECK (status IN ('draft', 'published', 'archived', 'cancelled')),
  start_time      timestamptz,
  end_time        timestamptz,
  -- Whether an event ever showed the workshop published, whatever came after: what
  -- total_workshops counts (workshops given or announced, never drafts). Set by any
  -- published event, newer or older than the state held, so arrival order does not matter.
  ever_published  boolean NOT NULL DEFAULT false,
  -- The version of the last applied workshop event: older events are ignored.
  version         bigint NOT NULL DEFAULT 0
);
-- The dashboard's total and upcoming workshops.
CREATE INDEX workshop_projection_instructor_idx ON workshop_projection (instructor_id, start_time);

CREATE TABLE registration_projection (
  registration_id uuid PRIMARY KEY,
  workshop_id     uuid NOT NULL,
  user_id         uuid NOT NULL,
  instructor_id   uuid NOT NULL,
  organization_id uuid,
  status          text NOT NULL CHECK (status IN ('pending_payment', 'registered', 'completed',
                                                  'no_show', 'cancelled', 'refunded')),
  price_minor     bigint NOT NULL DEFAULT 0 CHECK (price_minor >= 0),
  currency        text NOT NULL DEFAULT 'USD',
  registered_at   timestamptz NOT NULL,
  -- The version of the last applied registration event: older events are ignored.
  version         bigint NOT NULL DEFAULT 0
);
-- The dashboard's distinct students; the directory's policy below.
CREATE INDEX registration_projection_instructor_idx
  ON registration_projection (instructor_id, user_id);
CREATE INDEX registration_projection_workshop_idx ON registration_projection (workshop_id);

-- A revenue transaction is for a course enrollment or a workshop registration, never both;
-- a registration's sale (and the refunds that copy it) names both its ids.
ALTER TABLE revenue_transactions
  ADD COLUMN workshop_id uuid,
  ADD COLUMN registration_id uuid,
  ADD CONSTRAINT revenue_transactions_one_item_check
    CHECK ((course_id IS NULL AND enrollment_id IS NULL)
           OR (workshop_id IS NULL AND registration_id IS NULL)),
  ADD CONSTRAINT revenue_transactions_registration_check
    CHECK (transaction_type <> 'workshop_registration'
           OR (workshop_id IS NOT NULL AND registration_id IS NOT NULL));
-- One sale per succeeded payment, whatever it bought.
DROP INDEX revenue_transactions_sale_key;
CREATE UNIQUE INDEX revenue_transactions_sale_key ON revenue_transactions (payment_id)
  WHERE transaction_type <> 'refund';

-- The column rules of 0007, with the new columns among the figures a caller keeps as booked.
CREATE OR REPLACE FUNCTION revenue_transactions_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = instructor, pg_temp AS $$
BEGIN
  IF acting_for_caller() AND NOT is_privileged()
     AND (ROW(NEW.id, NEW.instructor_id, NEW.organization_id, NEW.transaction_type, NEW.course_id,
              NEW.enrollment_id, NEW.workshop_id, NEW.registration_id, NEW.payment_id,
              NEW.refund_id, NEW.student_id, NEW.amount_minor, NEW.currency, NEW.fee_bps,
              NEW.platform_fee_minor, NEW.instructor_earnings_minor, NEW.created_at)
          IS DISTINCT FROM
          ROW(OLD.id, OLD.instructor_id, OLD.organization_id, OLD.transaction_type, OLD.course_id,
              OLD.enrollment_id, OLD.workshop_id, OLD.registration_id, OLD.payment_id,
              OLD.refund_id, OLD.student_id, OLD.amount_minor, OLD.currency, OLD.fee_bps,
              OLD.platform_fee_minor, OLD.instructor_earnings_minor, OLD.created_at)
          OR NOT (OLD.payout_status = 'pending' AND NEW.payout_status = 'paid'
                  AND OLD.payout_id IS NULL AND NEW.payout_id IS NOT NULL)) THEN
    RAISE EXCEPTION 'a caller only settles pending earnings' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;

-- An attendance names its workshop. Added last to both tables, so that the archive job's
-- `INSERT INTO student_activity_archive SELECT *` keeps matching columns.
ALTER TABLE student_activity ADD COLUMN workshop_id uuid;
ALTER TABLE student_activity_archive ADD COLUMN workshop_id uuid;

ALTER TABLE workshop_projection     ENABLE ROW LEVEL SECURITY;
ALTER TABLE registration_projection ENABLE ROW LEVEL SECURITY;

-- As the course and enrollment projections: the instructor reads their own, org admins
-- their organization's, platform admins all; only the service writes.
CREATE POLICY workshop_projection_privileged ON workshop_projection USING (is_privileged());
CREATE POLICY workshop_projection_own ON workshop_projection FOR SELECT
  USING (instructor_id = current_user_id() OR administers(organization_id));
CREATE POLICY registration_projection_privileged ON registration_projection USING (is_privileged());
CREATE POLICY registration_projection_own ON registration_projection FOR SELECT
  USING (instructor_id = current_user_id() OR administers(organization_id));
-- payments:write fixes a registration payment's fee for the registration's instructor.
CREATE POLICY registration_projection_payments_scope ON registration_projection FOR SELECT
  USING (has_scope('payments:write'));

-- Instructors read the directory entries of their own students: enrolled or registered.
DROP POLICY student_directory_students ON student_directory;
CREATE POLICY student_directory_students ON student_directory FOR SELECT
  USING (EXISTS (SELECT 1 FROM enrollment_projection e
                 WHERE e.student_id = user_id AND e.instructor_id = current_user_id())
         OR EXISTS (SELECT 1 FROM registration_projection r
                    WHERE r.user_id = student_directory.user_id
                      AND r.instructor_id = current_user_id()));

-- The recount of 0009, with the workshops the instructor has published.
DROP FUNCTION instructor_stats_truth();
CREATE FUNCTION instructor_stats_truth()
RETURNS TABLE (instructor_id uuid, students bigint, courses bigint, workshops bigint,
               rating_sum bigint, reviews bigint)
LANGUAGE sql STABLE AS $$
  WITH instructors AS (
         SELECT st.instructor_id FROM instructor_stats st
         UNION SELECT s.instructor_id FROM instructor_students s
         UNION SELECT c.instructor_id FROM course_projection c
         UNION SELECT w.instructor_id FROM workshop_projection w)
  SELECT i.instructor_id,
         (SELECT count(*) FROM instructor_students s WHERE s.instructor_id = i.instructor_id),
         (SELECT count(*) FROM course_projection c
          WHERE c.instructor_id = i.instructor_id AND c.status = 'published'),
         (SELECT count(*) FROM workshop_projection w
          WHERE w.instructor_id = i.instructor_id AND w.ever_published),
         (SELECT coalesce(sum(c.rating_sum), 0)::bigint FROM course_projection c
          WHERE c.instructor_id = i.instructor_id),
         (SELECT coalesce(sum(c.review_count), 0)::bigint FROM course_projection c
          WHERE c.instructor_id = i.instructor_id)
  FROM instructors i
$$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA instructor FROM PUBLIC;
