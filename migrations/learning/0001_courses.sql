-- Learning, part 1: courses, modules and lessons, co-instructors, enrollments, lesson
-- and student progress, reviews. Runs as lyceum_learning_owner with search_path =
-- learning; the runtime role lyceum_learning is subject to every policy below.
-- Ids pointing into other contexts (users, organizations, payments, cohorts) are plain
-- UUIDs: another service owns them.

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

-- Platform admins, service accounts and the service itself.
CREATE FUNCTION is_privileged() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT has_session_role('admin') OR has_session_role('service') OR has_session_role('system')
$$;

CREATE FUNCTION administers(org uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT org IS NOT NULL AND org = current_org_id() AND has_session_role('org_admin')
$$;

CREATE TABLE courses (
  id                       uuid PRIMARY KEY,
  instructor_id            uuid NOT NULL,
  organization_id          uuid,
  title                    text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  description              text NOT NULL DEFAULT '' CHECK (length(description) <= 20000),
  category                 text NOT NULL DEFAULT '' CHECK (length(category) <= 100),
  tags                     text[] NOT NULL DEFAULT '{}' CHECK (cardinality(tags) <= 30),
  what_you_will_learn      text[] NOT NULL DEFAULT '{}' CHECK (cardinality(what_you_will_learn) <= 50),
  target_audience          text[] NOT NULL DEFAULT '{}' CHECK (cardinality(target_audience) <= 50),
  price_minor              bigint NOT NULL DEFAULT 0 CHECK (price_minor >= 0),
  currency                 text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
  status                   text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'archived')),
  visibility               text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'organization')),
  certificate_enabled      boolean NOT NULL DEFAULT false,
  certificate_template_url text NOT NULL DEFAULT '' CHECK (length(certificate_template_url) <= 2048),
  allow_comments           boolean NOT NULL DEFAULT true,
  allow_questions          boolean NOT NULL DEFAULT true,
  drip_content             boolean NOT NULL DEFAULT false,
  drip_schedule            jsonb NOT NULL DEFAULT '{}',
  cohort_based             boolean NOT NULL DEFAULT false,
  default_duration_weeks   integer CHECK (default_duration_weeks BETWEEN 1 AND 104),
  enrollment_type          text NOT NULL DEFAULT 'open' CHECK (enrollment_type IN ('open', 'cohort_only', 'hybrid')),
  -- Statistics, kept in the same transaction as their sources with O(1) increments;
  -- `lyceum verify` recomputes them.
  enrolled_count           bigint NOT NULL DEFAULT 0 CHECK (enrolled_count >= 0),
  completed_count          bigint NOT NULL DEFAULT 0 CHECK (completed_count >= 0),
  rating_sum               bigint NOT NULL DEFAULT 0 CHECK (rating_sum >= 0),
  review_count             bigint NOT NULL DEFAULT 0 CHECK (review_count >= 0),
  average_rating           numeric(3, 2) GENERATED ALWAYS AS
                             (CASE WHEN review_count = 0 THEN 0
                                   ELSE round(rating_sum::numeric / review_count, 2) END) STORED,
  lesson_count             integer NOT NULL DEFAULT 0 CHECK (lesson_count >= 0),
  search_vector            tsvector GENERATED ALWAYS AS
                             (setweight(to_tsvector('english', title), 'A') ||
                              setweight(to_tsvector('english', description), 'B')) STORED,
  published_at             timestamptz,
  archived_at              timestamptz,
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now(),
  CHECK (visibility = 'public' OR organization_id IS NOT NULL),
  CHECK (completed_count <= enrolled_count)
);
CREATE INDEX courses_catalogue_idx ON courses (created_at DESC, id DESC) WHERE status = 'published';
CREATE INDEX courses_instructor_idx ON courses (instructor_id, created_at DESC);
CREATE INDEX courses_organization_idx ON courses (organization_id) WHERE organization_id IS NOT NULL;
CREATE INDEX courses_category_idx ON courses (category) WHERE status = 'published';
CREATE INDEX courses_tags_idx ON courses USING gin (tags);
CREATE INDEX courses_search_idx ON courses USING gin (search_vector);

CREATE TABLE course_instructors (
  course_id     uuid NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
  instructor_id uuid NOT NULL,
  role          text NOT NULL CHECK (role IN ('primary', 'co_instructor', 'assistant')),
  permissions   text[] NOT NULL DEFAULT '{view_content}'
                CHECK (permissions <@ ARRAY['view_content', 'edit_content', 'manage_students',
                                            'respond_to_reviews', 'view_analytics']),
  added_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (course_id, instructor_id)
);
CREATE INDEX course_instructors_instructor_idx ON course_instructors (instructor_id);

CREATE TABLE course_modules (
  id          uuid PRIMARY KEY,
  course_id   uuid NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
  title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  description text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
  position    integer NOT NULL CHECK (position >= 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (course_id, position)
);

CREATE TABLE course_lessons (
  id               uuid PRIMARY KEY,
  module_id        uuid NOT NULL REFERENCES course_modules (id) ON DELETE CASCADE,
  course_id        uuid NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
  title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  lesson_type      text NOT NULL CHECK (lesson_type IN ('video', 'article', 'quiz', 'assignment')),
  content_url      text NOT NULL DEFAULT '' CHECK (length(content_url) <= 2048),
  body             text NOT NULL DEFAULT '' CHECK (length(body) <= 100000),
  duration_seconds integer NOT NULL DEFAULT 0 CHECK (duration_seconds BETWEEN 0 AND 86400),
  position         integer NOT NULL CHECK (position >= 0),
  preview          boolean NOT NULL DEFAULT false,
  created_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (module_id, position)
);
CREATE INDEX course_lessons_course_idx ON course_lessons (course_id);

CREATE TABLE enrollments (
  id              uuid PRIMARY KEY,
  course_id       uuid NOT NULL REFERENCES courses (id),
  student_id      uuid NOT NULL,
  -- Copied from the course so that policies and dashboards need no join.
  instructor_id   uuid NOT NULL,
  organization_id uuid,
  status          text NOT NULL CHECK (status IN ('pending_payment', 'active', 'completed',
                                                  'cancelled', 'refunded')),
  price_minor     bigint NOT NULL DEFAULT 0 CHECK (price_minor >= 0),
  currency        text NOT NULL DEFAULT 'USD',
  payment_id      uuid,
  cohort_id       uuid,
  enrolled_at     timestamptz NOT NULL DEFAULT now(),
  activated_at    timestamptz,
  completed_at    timestamptz,
  cancelled_at    timestamptz,
  refunded_at     timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  -- One enrollment per student per course.
  UNIQUE (course_id, student_id)
);
CREATE INDEX enrollments_student_idx ON enrollments (student_id, enrolled_at DESC);
CREATE INDEX enrollments_course_idx ON enrollments (course_id, enrolled_at DESC);
CREATE INDEX enrollments_active_idx ON enrollments (course_id, student_id)
  WHERE status IN ('active', 'completed');

CREATE TABLE lesson_progress (
  enrollment_id      uuid NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,
  lesson_id          uuid NOT NULL REFERENCES course_lessons (id) ON DELETE CASCADE,
  course_id          uuid NOT NULL,
  student_id         uuid NOT NULL,
  status             text NOT NULL CHECK (status IN ('in_progress', 'completed')),
  progress_percent   integer NOT NULL DEFAULT 0 CHECK (progress_percent BETWEEN 0 AND 100),
  watch_time_seconds bigint NOT NULL DEFAULT 0 CHECK (watch_time_seconds >= 0),
  quiz_score         integer CHECK (quiz_score BETWEEN 0 AND 100),
  quiz_passed        boolean,
  started_at         timestamptz NOT NULL DEFAULT now(),
  completed_at       timestamptz,
  updated_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (enrollment_id, lesson_id)
);

-- One row per enrollment, created with it and updated with every lesson progress.
CREATE TABLE student_progress (
  enrollment_id            uuid PRIMARY KEY REFERENCES enrollments (id) ON DELETE CASCADE,
  course_id                uuid NOT NULL,
  student_id               uuid NOT NULL,
  instructor_id            uuid NOT NULL,
  organization_id          uuid,
  total_lessons            integer NOT NULL DEFAULT 0 CHECK (total_lessons >= 0),
  completed_lessons        integer NOT NULL DEFAULT 0 CHECK (completed_lessons >= 0),
  progress_percentage      numeric(5, 2) NOT NULL DEFAULT 0 CHECK (progress_percentage BETWEEN 0 AND 100),
  total_watch_time_seconds bigint NOT NULL DEFAULT 0 CHECK (total_watch_time_seconds >= 0),
  quizzes_taken            integer NOT NULL DEFAULT 0 CHECK (quizzes_taken >= 0),
  quizzes_passed           integer NOT NULL DEFAULT 0 CHECK (quizzes_passed >= 0),
  quiz_score_sum           bigint NOT NULL DEFAULT 0 CHECK (quiz_score_sum >= 0),
  engagement_score         integer NOT NULL DEFAULT 0 CHECK (engagement_score BETWEEN 0 AND 100),
  last_activity_at         timestamptz,
  certificate_url          text NOT NULL DEFAULT '',
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now(),
  UNIQUE (student_id, course_id),
  CHECK (quizzes_passed <= quizzes_taken)
);
CREATE INDEX student_progress_course_activity_idx ON student_progress (course_id, last_activity_at DESC);

CREATE TABLE course_reviews (
  id                     uuid PRIMARY KEY,
  course_id              uuid NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
  student_id             uuid NOT NULL,
  enrollment_id          uuid NOT NULL REFERENCES enrollments (id),
  instructor_id          uuid NOT NULL,
  rating                 integer NOT NULL CHECK (rating BETWEEN 1 AND 5),
  content_quality_rating integer CHECK (content_quality_rating BETWEEN 1 AND 5),
  instructor_rating      integer CHECK (instructor_rating BETWEEN 1 AND 5),
  value_rating           integer CHECK (value_rating BETWEEN 1 AND 5),
  title                  text NOT NULL DEFAULT '' CHECK (length(title) <= 200),
  review_text            text NOT NULL DEFAULT '' CHECK (length(review_text) <= 5000),
  instructor_response    text CHECK (length(instructor_response) <= 5000),
  responded_at           timestamptz,
  helpful_count          bigint NOT NULL DEFAULT 0 CHECK (helpful_count >= 0),
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  -- One review per student per course.
  UNIQUE (course_id, student_id)
);
CREATE INDEX course_reviews_course_idx ON course_reviews (course_id, created_at DESC, id DESC);

CREATE TABLE review_votes (
  review_id  uuid NOT NULL REFERENCES course_reviews (id) ON DELETE CASCADE,
  voter_id   uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (review_id, voter_id)
);

-- Membership checks used by the policies. SECURITY DEFINER (owned by the schema owner,
-- which RLS does not apply to) so that a policy on one table can consult another
-- without recursing into that table's policies.
CREATE FUNCTION teaches(course uuid, permission text DEFAULT NULL) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = learning AS $$
  SELECT EXISTS (SELECT 1 FROM courses c WHERE c.id = course AND c.instructor_id = current_user_id())
      OR EXISTS (SELECT 1 FROM course_instructors ci
                 WHERE ci.course_id = course AND ci.instructor_id = current_user_id()
                   AND (permission IS NULL OR permission = ANY (ci.permissions)))
$$;

CREATE FUNCTION can_view_course(course uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = learning AS $$
  SELECT EXISTS (
    SELECT 1 FROM courses c
    WHERE c.id = course
      AND (is_privileged()
           OR (c.status = 'published' AND (c.visibility = 'public' OR c.organization_id = current_org_id()))
           OR administers(c.organization_id)
           OR teaches(c.id)))
$$;

ALTER TABLE courses            ENABLE ROW LEVEL SECURITY;
ALTER TABLE course_instructors ENABLE ROW LEVEL SECURITY;
ALTER TABLE course_modules     ENABLE ROW LEVEL SECURITY;
ALTER TABLE course_lessons     ENABLE ROW LEVEL SECURITY;
ALTER TABLE enrollments        ENABLE ROW LEVEL SECURITY;
ALTER TABLE lesson_progress    ENABLE ROW LEVEL SECURITY;
ALTER TABLE student_progress   ENABLE ROW LEVEL SECURITY;
ALTER TABLE course_reviews     ENABLE ROW LEVEL SECURITY;
ALTER TABLE review_votes       ENABLE ROW LEVEL SECURITY;

-- Courses: published ones are public (or visible to their organization); the teaching
-- team, the organization's admins and platform admins see and manage theirs.
CREATE POLICY courses_privileged ON courses USING (is_privileged());
CREATE POLICY courses_published_read ON courses FOR SELECT
  USING (status = 'published' AND (visibility = 'public' OR organization_id = current_org_id()));
-- The owner's own rows are checked directly: a row being inserted is not yet visible to
-- the lookup inside teaches().
CREATE POLICY courses_team_read ON courses FOR SELECT
  USING (instructor_id = current_user_id() OR administers(organization_id) OR teaches(id));
CREATE POLICY courses_owner_insert ON courses FOR INSERT
  WITH CHECK (instructor_id = current_user_id() AND has_session_role('instructor')
              AND (organization_id IS NULL OR organization_id = current_org_id()));
CREATE POLICY courses_team_update ON courses FOR UPDATE
  USING (instructor_id = current_user_id() OR teaches(id, 'edit_content') OR administers(organization_id))
  WITH CHECK (instructor_id = current_user_id() OR teaches(id, 'edit_content') OR administers(organization_id));

CREATE POLICY course_instructors_privileged ON course_instructors USING (is_privileged());
CREATE POLICY course_instructors_read ON course_instructors FOR SELECT USING (can_view_course(course_id));
CREATE POLICY course_instructors_owner ON course_instructors
  USING (EXISTS (SELECT 1 FROM courses c WHERE c.id = course_id
                 AND (c.instructor_id = current_user_id() OR administers(c.organization_id))))
  WITH CHECK (EXISTS (SELECT 1 FROM courses c WHERE c.id = course_id
                      AND (c.instructor_id = current_user_id() OR administers(c.organization_id))));

CREATE POLICY course_modules_privileged ON course_modules USING (is_privileged());
CREATE POLICY course_modules_read ON course_modules FOR SELECT USING (can_view_course(course_id));
CREATE POLICY course_modules_edit ON course_modules
  USING (teaches(course_id, 'edit_content') OR EXISTS (SELECT 1 FROM courses c WHERE c.id = course_id
         AND (c.instructor_id = current_user_id() OR administers(c.organization_id))))
  WITH CHECK (teaches(course_id, 'edit_content') OR EXISTS (SELECT 1 FROM courses c WHERE c.id = course_id
         AND (c.instructor_id = current_user_id() OR administers(c.organization_id))));

CREATE POLICY course_lessons_privileged ON course_lessons USING (is_privileged());
CREATE POLICY course_lessons_read ON course_lessons FOR SELECT USING (can_view_course(course_id));
CREATE POLICY course_lessons_edit ON course_lessons
  USING (teaches(course_id, 'edit_content') OR EXISTS (SELECT 1 FROM courses c WHERE c.id = course_id
         AND (c.instructor_id = current_user_id() OR administers(c.organization_id))))
  WITH CHECK (teaches(course_id, 'edit_content') OR EXISTS (SELECT 1 FROM courses c WHERE c.id = course_id
         AND (c.instructor_id = current_user_id() OR administers(c.organization_id))));

-- Enrollments and progress: students their own; the course's teaching team and the
-- organization's admins the course's.
CREATE POLICY enrollments_privileged ON enrollments USING (is_privileged());
CREATE POLICY enrollments_student ON enrollments
  USING (student_id = current_user_id()) WITH CHECK (student_id = current_user_id());
CREATE POLICY enrollments_team_read ON enrollments FOR SELECT
  USING (instructor_id = current_user_id() OR teaches(course_id) OR administers(organization_id));

CREATE POLICY lesson_progress_privileged ON lesson_progress USING (is_privileged());
CREATE POLICY lesson_progress_student ON lesson_progress
  USING (student_id = current_user_id()) WITH CHECK (student_id = current_user_id());
CREATE POLICY lesson_progress_team_read ON lesson_progress FOR SELECT USING (teaches(course_id));

CREATE POLICY student_progress_privileged ON student_progress USING (is_privileged());
CREATE POLICY student_progress_student_read ON student_progress FOR SELECT USING (student_id = current_user_id());
CREATE POLICY student_progress_team_read ON student_progress FOR SELECT
  USING (instructor_id = current_user_id() OR teaches(course_id) OR administers(organization_id));

-- Reviews are public wherever the course is; students write their own (only after
-- completing the course); the teaching team answers.
CREATE POLICY course_reviews_privileged ON course_reviews USING (is_privileged());
CREATE POLICY course_reviews_read ON course_reviews FOR SELECT USING (can_view_course(course_id));
CREATE POLICY course_reviews_author_insert ON course_reviews FOR INSERT
  WITH CHECK (student_id = current_user_id()
              AND EXISTS (SELECT 1 FROM enrollments e WHERE e.id = enrollment_id
                          AND e.student_id = current_user_id() AND e.status = 'completed'));
CREATE POLICY course_reviews_author_update ON course_reviews FOR UPDATE
  USING (student_id = current_user_id()) WITH CHECK (student_id = current_user_id());
CREATE POLICY course_reviews_author_delete ON course_reviews FOR DELETE USING (student_id = current_user_id());
CREATE POLICY course_reviews_team_respond ON course_reviews FOR UPDATE
  USING (teaches(course_id, 'respond_to_reviews') OR instructor_id = current_user_id()
         OR EXISTS (SELECT 1 FROM courses c WHERE c.id = course_id AND administers(c.organization_id)))
  WITH CHECK (teaches(course_id, 'respond_to_reviews') OR instructor_id = current_user_id()
              OR EXISTS (SELECT 1 FROM courses c WHERE c.id = course_id AND administers(c.organization_id)));

CREATE POLICY review_votes_privileged ON review_votes USING (is_privileged());
CREATE POLICY review_votes_read ON review_votes FOR SELECT USING (true);
CREATE POLICY review_votes_voter ON review_votes
  USING (voter_id = current_user_id()) WITH CHECK (voter_id = current_user_id());
