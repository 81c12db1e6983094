-- Instructor profiles and their statistics, settings with encrypted payment details,
-- payouts, and the archive of old activity.

CREATE TABLE instructor_profiles (
  instructor_id   uuid PRIMARY KEY,
  bio             text NOT NULL CHECK (length(bio) BETWEEN 50 AND 2000),
  expertise_tags  text[] NOT NULL DEFAULT '{}' CHECK (cardinality(expertise_tags) <= 30),
  pillars         text[] NOT NULL DEFAULT '{}'
                  CHECK (pillars <@ ARRAY['adaptability', 'coaching', 'marketplace']),
  education       text[] NOT NULL DEFAULT '{}',
  certifications  text[] NOT NULL DEFAULT '{}',
  work_experience text[] NOT NULL DEFAULT '{}',
  social_links    jsonb NOT NULL DEFAULT '{}',
  verified        boolean NOT NULL DEFAULT false,
  featured        boolean NOT NULL DEFAULT false,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX instructor_profiles_tags_idx ON instructor_profiles USING gin (expertise_tags);
CREATE INDEX instructor_profiles_pillars_idx ON instructor_profiles USING gin (pillars);

-- Statistics kept from learning's events, whether or not a profile exists yet.
CREATE TABLE instructor_stats (
  instructor_id   uuid PRIMARY KEY,
  total_students  bigint NOT NULL DEFAULT 0 CHECK (total_students >= 0),
  total_courses   bigint NOT NULL DEFAULT 0 CHECK (total_courses >= 0),
  total_workshops bigint NOT NULL DEFAULT 0 CHECK (total_workshops >= 0),
  rating_sum      bigint NOT NULL DEFAULT 0 CHECK (rating_sum >= 0),
  review_count    bigint NOT NULL DEFAULT 0 CHECK (review_count >= 0)
);

-- Each distinct student of an instructor, once: total_students counts these rows.
CREATE TABLE instructor_students (
  instructor_id uuid NOT NULL,
  student_id    uuid NOT NULL,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (instructor_id, student_id)
);

CREATE TABLE instructor_settings (
  instructor_id             uuid PRIMARY KEY,
  notification_preferences  jsonb NOT NULL DEFAULT '{}',
  teaching_preferences      jsonb NOT NULL DEFAULT '{}',
  payment_method            text NOT NULL DEFAULT '' CHECK (length(payment_method) <= 50),
  -- AES-256-GCM sealed with the data key; never stored in plaintext.
  payment_details_encrypted bytea,
  payout_schedule           text NOT NULL DEFAULT 'monthly' CHECK (payout_schedule IN ('weekly', 'biweekly', 'monthly')),
  calendar_sync             boolean NOT NULL DEFAULT false,
  updated_at                timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payouts (
  id                uuid PRIMARY KEY,
  instructor_id     uuid NOT NULL,
  amount_minor      bigint NOT NULL,
  transaction_count bigint NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payouts_instructor_idx ON payouts (instructor_id, created_at DESC);
CREATE INDEX revenue_transactions_pending_idx ON revenue_transactions (instructor_id) WHERE payout_status = 'pending';

-- Activity older than the configured age moves here (`lyceum jobs run archive-activity`).
CREATE TABLE student_activity_archive (LIKE student_activity INCLUDING ALL);

ALTER TABLE instructor_profiles      ENABLE ROW LEVEL SECURITY;
ALTER TABLE instructor_stats         ENABLE ROW LEVEL SECURITY;
ALTER TABLE instructor_students      ENABLE ROW LEVEL SECURITY;
ALTER TABLE instructor_settings      ENABLE ROW LEVEL SECURITY;
ALTER TABLE payouts                  ENABLE ROW LEVEL SECURITY;
ALTER TABLE student_activity_archive ENABLE ROW LEVEL SECURITY;

-- Profiles are public; instructors write their own.
CREATE POLICY instructor_profiles_privileged ON instructor_profiles USING (is_privileged());
CREATE POLICY instructor_profiles_read ON instructor_profiles FOR SELECT USING (true);
CREATE POLICY instructor_profiles_own ON instructor_profiles
  USING (instructor_id = current_user_id()) WITH CHECK (instructor_id = current_user_id());
CREATE POLICY instructor_stats_privileged ON instructor_stats USING (is_privileged());
CREATE POLICY instructor_stats_read ON instructor_stats FOR SELECT USING (true);
CREATE POLICY instructor_students_privileged ON instructor_students USING (is_privileged());
CREATE POLICY instructor_students_own ON instructor_students FOR SELECT USING (instructor_id = current_user_id());
-- Settings are the instructor's alone (and the platform's).
CREATE POLICY instructor_settings_privileged ON instructor_settings USING (is_privileged());
CREATE POLICY instructor_settings_own ON instructor_settings
  USING (instructor_id = current_user_id()) WITH CHECK (instructor_id = current_user_id());
CREATE POLICY payouts_privileged ON payouts USING (is_privileged());
CREATE POLICY payouts_own ON payouts FOR SELECT USING (instructor_id = current_user_id());
CREATE POLICY student_activity_archive_privileged ON student_activity_archive USING (is_privileged());
CREATE POLICY student_activity_archive_own ON student_activity_archive FOR SELECT
  USING (instructor_id = current_user_id() OR administers(organization_id));
