//! The gRPC handlers: decode and validate, authorize, call the store in a tenant
//! transaction, publish, encode.

mod courses;
mod enrollments;
mod reviews;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lyceum_platform::ApiError;
use lyceum_platform::auth::Principal;
use lyceum_platform::db::{Database, TenantContext};
use uuid::Uuid;

use crate::domain::{CourseStatus, Permission, Visibility};
use crate::store::courses::CourseRow;
use crate::store::enrollments::CourseTerms;
use crate::store::{Tx, instructors};

#[derive(Clone)]
pub struct LearningApi {
    db: Database,
    course_terms: Arc<CourseTermsCache>,
}

impl LearningApi {
    pub fn new(db: Database) -> Self {
        Self {
            db,
            course_terms: Arc::default(),
        }
    }

    /// A transaction as the caller, or as an anonymous visitor.
    async fn tx_for(&self, principal: Option<&Principal>) -> Result<Tx, ApiError> {
        let context = principal
            .map(TenantContext::for_principal)
            .unwrap_or_else(TenantContext::anonymous);
        Ok(self.db.begin(&context).await?)
    }
}

/// What a caller may do with one course.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CourseAccess {
    pub view: bool,
    pub edit: bool,
    pub manage_team: bool,
    pub manage_students: bool,
    pub respond_to_reviews: bool,
}

/// Works out a caller's rights on a course: its primary instructor, co-instructors by
/// their permissions, its organization's admins, platform admins; published courses are
/// visible to everyone (or to the organization's members when so restricted).
pub(crate) async fn course_access(
    tx: &mut Tx,
    principal: Option<&Principal>,
    course: &CourseRow,
) -> Result<CourseAccess, ApiError> {
    let published = course.status == CourseStatus::Published;
    let public = course.visibility == Visibility::Public;
    let Some(principal) = principal else {
        return Ok(CourseAccess {
            view: published && public,
            ..Default::default()
        });
    };
    let admin = principal.has_platform_access()
        || course
            .organization_id
            .is_some_and(|org| principal.administers(org));
    let owner = principal.is_user(course.instructor_id);
    let co_permissions = if owner || admin {
        None
    } else {
        instructors::permissions_of(tx, course.id, principal.subject).await?
    };
    let holds = |permission: Permission| {
        owner
            || admin
            || co_permissions
                .as_ref()
                .is_some_and(|p| p.iter().any(|x| x == permission.as_str()))
    };
    let member =
        course.organization_id.is_some() && course.organization_id == principal.organization_id;
    Ok(CourseAccess {
        view: (published && (public || member)) || owner || admin || co_permissions.is_some(),
        edit: holds(Permission::EditContent),
        manage_team: owner || admin,
        manage_students: holds(Permission::ManageStudents),
        respond_to_reviews: holds(Permission::RespondToReviews),
    })
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
