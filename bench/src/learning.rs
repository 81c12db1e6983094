//! Learning scenarios: Enroll (a write with its outbox events, all into one course),
//! GetCourse and ListCourses (catalogue reads), each with its raw SQL baseline — the
//! statements the service runs, through the same store functions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lyceum_learning::domain::{CourseId, EnrollmentId, UserId};
use lyceum_learning::store::courses::CatalogueFilter;
use lyceum_learning::store::enrollments::{CourseTerms, EnrollOutcome, Enrolling, EnrollmentRow};
use lyceum_learning::store::{courses, enrollments, instructors};
use lyceum_platform::auth::{Principal, with_bearer};
use lyceum_platform::db::TenantContext;
use lyceum_proto::learning::v1 as pb;
use lyceum_proto::learning::v1::course_service_client::CourseServiceClient;
use lyceum_proto::learning::v1::enrollment_service_client::EnrollmentServiceClient;
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

use crate::load::Operation;
use crate::stack::Stack;

fn code(status: tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

fn sql(error: impl std::fmt::Display) -> String {
    format!("sql: {error}")
}

/// Loads `courses` published courses in 20 categories, each with 10 lessons; returns
/// their ids.
pub async fn grow_courses(conn: &mut PgConnection, count: i64) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query(
        "INSERT INTO learning.courses (id, instructor_id, title, description, category, tags, price_minor,
                                       status, published_at, lesson_count, created_at)
         SELECT gen_random_uuid(), gen_random_uuid(), 'Course ' || g, 'A course about topic ' || (g % 97),
                'cat-' || (g % 20), ARRAY['tag-' || (g % 50)], (g % 3) * 1000, 'published',
                now() - make_interval(secs => g), 10, now() - make_interval(secs => g)
         FROM generate_series(1, $1) g",
    )
    .bind(count)
    .execute(&mut *conn)
    .await?;
    sqlx::query("ANALYZE learning.courses")
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query_scalar(
        "SELECT id FROM learning.courses WHERE status = 'published' ORDER BY random() LIMIT 10000",
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// A free published course to enroll into.
pub async fn enrollment_target(conn: &mut PgConnection) -> anyhow::Result<Uuid> {
    Ok(sqlx::query_scalar(
        "INSERT INTO learning.courses (id, instructor_id, title, status, published_at, lesson_count)
         VALUES (gen_random_uuid(), gen_random_uuid(), 'The popular course', 'published', now(), 10)
         RETURNING id",
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// Brings the target course to at least `target` enrollments (with their progress rows).
pub async fn grow_enrollments(
    conn: &mut PgConnection,
    course_id: Uuid,
    target: i64,
) -> anyhow::Result<()> {
    let existing: i64 =
        sqlx::query_scalar("SELECT count(*) FROM learning.enrollments WHERE course_id = $1")
            .bind(course_id)
            .fetch_one(&mut *conn)
            .await?;
    let missing = (target - existing).max(0);
    sqlx::query(
        "WITH course AS (SELECT id, instructor_id FROM learning.courses WHERE id = $1),
              new AS (
                INSERT INTO learning.enrollments (id, course_id, student_id, instructor_id, status, activated_at)
                SELECT gen_random_uuid(), course.id, gen_random_uuid(), course.instructor_id, 'active', now()
                FROM course, generate_series(1, $2)
                RETURNING id, course_id, student_id, instructor_id)
         INSERT INTO learning.student_progress (enrollment_id, course_id, student_id, instructor_id, total_lessons)
         SELECT id, course_id, student_id, instructor_id, 10 FROM new",
    )
    .bind(course_id)
    .bind(missing)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE learning.courses SET enrolled_count = enrolled_count + $2 WHERE id = $1")
        .bind(course_id)
        .bind(missing)
        .execute(&mut *conn)
        .await?;
    // Let the bulk load settle (vacuumed, analysed, checkpointed) so that the measurement
    // that follows sees the volume, not the load's background writes.
    for table in [
        "learning.enrollments",
        "learning.student_progress",
        "learning.courses",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}")))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("CHECKPOINT").execute(&mut *conn).await?;
    Ok(())
}

/// Students who have not enrolled yet, one per call, tokens minted ahead of the run.
pub struct Students {
    pub tokens: Vec<String>,
    pub principals: Vec<Principal>,
}

impl Students {
    pub fn mint(stack: &Stack, count: usize) -> Self {
        let (tokens, principals) = (0..count).map(|_| stack.student(Uuid::now_v7())).unzip();
        Self { tokens, principals }
    }
}

/// Enrollments of fresh students, each call into the next of `courses`.
pub struct EnrollRpc {
    pub stack: Arc<Stack>,
    pub courses: Arc<Vec<Uuid>>,
    pub students: Arc<Students>,
}

#[async_trait]
impl Operation for EnrollRpc {
    async fn call(&self, worker: usize, sequence: u64) -> Result<(), String> {
        let token = self
            .students
            .tokens
            .get(sequence as usize)
            .ok_or("ran out of students")?;
        let course_id = self.courses[sequence as usize % self.courses.len()];
        let mut client = EnrollmentServiceClient::new(self.stack.learning_channel(worker));
        let request = with_bearer(
            Request::new(pb::EnrollRequest {
                course_id: course_id.to_string(),
            }),
            token,
        );
        client.enroll(request).await.map(|_| ()).map_err(code)
    }
}

/// The statement the service runs for a free enrollment (learning's `enroll()` function,
/// with the event encoded from the course's terms), replayed through its store function
/// without gRPC: the cost of the service's own SQL, not a reference design.
pub struct EnrollSql {
    pub stack: Arc<Stack>,
    pub courses: Arc<Vec<Uuid>>,
    pub students: Arc<Students>,
    terms: Mutex<HashMap<Uuid, CourseTerms>>,
}

impl EnrollSql {
    pub fn new(stack: Arc<Stack>, courses: Arc<Vec<Uuid>>, students: Arc<Students>) -> Self {
        Self {
            stack,
            courses,
            students,
            terms: Mutex::default(),
        }
    }
}

#[async_trait]
impl Operation for EnrollSql {
    async fn call(&self, _worker: usize, sequence: u64) -> Result<(), String> {
        let principal = self
            .students
            .principals
            .get(sequence as usize)
            .ok_or("ran out of students")?;
        let course_id = self.courses[sequence as usize % self.courses.len()];
        let db = &self.stack.learning;
        let context = TenantContext::for_principal(principal);
        let enrolled_at = chrono::Utc::now();
        let enrollment_id = Uuid::now_v7();
        let mut terms = self.terms.lock().expect("terms").get(&course_id).cloned();
        for _ in 0..2 {
            let expected = terms.as_ref().map(|terms| {
                let row = EnrollmentRow::opening(
                    EnrollmentId::new(enrollment_id),
                    CourseId::new(course_id),
                    UserId::new(principal.subject),
                    enrolled_at,
                    terms,
                );
                let event = lyceum_learning::events::enrollment_opened(&row, &terms.title);
                (terms, event.into_outbox_row(db.service(), &context))
            });
            let outcome = enrollments::enroll(
                db,
                Enrolling {
                    context: &context,
                    course_id,
                    enrollment_id,
                    enrolled_at,
                    expected,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            match outcome {
                EnrollOutcome::Enrolled { .. } => return Ok(()),
                EnrollOutcome::Stale(current) => {
                    self.terms
                        .lock()
                        .expect("terms")
                        .insert(course_id, current.clone());
                    terms = Some(current);
                }
                other => return Err(format!("enroll: {other:?}")),
            }
        }
        Err("the course's terms kept changing".into())
    }
}

pub struct GetCourseRpc {
    pub stack: Arc<Stack>,
    pub ids: Arc<Vec<Uuid>>,
    pub viewer: String,
}

#[async_trait]
impl Operation for GetCourseRpc {
    async fn call(&self, worker: usize, sequence: u64) -> Result<(), String> {
        let id = self.ids[sequence as usize % self.ids.len()];
        let mut client = CourseServiceClient::new(self.stack.learning_channel(worker));
        let request = with_bearer(
            Request::new(pb::GetCourseRequest { id: id.to_string() }),
            &self.viewer,
        );
        client.get_course(request).await.map(|_| ()).map_err(code)
    }
}

pub struct GetCourseSql {
    pub stack: Arc<Stack>,
    pub ids: Arc<Vec<Uuid>>,
    pub viewer: Principal,
}

#[async_trait]
impl Operation for GetCourseSql {
    async fn call(&self, _worker: usize, sequence: u64) -> Result<(), String> {
        let id = self.ids[sequence as usize % self.ids.len()];
        let mut tx = self
            .stack
            .learning
            .begin(&TenantContext::for_principal(&self.viewer))
            .await
            .map_err(sql)?;
        courses::get(&mut tx, id)
            .await
            .map_err(sql)?
            .ok_or("no course")?;
        instructors::permissions_of(&mut tx, CourseId::new(id), UserId::new(self.viewer.subject))
            .await
            .map_err(sql)?;
        tx.commit().await.map_err(sql)
    }
}

fn category(sequence: u64) -> String {
    format!("cat-{}", sequence % 20)
}

pub struct ListCoursesRpc {
    pub stack: Arc<Stack>,
    pub viewer: String,
}

#[async_trait]
impl Operation for ListCoursesRpc {
    async fn call(&self, worker: usize, sequence: u64) -> Result<(), String> {
        let mut client = CourseServiceClient::new(self.stack.learning_channel(worker));
        let message = pb::ListCoursesRequest {
            page_size: 20,
            category: category(sequence),
            ..Default::default()
        };
        client
            .list_courses(with_bearer(Request::new(message), &self.viewer))
            .await
            .map(|_| ())
            .map_err(code)
    }
}

pub struct ListCoursesSql {
    pub stack: Arc<Stack>,
    pub viewer: Principal,
}

#[async_trait]
impl Operation for ListCoursesSql {
    async fn call(&self, _worker: usize, sequence: u64) -> Result<(), String> {
        let filter = CatalogueFilter {
            status: lyceum_learning::domain::CourseStatus::Published,
            category: Some(category(sequence)),
            ..Default::default()
        };
        let mut tx = self
            .stack
            .learning
            .begin(&TenantContext::for_principal(&self.viewer))
            .await
            .map_err(sql)?;
        courses::list(&mut tx, &filter, None, 21)
            .await
            .map_err(sql)?;
        tx.commit().await.map_err(sql)
    }
}
