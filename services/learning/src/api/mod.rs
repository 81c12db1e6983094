//! The gRPC handlers, as adapters: request → command (validated, every field violation
//! at once), load in a tenant transaction, decide in `domain`, save, publish, encode.

mod assessments;
mod certificates;
mod courses;
mod enrollments;
mod resources;
mod reviews;
mod wire;
mod workshops;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lyceum_platform::ApiError;
use lyceum_platform::auth::Principal;
use lyceum_platform::db::{Database, TenantContext};
use uuid::Uuid;

use crate::domain::access::{CourseAccess, CreateCourseRefusal, Standing};
use crate::domain::course::CourseRefusal;
use crate::domain::enrollment::{EnrollRefusal, NotLearning, TransitionRefused};
use crate::domain::review::ReviewRefusal;
use crate::domain::{CourseId, UserId};
use crate::store::courses::CourseRow;
use crate::store::enrollments::CourseTerms;
use crate::store::{Tx, instructors};

/// What time it is for the rules that depend on it (drip content). The system clock in
/// production; tests move it instead of waiting.
pub type Clock = Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>;

#[derive(Clone)]
pub struct LearningApi {
    db: Database,
    course_terms: Arc<CourseTermsCache>,
    clock: Clock,
}

impl LearningApi {
    pub fn new(db: Database) -> Self {
        Self::with_clock(db, Arc::new(chrono::Utc::now))
    }

    pub fn with_clock(db: Database, clock: Clock) -> Self {
        Self {
            db,
            course_terms: Arc::default(),
            clock,
        }
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        (self.clock)()
    }

    /// A transaction as the caller, or as an anonymous visitor.
    async fn tx_for(&self, principal: Option<&Principal>) -> Result<Tx, ApiError> {
        let context = principal
            .map(TenantContext::for_principal)
            .unwrap_or_else(TenantContext::anonymous);
        Ok(self.db.begin(&context).await?)
    }
}

/// A caller's rights on a course: the access matrix of `domain::access`, with the
/// co-instructor permissions it needs loaded only when the caller is neither owner nor
/// admin.
pub(crate) async fn course_access(
    tx: &mut Tx,
    principal: Option<&Principal>,
    course: &CourseRow,
) -> Result<CourseAccess, ApiError> {
    let scope = course.scope();
    let standing = match principal {
        None => None,
        Some(principal) => Some(match Standing::without_team(principal, &scope) {
            Some(standing) => standing,
            None => {
                let permissions = instructors::permissions_of(
                    tx,
                    CourseId::new(course.id),
                    UserId::new(principal.subject),
                )
                .await?;
                Standing::team(principal, &scope, permissions)
            }
        }),
    };
    Ok(CourseAccess::decide(&scope, standing.as_ref()))
}

/// Loads a course the caller may see, or answers NOT_FOUND (existence does not leak).
pub(crate) async fn visible_course(
    tx: &mut Tx,
    principal: Option<&Principal>,
    id: Uuid,
) -> Result<(CourseRow, CourseAccess), ApiError> {
    let course = crate::store::courses::get(tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("course"))?;
    let access = course_access(tx, principal, &course).await?;
    if !access.view {
        return Err(ApiError::not_found("course"));
    }
    Ok((course, access))
}

pub(crate) use lyceum_platform::convert::{
    decode_time_position as decode_position, paginate_by_time as paginate,
};

/// The terms of courses recently enrolled in, from which Enroll encodes its event before
/// its one statement. Only a guess: the statement compares them with the course's current
/// terms and writes nothing when they differ, so an outdated entry costs a round trip,
/// never a wrong enrollment.
#[derive(Default)]
pub(crate) struct CourseTermsCache {
    entries: Mutex<HashMap<Uuid, CourseTerms>>,
}

impl CourseTermsCache {
    /// Beyond this the cache starts over: enough for the courses being enrolled in now.
    const CAPACITY: usize = 10_000;

    fn get(&self, course: Uuid) -> Option<CourseTerms> {
        self.lock().get(&course).cloned()
    }

    fn put(&self, course: Uuid, terms: CourseTerms) {
        let mut entries = self.lock();
        if entries.len() >= Self::CAPACITY && !entries.contains_key(&course) {
            entries.clear();
        }
        entries.insert(course, terms);
    }

    fn forget(&self, course: Uuid) {
        self.lock().remove(&course);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, CourseTerms>> {
        // A panic while holding the lock cannot leave a half-written map entry.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

// How the domain's refusals answer: a rule the state does not allow is FAILED_PRECONDITION,
// a right the caller lacks PERMISSION_DENIED, a second enrollment ALREADY_EXISTS.

impl From<CreateCourseRefusal> for ApiError {
    fn from(refusal: CreateCourseRefusal) -> Self {
        ApiError::PermissionDenied(refusal.to_string())
    }
}

impl From<CourseRefusal> for ApiError {
    fn from(refusal: CourseRefusal) -> Self {
        ApiError::FailedPrecondition(refusal.to_string())
    }
}

impl From<EnrollRefusal> for ApiError {
    fn from(refusal: EnrollRefusal) -> Self {
        match refusal {
            EnrollRefusal::AlreadyEnrolled => {
                ApiError::already_exists("course_id", refusal.to_string())
            }
            EnrollRefusal::NotPublished | EnrollRefusal::CohortOnly => {
                ApiError::FailedPrecondition(refusal.to_string())
            }
        }
    }
}

impl From<TransitionRefused> for ApiError {
    fn from(refusal: TransitionRefused) -> Self {
        ApiError::FailedPrecondition(refusal.to_string())
    }
}

impl From<NotLearning> for ApiError {
    fn from(refusal: NotLearning) -> Self {
        ApiError::FailedPrecondition(refusal.to_string())
    }
}

impl From<ReviewRefusal> for ApiError {
    fn from(refusal: ReviewRefusal) -> Self {
        ApiError::FailedPrecondition(refusal.to_string())
    }
}
