-- Learning, part 3: adaptability assessments. Templates of weighted questions, each in one
-- of five dimensions; a user's assessment of a template, its answers, its five dimension
-- scores kept O(1) per answer from running sums, and a monthly rollup per organization of
-- the completed ones, so that the organization's trend reads at most 36 rows.
--
-- Rounding (also in the proto and the README):
-- * a dimension's score is round(weighted_sum / weight_total, 2) over its scored answers
--   (scale, multiple choice, fear-to-confidence; values 0–100), NULL while it has none or
--   their total weight is zero. Text answers are stored and never scored.
-- * the overall score is the mean of the dimensions that have a score (a quick assessment
--   may cover fewer than five), rounded half away from zero (half-up for these
--   non-negative values) to 2 decimals; NULL when no dimension has one.
-- round(numeric) is exact decimal arithmetic; nothing here passes through floats.
--
-- Walls: users see and write their own assessments, org admins read their organization's,
-- platform admins everything; scores, results, sums and the rollup are written only by
-- the service's bookkeeping (lyceum_learning_system); a caller's only status move is
-- abandoning their own assessment in progress.

CREATE TABLE assessment_templates (
  id              uuid PRIMARY KEY,
  -- NULL: a platform template, visible to every signed-in user.
  organization_id uuid,
  created_by      uuid NOT NULL,
  name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description     text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assessment_templates_listing_idx ON assessment_templates (created_at DESC, id DESC);
CREATE INDEX assessment_templates_organization_idx ON assessment_templates (organization_id)
  WHERE organization_id IS NOT NULL;

-- Templates are immutable once created, so that every answer keeps the weight it was
-- scored with and past scores keep their meaning.
CREATE TABLE assessment_questions (
  id          uuid PRIMARY KEY,
  template_id uuid NOT NULL REFERENCES assessment_templates (id) ON DELETE CASCADE,
  position    integer NOT NULL CHECK (position >= 0),
  dimension   text NOT NULL
              CHECK (dimension IN ('individual', 'leadership', 'cultural', 'embedding', 'velocity')),
  answer_type text NOT NULL
              CHECK (answer_type IN ('scale', 'multiple_choice', 'fear_to_confidence', 'text')),
  prompt      text NOT NULL CHECK (length(prompt) BETWEEN 1 AND 2000),
  options     text[] NOT NULL DEFAULT '{}' CHECK (cardinality(options) <= 20),
  -- Thousandths at most; text questions weigh nothing.
  weight      numeric(7, 3) NOT NULL CHECK (weight >= 0 AND weight <= 1000),
  UNIQUE (template_id, position),
  CHECK (answer_type <> 'text' OR weight = 0)
);

CREATE TABLE assessments (
  id                 uuid PRIMARY KEY,
  template_id        uuid NOT NULL REFERENCES assessment_templates (id),
  user_id            uuid NOT NULL,
  organization_id    uuid,
  assessment_type    text NOT NULL CHECK (assessment_type IN ('full', 'quick', 'follow_up')),
  status             text NOT NULL DEFAULT 'in_progress'
                     CHECK (status IN ('in_progress', 'completed', 'abandoned')),
  individual_score   numeric(5, 2) CHECK (individual_score BETWEEN 0 AND 100),
  leadership_score   numeric(5, 2) CHECK (leadership_score BETWEEN 0 AND 100),
  cultural_score     numeric(5, 2) CHECK (cultural_score BETWEEN 0 AND 100),
  embedding_score    numeric(5, 2) CHECK (embedding_score BETWEEN 0 AND 100),
  velocity_score     numeric(5, 2) CHECK (velocity_score BETWEEN 0 AND 100),
  -- The mean of the dimensions that have a score, half-up to 2 decimals.
  overall_score      numeric(5, 2) GENERATED ALWAYS AS (
                       round((coalesce(individual_score, 0) + coalesce(leadership_score, 0)
                              + coalesce(cultural_score, 0) + coalesce(embedding_score, 0)
                              + coalesce(velocity_score, 0))
                             / nullif((individual_score IS NOT NULL)::int
                                      + (leadership_score IS NOT NULL)::int
                                      + (cultural_score IS NOT NULL)::int
                                      + (embedding_score IS NOT NULL)::int
                                      + (velocity_score IS NOT NULL)::int, 0), 2)) STORED,
  answer_count       integer NOT NULL DEFAULT 0 CHECK (answer_count >= 0),
  results            jsonb,
  recommendations    jsonb,
  -- Bumped by every change of the row, under its lock: the version of its events.
  version            bigint NOT NULL DEFAULT 1,
  started_at         timestamptz NOT NULL DEFAULT now(),
  completed_at       timestamptz,
  abandoned_at       timestamptz,
  updated_at         timestamptz NOT NULL DEFAULT now(),
  CHECK ((status = 'completed') = (completed_at IS NOT NULL)),
  CHECK ((status = 'abandoned') = (abandoned_at IS NOT NULL)),
  CHECK ((status = 'completed') = (results IS NOT NULL))
);
CREATE INDEX assessments_user_idx ON assessments (user_id, started_at DESC, id DESC);
CREATE INDEX assessments_organization_idx ON assessments (organization_id, started_at DESC, id DESC)
  WHERE organization_id IS NOT NULL;

CREATE TABLE assessment_answers (
  id            uuid PRIMARY KEY,
  assessment_id uuid NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
  question_id   uuid NOT NULL REFERENCES assessment_questions (id),
  -- Copied from the assessment and the question so that policies, sums and the
  -- reconciliation need no join.
  user_id       uuid NOT NULL,
  dimension     text NOT NULL
                CHECK (dimension IN ('individual', 'leadership', 'cultural', 'embedding', 'velocity')),
  weight        numeric(7, 3) NOT NULL CHECK (weight >= 0),
  value         smallint CHECK (value BETWEEN 0 AND 100),
  text_answer   text CHECK (length(text_answer) BETWEEN 1 AND 5000),
  answered_at   timestamptz NOT NULL DEFAULT now(),
  -- Answering again replaces the answer.
  UNIQUE (assessment_id, question_id),
  CHECK ((value IS NULL) <> (text_answer IS NULL))
);

-- The running sums of each dimension's scored answers: replacing an answer subtracts the
-- old one. Written under the assessment's row lock, which every answer takes first.
CREATE TABLE assessment_dimension_sums (
  assessment_id uuid NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
  dimension     text NOT NULL
                CHECK (dimension IN ('individual', 'leadership', 'cultural', 'embedding', 'velocity')),
  weighted_sum  numeric NOT NULL DEFAULT 0 CHECK (weighted_sum >= 0),
  weight_total  numeric NOT NULL DEFAULT 0 CHECK (weight_total >= 0),
  answer_count  integer NOT NULL DEFAULT 0 CHECK (answer_count >= 0),
  PRIMARY KEY (assessment_id, dimension)
);

-- Completed assessments per organization and calendar month (UTC), added to in the
-- completion's transaction; `lyceum verify` recomputes it from the assessments.
CREATE TABLE org_adaptability_months (
  organization_id uuid NOT NULL,
  month           date NOT NULL CHECK (extract(day FROM month) = 1),
  completed_count bigint NOT NULL DEFAULT 0 CHECK (completed_count >= 0),
  -- Those with an overall score, and the sum of their overall scores.
  scored_count    bigint NOT NULL DEFAULT 0 CHECK (scored_count BETWEEN 0 AND completed_count),
  overall_sum     numeric NOT NULL DEFAULT 0 CHECK (overall_sum >= 0),
  PRIMARY KEY (organization_id, month)
);

-- Whether the caller may answer in an assessment: theirs and in progress. The owner reads
-- it, whatever the caller sees.
CREATE FUNCTION answerable(assessment uuid) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM assessments a
                 WHERE a.id = assessment AND a.user_id = current_user_id()
                   AND a.status = 'in_progress');
END
$$;

-- Whether the caller may see an assessment: its owner, its organization's admins.
CREATE FUNCTION sees_assessment(assessment uuid) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = learning, pg_temp AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM assessments a
                 WHERE a.id = assessment
                   AND (a.user_id = current_user_id() OR administers(a.organization_id)));
END
$$;

ALTER TABLE assessment_templates      ENABLE ROW LEVEL SECURITY;
ALTER TABLE assessment_questions      ENABLE ROW LEVEL SECURITY;
ALTER TABLE assessments               ENABLE ROW LEVEL SECURITY;
ALTER TABLE assessment_answers        ENABLE ROW LEVEL SECURITY;
ALTER TABLE assessment_dimension_sums ENABLE ROW LEVEL SECURITY;
ALTER TABLE org_adaptability_months   ENABLE ROW LEVEL SECURITY;

-- Templates: platform ones for every signed-in user, an organization's for its members;
-- created by platform admins (privileged) and org admins of their organization; never
-- changed.
CREATE POLICY assessment_templates_privileged ON assessment_templates USING (is_privileged());
CREATE POLICY assessment_templates_read ON assessment_templates FOR SELECT
  USING (current_user_id() IS NOT NULL
         AND (organization_id IS NULL OR organization_id = current_org_id()));
CREATE POLICY assessment_templates_org_admin_insert ON assessment_templates FOR INSERT
  WITH CHECK (created_by = current_user_id() AND administers(organization_id));

CREATE POLICY assessment_questions_privileged ON assessment_questions USING (is_privileged());
CREATE POLICY assessment_questions_read ON assessment_questions FOR SELECT
  USING (EXISTS (SELECT 1 FROM assessment_templates t WHERE t.id = template_id));
CREATE POLICY assessment_questions_org_admin_insert ON assessment_questions FOR INSERT
  WITH CHECK (EXISTS (SELECT 1 FROM assessment_templates t
                      WHERE t.id = template_id AND administers(t.organization_id)));

-- Assessments: their owner (in their own organization or none), their organization's
-- admins read.
CREATE POLICY assessments_privileged ON assessments USING (is_privileged());
CREATE POLICY assessments_owner ON assessments
  USING (user_id = current_user_id())
  WITH CHECK (user_id = current_user_id()
              AND (organization_id IS NULL OR organization_id = current_org_id()));
CREATE POLICY assessments_org_admin_read ON assessments FOR SELECT
  USING (administers(organization_id));

-- Answers: written by the assessment's owner while it is in progress; read where the
-- assessment is.
CREATE POLICY assessment_answers_privileged ON assessment_answers USING (is_privileged());
CREATE POLICY assessment_answers_read ON assessment_answers FOR SELECT
  USING (sees_assessment(assessment_id));
CREATE POLICY assessment_answers_owner_insert ON assessment_answers FOR INSERT
  WITH CHECK (user_id = current_user_id() AND answerable(assessment_id));
CREATE POLICY assessment_answers_owner_update ON assessment_answers FOR UPDATE
  USING (user_id = current_user_id() AND answerable(assessment_id))
  WITH CHECK (user_id = current_user_id() AND answerable(assessment_id));

-- Sums and the rollup are the service's: callers read, never write.
CREATE POLICY assessment_dimension_sums_privileged ON assessment_dimension_sums
  FOR SELECT USING (is_privileged());
CREATE POLICY assessment_dimension_sums_read ON assessment_dimension_sums FOR SELECT
  USING (sees_assessment(assessment_id));
CREATE POLICY org_adaptability_months_privileged ON org_adaptability_months
  FOR SELECT USING (is_privileged());
CREATE POLICY org_adaptability_months_org_admin_read ON org_adaptability_months FOR SELECT
  USING (administers(organization_id));

-- Assessments: a caller starts one in progress without scores or results, never changes
-- its parties, and moves it only from in progress to abandoned. Scores, results and
-- completion are the service's bookkeeping.
CREATE FUNCTION assessments_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = learning, pg_temp AS $$
BEGIN
  IF NOT acting_for_caller() OR is_privileged() THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.status <> 'in_progress' OR NEW.answer_count <> 0 OR NEW.version <> 1
       OR NEW.individual_score IS NOT NULL OR NEW.leadership_score IS NOT NULL
       OR NEW.cultural_score IS NOT NULL OR NEW.embedding_score IS NOT NULL
       OR NEW.velocity_score IS NOT NULL OR NEW.results IS NOT NULL
       OR NEW.recommendations IS NOT NULL THEN
      RAISE EXCEPTION 'a new assessment is in progress, without answers or scores'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.user_id <> OLD.user_id OR NEW.template_id <> OLD.template_id
     OR NEW.organization_id IS DISTINCT FROM OLD.organization_id
     OR NEW.assessment_type <> OLD.assessment_type OR NEW.started_at <> OLD.started_at THEN
    RAISE EXCEPTION 'an assessment''s parties are fixed' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.individual_score IS DISTINCT FROM OLD.individual_score
     OR NEW.leadership_score IS DISTINCT FROM OLD.leadership_score
     OR NEW.cultural_score IS DISTINCT FROM OLD.cultural_score
     OR NEW.embedding_score IS DISTINCT FROM OLD.embedding_score
     OR NEW.velocity_score IS DISTINCT FROM OLD.velocity_score
     OR NEW.answer_count <> OLD.answer_count
     OR NEW.results IS DISTINCT FROM OLD.results
     OR NEW.recommendations IS DISTINCT FROM OLD.recommendations
     OR NEW.completed_at IS DISTINCT FROM OLD.completed_at THEN
    RAISE EXCEPTION 'an assessment''s scores and results are kept by the service'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.status <> OLD.status
     AND NOT (OLD.status = 'in_progress' AND NEW.status = 'abandoned') THEN
    RAISE EXCEPTION 'a caller cannot move an assessment from % to %', OLD.status, NEW.status
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER assessments_column_rules BEFORE INSERT OR UPDATE ON assessments
  FOR EACH ROW EXECUTE FUNCTION assessments_column_rules();

-- Answers: to a question of the assessment's own template, with that question's
-- dimension and weight, a value for scored questions and a text for text ones.
CREATE FUNCTION assessment_answers_column_rules() RETURNS trigger
LANGUAGE plpgsql SET search_path = learning, pg_temp AS $$
DECLARE
  q record;
BEGIN
  IF NOT acting_for_caller() OR is_privileged() THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'UPDATE' AND (NEW.assessment_id <> OLD.assessment_id
                           OR NEW.question_id <> OLD.question_id OR NEW.user_id <> OLD.user_id) THEN
    RAISE EXCEPTION 'an answer''s assessment and question are fixed'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT qq.dimension, qq.weight, qq.answer_type INTO q
    FROM assessment_questions qq JOIN assessments a ON a.template_id = qq.template_id
   WHERE qq.id = NEW.question_id AND a.id = NEW.assessment_id;
  IF NOT FOUND OR NEW.dimension <> q.dimension OR NEW.weight <> q.weight
     OR (q.answer_type = 'text') <> (NEW.text_answer IS NOT NULL) THEN
    RAISE EXCEPTION 'an answer is to a question of its assessment''s template, as weighted there'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER assessment_answers_column_rules BEFORE INSERT OR UPDATE ON assessment_answers
  FOR EACH ROW EXECUTE FUNCTION assessment_answers_column_rules();

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA learning FROM PUBLIC;
