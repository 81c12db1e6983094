//! `lyceum verify` for learning: recomputes each course's enrolled, completed, rating and
//! lesson statistics from the enrollments, reviews and lessons, and repairs drift.

use async_trait::async_trait;
use lyceum_platform::db::Database;
use lyceum_platform::verify::{Drift, Reconciliation};
use uuid::Uuid;

pub struct CourseStatistics;

/// Stored and recomputed values side by side, for courses where any of them differ.
const DRIFT_QUERY: &str = "
    WITH truth AS (
      SELECT c.id,
             (SELECT count(*) FROM enrollments e WHERE e.course_id = c.id AND e.status IN ('active', 'completed')) AS enrolled,
             (SELECT count(*) FROM enrollments e WHERE e.course_id = c.id AND e.status = 'completed') AS completed,
             (SELECT coalesce(sum(r.rating), 0) FROM course_reviews r WHERE r.course_id = c.id) AS rating_sum,
             (SELECT count(*) FROM course_reviews r WHERE r.course_id = c.id) AS reviews,
             (SELECT count(*) FROM course_lessons l WHERE l.course_id = c.id)::int AS lessons
      FROM courses c),
    stored AS (
      SELECT c.id,
             c.enrolled_count + (SELECT coalesce(sum(s.enrolled_count), 0)::bigint
                                 FROM course_count_slots s WHERE s.course_id = c.id) AS enrolled,
             c.completed_count + (SELECT coalesce(sum(s.completed_count), 0)::bigint
                                  FROM course_count_slots s WHERE s.course_id = c.id) AS completed,
             c.rating_sum, c.review_count, c.lesson_count
      FROM courses c)
    SELECT c.id, c.enrolled, t.enrolled, c.completed, t.completed, c.rating_sum, t.rating_sum,
           c.review_count, t.reviews, c.lesson_count, t.lessons
    FROM stored c JOIN truth t ON t.id = c.id
    WHERE (c.enrolled, c.completed, c.rating_sum, c.review_count, c.lesson_count)
          IS DISTINCT FROM (t.enrolled, t.completed, t.rating_sum, t.reviews, t.lessons)";

type DriftRow = (Uuid, i64, i64, i64, i64, i64, i64, i64, i64, i32, i32);

#[async_trait]
impl Reconciliation for CourseStatistics {
    fn name(&self) -> &'static str {
        "learning.course_statistics"
    }

    async fn check(&self, db: &Database) -> anyhow::Result<Vec<Drift>> {
        let mut tx = db.begin_system("course statistics job").await?;
        let rows: Vec<DriftRow> = sqlx::query_as(DRIFT_QUERY).fetch_all(tx.conn()).await?;
        tx.commit().await?;
        let mut drift = Vec::new();
        for (
            id,
            enrolled,
            true_enrolled,
            completed,
            true_completed,
            sum,
            true_sum,
            reviews,
            true_reviews,
            lessons,
            true_lessons,
        ) in rows
        {
            let mut note = |what: &str, stored: String, expected: String| {
                if stored != expected {
                    drift.push(Drift {
                        subject: format!("course {id} {what}"),
                        stored,
                        expected,
                    });
                }
            };
            note(
                "enrolled_count",
                enrolled.to_string(),
                true_enrolled.to_string(),
            );
            note(
                "completed_count",
                completed.to_string(),
                true_completed.to_string(),
            );
            note("rating_sum", sum.to_string(), true_sum.to_string());
            note(
                "review_count",
                reviews.to_string(),
                true_reviews.to_string(),
            );
            note(
                "lesson_count",
                lessons.to_string(),
                true_lessons.to_string(),
            );
        }
        Ok(drift)
    }

    async fn repair(&self, db: &Database) -> anyhow::Result<u64> {
        let mut tx = db.begin_system("course statistics job").await?;
        // The counts' base is set to the recount less the slots, both read in this
        // statement's snapshot, in which every enrollment and its slot increment are
        // either both visible or both not: exact even while enrollments go on.
        let repaired = sqlx::query(
            "WITH truth AS (
               SELECT c.id,
                      (SELECT count(*) FROM enrollments e WHERE e.course_id = c.id AND e.status IN ('active', 'completed'))
                        - (SELECT coalesce(sum(s.enrolled_count), 0)::bigint FROM course_count_slots s WHERE s.course_id = c.id)
                        AS enrolled_base,
                      (SELECT count(*) FROM enrollments e WHERE e.course_id = c.id AND e.status = 'completed')
                        - (SELECT coalesce(sum(s.completed_count), 0)::bigint FROM course_count_slots s WHERE s.course_id = c.id)
                        AS completed_base,
                      (SELECT coalesce(sum(r.rating), 0) FROM course_reviews r WHERE r.course_id = c.id) AS rating_sum,
                      (SELECT count(*) FROM course_reviews r WHERE r.course_id = c.id) AS reviews,
                      (SELECT count(*) FROM course_lessons l WHERE l.course_id = c.id)::int AS lessons
               FROM courses c)
             UPDATE courses c SET enrolled_count = t.enrolled_base, completed_count = t.completed_base,
                    rating_sum = t.rating_sum, review_count = t.reviews, lesson_count = t.lessons
             FROM truth t
             WHERE t.id = c.id
               AND (c.enrolled_count, c.completed_count, c.rating_sum, c.review_count, c.lesson_count)
                   IS DISTINCT FROM (t.enrolled_base, t.completed_base, t.rating_sum, t.reviews, t.lessons)",
        )
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(repaired)
    }
}
