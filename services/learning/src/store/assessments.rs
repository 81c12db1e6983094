//! Assessment templates and their questions, assessments, answers, each dimension's running
//! sums and the organizations' monthly rollup. Scores leave the database as hundredths
//! (bigint) and weights as thousandths, so no decimal ever passes through a float.

use chrono::{DateTime, NaiveDate, Utc};
use lyceum_platform::ApiError;
use uuid::Uuid;

use super::{Tx, write_error};
use crate::domain::assessment::{
    AnswerType, AssessmentStatus, AssessmentType, Dimension, Hundredths, Weight,
};

#[derive(Debug, Clone)]
pub struct TemplateRow {
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    pub created_by: Uuid,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct QuestionRow {
    pub id: Uuid,
    pub template_id: Uuid,
    pub position: i32,
    pub dimension: Dimension,
    pub answer_type: AnswerType,
    pub prompt: String,
    pub options: Vec<String>,
    pub weight_milli: i64,
}

/// A question of a new template, validated.
#[derive(Debug, Clone)]
pub struct NewQuestion {
    pub dimension: Dimension,
    pub answer_type: AnswerType,
    pub prompt: String,
    pub options: Vec<String>,
    pub weight: Weight,
}

#[derive(Debug, Clone)]
pub struct AssessmentRow {
    pub id: Uuid,
    pub template_id: Uuid,
    pub user_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub assessment_type: AssessmentType,
    pub status: AssessmentStatus,
    pub individual: Option<Hundredths>,
    pub leadership: Option<Hundredths>,
    pub cultural: Option<Hundredths>,
    pub embedding: Option<Hundredths>,
    pub velocity: Option<Hundredths>,
    pub overall: Option<Hundredths>,
    pub answer_count: i32,
    pub recommendations: Option<serde_json::Value>,
    pub version: i64,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub abandoned_at: Option<DateTime<Utc>>,
}

impl AssessmentRow {
    pub fn scores(&self) -> [(Dimension, Option<Hundredths>); 5] {
        [
            (Dimension::Individual, self.individual),
            (Dimension::Leadership, self.leadership),
            (Dimension::Cultural, self.cultural),
            (Dimension::Embedding, self.embedding),
            (Dimension::Velocity, self.velocity),
        ]
    }
}

#[derive(Debug, Clone)]
pub struct AnswerRow {
    pub question_id: Uuid,
    pub dimension: Dimension,
    pub weight_milli: i64,
    pub value: Option<i16>,
    pub text_answer: Option<String>,
    pub answered_at: DateTime<Utc>,
}

pub async fn insert_template(
    tx: &mut Tx,
    id: Uuid,
    organization_id: Option<Uuid>,
    created_by: Uuid,
    name: &str,
    description: &str,
) -> Result<(), ApiError> {
    sqlx::query!(
        "INSERT INTO assessment_templates (id, organization_id, created_by, name, description)
         VALUES ($1, $2, $3, $4, $5)",
        id,
        organization_id,
        created_by,
        name,
        description
    )
    .execute(tx.conn())
    .await
    .map_err(|e| write_error(e, "template"))?;
    Ok(())
}

pub async fn insert_question(
    tx: &mut Tx,
    template_id: Uuid,
    position: i32,
    question: &NewQuestion,
) -> Result<(), ApiError> {
    sqlx::query!(
        "INSERT INTO assessment_questions (id, template_id, position, dimension, answer_type,
            prompt, options, weight)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bigint / 1000.0)",
        Uuid::now_v7(),
        template_id,
        position,
        question.dimension as _,
        question.answer_type as _,
        question.prompt,
        &question.options,
        question.weight.milli()
    )
    .execute(tx.conn())
    .await
    .map_err(|e| write_error(e, "template"))?;
    Ok(())
}

pub async fn get_template(tx: &mut Tx, id: Uuid) -> Result<Option<TemplateRow>, sqlx::Error> {
    sqlx::query_as!(
        TemplateRow,
        "SELECT id, organization_id, created_by, name, description, created_at
         FROM assessment_templates WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn list_templates(
    tx: &mut Tx,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<TemplateRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as!(
        TemplateRow,
        "SELECT id, organization_id, created_by, name, description, created_at
         FROM assessment_templates
         WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2::uuid))
         ORDER BY created_at DESC, id DESC
         LIMIT $3",
        after_time,
        after_id,
        limit
    )
    .fetch_all(tx.conn())
    .await
}

pub async fn questions_of(tx: &mut Tx, template_id: Uuid) -> Result<Vec<QuestionRow>, sqlx::Error> {
    sqlx::query_as!(
        QuestionRow,
        r#"SELECT id, template_id, position, dimension, answer_type, prompt, options,
                (weight * 1000)::bigint AS "weight_milli!"
         FROM assessment_questions WHERE template_id = $1 ORDER BY position"#,
        template_id
    )
    .fetch_all(tx.conn())
    .await
}

pub async fn question(
    tx: &mut Tx,
    template_id: Uuid,
    id: Uuid,
) -> Result<Option<QuestionRow>, sqlx::Error> {
    sqlx::query_as!(
        QuestionRow,
        r#"SELECT id, template_id, position, dimension, answer_type, prompt, options,
                (weight * 1000)::bigint AS "weight_milli!"
         FROM assessment_questions WHERE template_id = $1 AND id = $2"#,
        template_id,
        id
    )
    .fetch_optional(tx.conn())
    .await
}

pub async fn insert_assessment(
    tx: &mut Tx,
    id: Uuid,
    template_id: Uuid,
    user_id: Uuid,
    organization_id: Option<Uuid>,
    assessment_type: AssessmentType,
) -> Result<(), ApiError> {
    sqlx::query!(
        "INSERT INTO assessments (id, template_id, user_id, organization_id, assessment_type)
         VALUES ($1, $2, $3, $4, $5)",
        id,
        template_id,
        user_id,
        organization_id,
        assessment_type as _
    )
    .execute(tx.conn())
    .await
    .map_err(|e| write_error(e, "template"))?;
    Ok(())
}

pub async fn get_assessment(tx: &mut Tx, id: Uuid) -> Result<Option<AssessmentRow>, sqlx::Error> {
    sqlx::query_as!(
        AssessmentRow,
        r#"SELECT id, template_id, user_id, organization_id, assessment_type, status,
                (individual_score * 100)::bigint AS individual,
                (leadership_score * 100)::bigint AS leadership,
                (cultural_score * 100)::bigint AS cultural,
                (embedding_score * 100)::bigint AS embedding,
                (velocity_score * 100)::bigint AS velocity,
                (overall_score * 100)::bigint AS overall,
                answer_count, recommendations, version, started_at, completed_at, abandoned_at
         FROM assessments WHERE id = $1"#,
        id
    )
    .fetch_optional(tx.conn())
    .await
}

/// The assessment, locked until the end of the transaction: answers, completion and
/// abandonment of one assessment run one at a time, so its sums are exact.
pub async fn lock_assessment(tx: &mut Tx, id: Uuid) -> Result<Option<AssessmentRow>, sqlx::Error> {
    sqlx::query_as!(
        AssessmentRow,
        r#"SELECT id, template_id, user_id, organization_id, assessment_type, status,
                (individual_score * 100)::bigint AS individual,
                (leadership_score * 100)::bigint AS leadership,
                (cultural_score * 100)::bigint AS cultural,
                (embedding_score * 100)::bigint AS embedding,
                (velocity_score * 100)::bigint AS velocity,
                (overall_score * 100)::bigint AS overall,
                answer_count, recommendations, version, started_at, completed_at, abandoned_at
         FROM assessments WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(tx.conn())
    .await
}

/// The caller's own assessments (`organization` unset) or an organization's, newest first.
pub async fn list_assessments(
    tx: &mut Tx,
    user_id: Option<Uuid>,
    organization_id: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<AssessmentRow>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as!(
        AssessmentRow,
        r#"SELECT id, template_id, user_id, organization_id, assessment_type, status,
                (individual_score * 100)::bigint AS individual,
                (leadership_score * 100)::bigint AS leadership,
                (cultural_score * 100)::bigint AS cultural,
                (embedding_score * 100)::bigint AS embedding,
                (velocity_score * 100)::bigint AS velocity,
                (overall_score * 100)::bigint AS overall,
                answer_count, recommendations, version, started_at, completed_at, abandoned_at
         FROM assessments
         WHERE ($1::uuid IS NULL OR user_id = $1)
           AND ($2::uuid IS NULL OR organization_id = $2)
           AND ($3::timestamptz IS NULL OR (started_at, id) < ($3, $4::uuid))
         ORDER BY started_at DESC, id DESC
         LIMIT $5"#,
        user_id,
        organization_id,
        after_time,
        after_id,
        limit
    )
    .fetch_all(tx.conn())
    .await
}

pub async fn answers_of(tx: &mut Tx, assessment_id: Uuid) -> Result<Vec<AnswerRow>, sqlx::Error> {
    sqlx::query_as!(
        AnswerRow,
        r#"SELECT question_id, dimension, (weight * 1000)::bigint AS "weight_milli!", value,
                text_answer, answered_at
         FROM assessment_answers WHERE assessment_id = $1 ORDER BY answered_at, id"#,
        assessment_id
    )
    .fetch_all(tx.conn())
    .await
}

/// The answer already given to a question, if any (read under the assessment's lock).
pub async fn answer(
    tx: &mut Tx,
    assessment_id: Uuid,
    question_id: Uuid,
) -> Result<Option<AnswerRow>, sqlx::Error> {
    sqlx::query_as!(
        AnswerRow,
        r#"SELECT question_id, dimension, (weight * 1000)::bigint AS "weight_milli!", value,
                text_answer, answered_at
         FROM assessment_answers WHERE assessment_id = $1 AND question_id = $2"#,
        assessment_id,
        question_id
    )
    .fetch_optional(tx.conn())
    .await
}

/// Gives or replaces the caller's answer to a question.
pub async fn upsert_answer(
    tx: &mut Tx,
    assessment_id: Uuid,
    user_id: Uuid,
    question: &QuestionRow,
    value: Option<i16>,
    text_answer: Option<&str>,
) -> Result<(), ApiError> {
    sqlx::query!(
        "INSERT INTO assessment_answers (id, assessment_id, question_id, user_id, dimension,
            weight, value, text_answer)
         VALUES ($1, $2, $3, $4, $5, $6::bigint / 1000.0, $7, $8)
         ON CONFLICT (assessment_id, question_id) DO UPDATE
           SET value = EXCLUDED.value, text_answer = EXCLUDED.text_answer,
               answered_at = now()",
        Uuid::now_v7(),
        assessment_id,
        question.id,
        user_id,
        question.dimension as _,
        question.weight_milli,
        value,
        text_answer
    )
    .execute(tx.conn())
    .await
    .map_err(|e| write_error(e, "question"))?;
    Ok(())
}

/// How an answer moves its dimension's sums: Σ weight·value and Σ weight change by these
/// (in thousandths of weight), the dimension's answers by `answers`.
#[derive(Debug, Clone, Copy)]
pub struct SumsDelta {
    pub dimension: Dimension,
    pub weighted_sum_milli: i64,
    pub weight_total_milli: i64,
    pub answers: i32,
}

/// Bookkeeping (the system role): moves the dimension's running sums, sets its score from
/// them and counts the answer on the assessment. O(1) per answer; run under the
/// assessment's lock.
pub async fn apply_answer(
    tx: &mut Tx,
    assessment_id: Uuid,
    delta: SumsDelta,
    new_answer: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO assessment_dimension_sums (assessment_id, dimension) VALUES ($1, $2)
         ON CONFLICT (assessment_id, dimension) DO NOTHING",
        assessment_id,
        delta.dimension as _
    )
    .execute(tx.conn())
    .await?;
    sqlx::query!(
        r#"WITH sums AS (
             UPDATE assessment_dimension_sums
                SET weighted_sum = weighted_sum + $3::bigint / 1000.0,
                    weight_total = weight_total + $4::bigint / 1000.0,
                    answer_count = answer_count + $5
              WHERE assessment_id = $1 AND dimension = $2
              RETURNING CASE WHEN weight_total > 0 THEN round(weighted_sum / weight_total, 2) END
                        AS score)
           UPDATE assessments a
              SET individual_score = CASE WHEN $2 = 'individual' THEN sums.score ELSE a.individual_score END,
                  leadership_score = CASE WHEN $2 = 'leadership' THEN sums.score ELSE a.leadership_score END,
                  cultural_score = CASE WHEN $2 = 'cultural' THEN sums.score ELSE a.cultural_score END,
                  embedding_score = CASE WHEN $2 = 'embedding' THEN sums.score ELSE a.embedding_score END,
                  velocity_score = CASE WHEN $2 = 'velocity' THEN sums.score ELSE a.velocity_score END,
                  answer_count = a.answer_count + $6,
                  version = a.version + 1,
                  updated_at = now()
             FROM sums
            WHERE a.id = $1"#,
        assessment_id,
        delta.dimension.as_str(),
        delta.weighted_sum_milli,
        delta.weight_total_milli,
        delta.answers,
        i32::from(new_answer)
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Bookkeeping: completes the assessment with its results (the scores, as exact decimals)
/// and recommendations, and adds it to its organization's month.
pub async fn complete(
    tx: &mut Tx,
    id: Uuid,
    recommendations: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"WITH done AS (
             UPDATE assessments
                SET status = 'completed', completed_at = now(), updated_at = now(),
                    version = version + 1, recommendations = $2,
                    results = jsonb_build_object(
                      'individual', individual_score, 'leadership', leadership_score,
                      'cultural', cultural_score, 'embedding', embedding_score,
                      'velocity', velocity_score, 'overall', overall_score,
                      'answers', answer_count)
              WHERE id = $1
              RETURNING organization_id, completed_at, overall_score)
           INSERT INTO org_adaptability_months
             (organization_id, month, completed_count, scored_count, overall_sum)
           SELECT organization_id, date_trunc('month', completed_at AT TIME ZONE 'UTC')::date, 1,
                  (overall_score IS NOT NULL)::int, coalesce(overall_score, 0)
             FROM done WHERE organization_id IS NOT NULL
           ON CONFLICT (organization_id, month) DO UPDATE
             SET completed_count = org_adaptability_months.completed_count + 1,
                 scored_count = org_adaptability_months.scored_count + EXCLUDED.scored_count,
                 overall_sum = org_adaptability_months.overall_sum + EXCLUDED.overall_sum"#,
        id,
        recommendations
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The owner's move: in progress → abandoned (the column rules allow it and no other).
pub async fn abandon(tx: &mut Tx, id: Uuid) -> Result<(), ApiError> {
    sqlx::query!(
        "UPDATE assessments SET status = 'abandoned', abandoned_at = now(), updated_at = now(),
            version = version + 1
         WHERE id = $1 AND status = 'in_progress'",
        id
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct TrendMonthRow {
    pub month: NaiveDate,
    pub completed_count: i64,
    pub average: Option<Hundredths>,
}

/// The organization's months, the current (UTC) one and the `months - 1` before it, from
/// the rollup: one index range scan of at most 36 rows.
pub async fn org_trend(
    tx: &mut Tx,
    organization_id: Uuid,
    months: i32,
) -> Result<Vec<TrendMonthRow>, sqlx::Error> {
    sqlx::query_as!(
        TrendMonthRow,
        r#"WITH months AS (
             SELECT (date_trunc('month', now() AT TIME ZONE 'UTC')
                     - make_interval(months => n))::date AS month
               FROM generate_series(0, $2::int - 1) AS n),
           rollup AS (
             SELECT month, completed_count, scored_count, overall_sum
               FROM org_adaptability_months
              WHERE organization_id = $1 AND month >= (SELECT min(month) FROM months))
           SELECT m.month AS "month!", coalesce(r.completed_count, 0) AS "completed_count!",
                  CASE WHEN r.scored_count > 0
                       THEN (round(r.overall_sum / r.scored_count, 2) * 100)::bigint END AS average
             FROM months m LEFT JOIN rollup r USING (month)
            ORDER BY m.month"#,
        organization_id,
        months
    )
    .fetch_all(tx.conn())
    .await
}

/// The trend's statement, for EXPLAIN in tests and benchmarks.
pub const ORG_TREND_SQL: &str = "WITH months AS (
   SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => n))::date AS month
     FROM generate_series(0, $2::int - 1) AS n),
 rollup AS (
   SELECT month, completed_count, scored_count, overall_sum
     FROM org_adaptability_months
    WHERE organization_id = $1 AND month >= (SELECT min(month) FROM months))
 SELECT m.month, coalesce(r.completed_count, 0),
        CASE WHEN r.scored_count > 0 THEN (round(r.overall_sum / r.scored_count, 2) * 100)::bigint END
   FROM months m LEFT JOIN rollup r USING (month)
  ORDER BY m.month";

/// What `lyceum verify` finds for assessments.
#[derive(Debug, Clone)]
pub struct ScoreDrift {
    pub subject: String,
    pub stored: String,
    pub expected: String,
}

/// Dimension scores and sums that differ from a recomputation from the stored answers, and
/// organization months that differ from the completed assessments (as text, exactly).
pub async fn score_drift(tx: &mut Tx) -> Result<Vec<ScoreDrift>, sqlx::Error> {
    sqlx::query_as!(
        ScoreDrift,
        r#"WITH truth AS (
             SELECT assessment_id, dimension,
                    sum(weight * value) FILTER (WHERE value IS NOT NULL) AS weighted_sum,
                    coalesce(sum(weight) FILTER (WHERE value IS NOT NULL), 0) AS weight_total,
                    count(*)::int AS answers
               FROM assessment_answers GROUP BY assessment_id, dimension),
           dims AS (
             SELECT a.id, d.dimension,
                    CASE d.dimension WHEN 'individual' THEN a.individual_score
                                     WHEN 'leadership' THEN a.leadership_score
                                     WHEN 'cultural' THEN a.cultural_score
                                     WHEN 'embedding' THEN a.embedding_score
                                     ELSE a.velocity_score END AS stored_score,
                    CASE WHEN t.weight_total > 0
                         THEN round(t.weighted_sum / t.weight_total, 2) END AS true_score,
                    s.weighted_sum AS stored_sum, coalesce(t.weighted_sum, 0) AS true_sum,
                    s.weight_total AS stored_weight, t.weight_total AS true_weight
               FROM assessments a
               CROSS JOIN unnest(ARRAY['individual', 'leadership', 'cultural', 'embedding',
                                       'velocity']) AS d(dimension)
               LEFT JOIN truth t ON t.assessment_id = a.id AND t.dimension = d.dimension
               LEFT JOIN assessment_dimension_sums s
                 ON s.assessment_id = a.id AND s.dimension = d.dimension),
           months AS (
             SELECT organization_id, date_trunc('month', completed_at AT TIME ZONE 'UTC')::date AS month,
                    count(*) AS completed_count,
                    count(overall_score) AS scored_count,
                    coalesce(sum(overall_score), 0) AS overall_sum
               FROM assessments
              WHERE status = 'completed' AND organization_id IS NOT NULL
              GROUP BY 1, 2)
           SELECT format('assessment %s %s score', id, dimension) AS "subject!",
                  coalesce(stored_score::text, 'none') AS "stored!",
                  coalesce(true_score::text, 'none') AS "expected!"
             FROM dims WHERE stored_score IS DISTINCT FROM true_score
           UNION ALL
           SELECT format('assessment %s %s sums', id, dimension),
                  format('%s / %s', coalesce(stored_sum, 0), coalesce(stored_weight, 0)),
                  format('%s / %s', true_sum, coalesce(true_weight, 0))
             FROM dims
            WHERE coalesce(stored_sum, 0) <> true_sum
               OR coalesce(stored_weight, 0) <> coalesce(true_weight, 0)
           UNION ALL
           SELECT format('organization %s month %s', coalesce(r.organization_id, m.organization_id),
                         coalesce(r.month, m.month)),
                  format('%s completed, %s scored, sum %s', coalesce(r.completed_count, 0),
                         coalesce(r.scored_count, 0), coalesce(r.overall_sum, 0)),
                  format('%s completed, %s scored, sum %s', coalesce(m.completed_count, 0),
                         coalesce(m.scored_count, 0), coalesce(m.overall_sum, 0))
             FROM org_adaptability_months r
             FULL JOIN months m USING (organization_id, month)
            WHERE r.completed_count IS DISTINCT FROM m.completed_count
               OR r.scored_count IS DISTINCT FROM m.scored_count
               OR r.overall_sum IS DISTINCT FROM m.overall_sum"#
    )
    .fetch_all(tx.conn())
    .await
}

/// Rewrites the sums, the dimension scores and the rollup from the answers and the
/// completed assessments; returns the rows changed.
pub async fn repair_scores(tx: &mut Tx) -> Result<u64, sqlx::Error> {
    let sums = sqlx::query!(
        r#"WITH truth AS (
             SELECT assessment_id, dimension,
                    coalesce(sum(weight * value) FILTER (WHERE value IS NOT NULL), 0) AS weighted_sum,
                    coalesce(sum(weight) FILTER (WHERE value IS NOT NULL), 0) AS weight_total,
                    count(*)::int AS answers
               FROM assessment_answers GROUP BY assessment_id, dimension)
           INSERT INTO assessment_dimension_sums
             (assessment_id, dimension, weighted_sum, weight_total, answer_count)
           SELECT assessment_id, dimension, weighted_sum, weight_total, answers FROM truth
           ON CONFLICT (assessment_id, dimension) DO UPDATE
             SET weighted_sum = EXCLUDED.weighted_sum, weight_total = EXCLUDED.weight_total,
                 answer_count = EXCLUDED.answer_count
           WHERE (assessment_dimension_sums.weighted_sum, assessment_dimension_sums.weight_total,
                  assessment_dimension_sums.answer_count)
                 IS DISTINCT FROM (EXCLUDED.weighted_sum, EXCLUDED.weight_total,
                                   EXCLUDED.answer_count)"#
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    let scores = sqlx::query!(
        r#"WITH score AS (
             SELECT a.id,
                    max(CASE WHEN s.dimension = 'individual' AND s.weight_total > 0
                             THEN round(s.weighted_sum / s.weight_total, 2) END) AS individual,
                    max(CASE WHEN s.dimension = 'leadership' AND s.weight_total > 0
                             THEN round(s.weighted_sum / s.weight_total, 2) END) AS leadership,
                    max(CASE WHEN s.dimension = 'cultural' AND s.weight_total > 0
                             THEN round(s.weighted_sum / s.weight_total, 2) END) AS cultural,
                    max(CASE WHEN s.dimension = 'embedding' AND s.weight_total > 0
                             THEN round(s.weighted_sum / s.weight_total, 2) END) AS embedding,
                    max(CASE WHEN s.dimension = 'velocity' AND s.weight_total > 0
                             THEN round(s.weighted_sum / s.weight_total, 2) END) AS velocity
               FROM assessments a LEFT JOIN assessment_dimension_sums s ON s.assessment_id = a.id
              GROUP BY a.id)
           UPDATE assessments a
              SET individual_score = score.individual, leadership_score = score.leadership,
                  cultural_score = score.cultural, embedding_score = score.embedding,
                  velocity_score = score.velocity, version = a.version + 1
             FROM score
            WHERE a.id = score.id
              AND (a.individual_score, a.leadership_score, a.cultural_score, a.embedding_score,
                   a.velocity_score)
                  IS DISTINCT FROM (score.individual, score.leadership, score.cultural,
                                    score.embedding, score.velocity)"#
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    let stale = sqlx::query!(
        "DELETE FROM org_adaptability_months r
          WHERE NOT EXISTS (SELECT 1 FROM assessments a
                             WHERE a.status = 'completed' AND a.organization_id = r.organization_id
                               AND date_trunc('month', a.completed_at AT TIME ZONE 'UTC')::date = r.month)"
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    let months = sqlx::query!(
        "INSERT INTO org_adaptability_months
           (organization_id, month, completed_count, scored_count, overall_sum)
         SELECT organization_id, date_trunc('month', completed_at AT TIME ZONE 'UTC')::date,
                count(*), count(overall_score), coalesce(sum(overall_score), 0)
           FROM assessments
          WHERE status = 'completed' AND organization_id IS NOT NULL
          GROUP BY 1, 2
         ON CONFLICT (organization_id, month) DO UPDATE
           SET completed_count = EXCLUDED.completed_count, scored_count = EXCLUDED.scored_count,
               overall_sum = EXCLUDED.overall_sum
         WHERE (org_adaptability_months.completed_count, org_adaptability_months.scored_count,
                org_adaptability_months.overall_sum)
               IS DISTINCT FROM (EXCLUDED.completed_count, EXCLUDED.scored_count,
                                 EXCLUDED.overall_sum)"
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(sums + scores + stale + months)
}
