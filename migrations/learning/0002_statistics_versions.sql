-- Versions of a course's statistics, bumped in the same UPDATE as the counts they
-- version: events carry them so that consumers keep the newest counts whatever order
-- the events arrive in.
ALTER TABLE courses
  ADD COLUMN counts_version bigint NOT NULL DEFAULT 0,
  ADD COLUMN rating_version bigint NOT NULL DEFAULT 0;

-- Org admins see their organization's lesson progress, like the rest of its enrollments.
CREATE POLICY lesson_progress_org_admins_read ON lesson_progress FOR SELECT
  USING (EXISTS (SELECT 1 FROM enrollments e WHERE e.id = enrollment_id AND administers(e.organization_id)));

-- Payments refunded in full: a late "succeeded" for one of them must not grant access.
CREATE TABLE refunded_payments (
  payment_id  uuid PRIMARY KEY,
  refunded_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE refunded_payments ENABLE ROW LEVEL SECURITY;
CREATE POLICY refunded_payments_system ON refunded_payments USING (is_privileged());
