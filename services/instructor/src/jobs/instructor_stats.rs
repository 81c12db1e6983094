//! `lyceum verify` for instructor profiles' statistics: distinct students, published
//! courses and ratings recomputed from the projections they are kept from.

use async_trait::async_trait;
use lyceum_platform::db::Database;
use lyceum_platform::verify::{Drift, Reconciliation};
use uuid::Uuid;

pub struct InstructorStats;

const TRUTH: &str = "
    WITH instructors AS (
           SELECT instructor_id FROM instructor_stats
           UNION SELECT instructor_id FROM instructor_students
           UNION SELECT instructor_id FROM course_projection),
         truth AS (
           SELECT i.instructor_id,
                  (SELECT count(*) FROM instructor_students s WHERE s.instructor_id = i.instructor_id) AS students,
                  (SELECT count(*) FROM course_projection c
                    WHERE c.instructor_id = i.instructor_id AND c.status = 'published') AS courses,
                  (SELECT coalesce(sum(rating_sum), 0)::bigint FROM course_projection c
                    WHERE c.instructor_id = i.instructor_id) AS rating_sum,
                  (SELECT coalesce(sum(review_count), 0)::bigint FROM course_projection c
                    WHERE c.instructor_id = i.instructor_id) AS reviews
           FROM instructors i)";

#[async_trait]
impl Reconciliation for InstructorStats {
    fn name(&self) -> &'static str {
        "instructor.profile_statistics"
    }

    async fn check(&self, db: &Database) -> anyhow::Result<Vec<Drift>> {
        let mut tx = db.begin_system("instructor stats job").await?;
        let rows: Vec<(Uuid, i64, i64, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{TRUTH}
             SELECT t.instructor_id, coalesce(s.total_students, 0), t.students, coalesce(s.total_courses, 0), t.courses,
                    coalesce(s.rating_sum, 0), t.rating_sum, coalesce(s.review_count, 0), t.reviews
             FROM truth t LEFT JOIN instructor_stats s ON s.instructor_id = t.instructor_id
             WHERE (coalesce(s.total_students, 0), coalesce(s.total_courses, 0), coalesce(s.rating_sum, 0),
                    coalesce(s.review_count, 0)) IS DISTINCT FROM (t.students, t.courses, t.rating_sum, t.reviews)"
        )))
        .fetch_all(tx.conn())
        .await?;
        tx.commit().await?;
        let mut drift = Vec::new();
        for (
            id,
            students,
            true_students,
            courses,
            true_courses,
            sum,
            true_sum,
            reviews,
            true_reviews,
        ) in rows
        {
            for (what, stored, expected) in [
                ("total_students", students, true_students),
                ("total_courses", courses, true_courses),
                ("rating_sum", sum, true_sum),
                ("review_count", reviews, true_reviews),
            ] {
                if stored != expected {
                    drift.push(Drift {
                        subject: format!("instructor {id} {what}"),
                        stored: stored.to_string(),
                        expected: expected.to_string(),
                    });
                }
            }
        }
        Ok(drift)
    }

    async fn repair(&self, db: &Database) -> anyhow::Result<u64> {
        let mut tx = db.begin_system("instructor stats job").await?;
        let repaired = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{TRUTH}
             INSERT INTO instructor_stats (instructor_id, total_students, total_courses, rating_sum, review_count)
             SELECT instructor_id, students, courses, rating_sum, reviews FROM truth
             ON CONFLICT (instructor_id) DO UPDATE SET total_students = EXCLUDED.total_students,
               total_courses = EXCLUDED.total_courses, rating_sum = EXCLUDED.rating_sum,
               review_count = EXCLUDED.review_count
             WHERE (instructor_stats.total_students, instructor_stats.total_courses, instructor_stats.rating_sum,
                    instructor_stats.review_count) IS DISTINCT FROM
                   (EXCLUDED.total_students, EXCLUDED.total_courses, EXCLUDED.rating_sum, EXCLUDED.review_count)"
        )))
        .execute(tx.conn())
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(repaired)
    }
}
