//! Who may do what with a course: the access matrix, decided from how the caller stands
//! towards the course. Loading that standing (a co-instructor's permissions) is the
//! orchestration's work; deciding from it is this module's.

use lyceum_platform::auth::{Principal, roles};
use uuid::Uuid;

use super::{CourseStatus, Permission, Visibility};

/// What the access matrix reads of a course.
#[derive(Debug, Clone, Copy)]
pub struct CourseScope {
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub status: CourseStatus,
    pub visibility: Visibility,
}

/// What a caller may do with one course.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CourseAccess {
    pub view: bool,
    pub edit: bool,
    pub manage_team: bool,
    pub manage_students: bool,
    pub respond_to_reviews: bool,
}

/// How a signed-in caller stands towards a course.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The primary instructor, the course's organization's admins and platform admins:
    /// every right.
    OwnerOrAdmin,
    /// A member of the teaching team, with the permissions the owner gave them.
    Team(Vec<Permission>),
    /// Anyone else; `member` when the course belongs to the caller's organization.
    Outsider { member: bool },
}

impl Standing {
    /// The standing that needs no database: `None` when the caller may be on the teaching
    /// team, whose permissions the orchestration loads and passes to [`Standing::team`].
    pub fn without_team(principal: &Principal, course: &CourseScope) -> Option<Self> {
        let admin = principal.has_platform_access()
            || course
                .organization_id
                .is_some_and(|org| principal.administers(org));
        (admin || principal.is_user(course.instructor_id)).then_some(Self::OwnerOrAdmin)
    }

    /// The standing of a caller who is not owner or admin, from their team permissions
    /// (`None` when they are not on the team).
    pub fn team(
        principal: &Principal,
        course: &CourseScope,
        permissions: Option<Vec<Permission>>,
    ) -> Self {
        match permissions {
            Some(permissions) => Self::Team(permissions),
            None => Self::Outsider {
                member: course.organization_id.is_some()
                    && course.organization_id == principal.organization_id,
            },
        }
    }
}

impl CourseAccess {
    /// The access matrix. Published courses are visible to everyone, or to the
    /// organization's members when restricted; drafts and archived courses to the team.
    pub fn decide(course: &CourseScope, standing: Option<&Standing>) -> Self {
        let published = course.status == CourseStatus::Published;
        let public = course.visibility == Visibility::Public;
        match standing {
            None => Self {
                view: published && public,
                ..Self::default()
            },
            Some(Standing::OwnerOrAdmin) => Self {
                view: true,
                edit: true,
                manage_team: true,
                manage_students: true,
                respond_to_reviews: true,
            },
            Some(Standing::Team(permissions)) => {
                let holds = |p: Permission| permissions.contains(&p);
                Self {
                    view: true,
                    edit: holds(Permission::EditContent),
                    manage_team: false,
                    manage_students: holds(Permission::ManageStudents),
                    respond_to_reviews: holds(Permission::RespondToReviews),
                }
            }
            Some(Standing::Outsider { member }) => Self {
                view: published && (public || *member),
                ..Self::default()
            },
        }
    }
}

/// Why a caller may not create a course.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateCourseRefusal {
    ForSomeoneElse,
    NotAnInstructor,
    OtherOrganization,
}

impl std::fmt::Display for CreateCourseRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ForSomeoneElse => "only platform admins create courses for others",
            Self::NotAnInstructor => "creating courses needs the instructor role",
            Self::OtherOrganization => "courses belong to the instructor's own organization",
        })
    }
}

/// Who teaches a new course: the caller, or (for platform admins) whoever they name. The
/// caller needs the instructor role, and a course may only join the caller's organization.
pub fn decide_course_creator(
    principal: &Principal,
    instructor: Option<Uuid>,
    organization: Option<Uuid>,
) -> Result<Uuid, CreateCourseRefusal> {
    let platform = principal.has_platform_access();
    let instructor_id = match instructor {
        Some(id) if id != principal.subject && !platform => {
            return Err(CreateCourseRefusal::ForSomeoneElse);
        }
        Some(id) => id,
        None => principal.subject,
    };
    if !platform && !principal.has_role(roles::INSTRUCTOR, principal.organization_id) {
        return Err(CreateCourseRefusal::NotAnInstructor);
    }
    if organization.is_some_and(|org| principal.organization_id != Some(org)) && !platform {
        return Err(CreateCourseRefusal::OtherOrganization);
    }
    Ok(instructor_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn course(status: CourseStatus, visibility: Visibility) -> CourseScope {
        CourseScope {
            instructor_id: Uuid::from_u128(1),
            organization_id: Some(Uuid::from_u128(10)),
            status,
            visibility,
        }
    }

    #[test]
    fn visitors_see_only_published_public_courses() {
        use CourseStatus::*;
        use Visibility::*;
        assert!(CourseAccess::decide(&course(Published, Public), None).view);
        assert!(!CourseAccess::decide(&course(Published, Organization), None).view);
        assert!(!CourseAccess::decide(&course(Draft, Public), None).view);
        let outsider = Standing::Outsider { member: false };
        let member = Standing::Outsider { member: true };
        let restricted = course(Published, Organization);
        assert!(!CourseAccess::decide(&restricted, Some(&outsider)).view);
        assert!(CourseAccess::decide(&restricted, Some(&member)).view);
        assert!(!CourseAccess::decide(&course(Draft, Public), Some(&member)).view);
        assert!(!CourseAccess::decide(&restricted, Some(&member)).edit);
    }

    #[test]
    fn the_team_holds_what_it_was_given_and_only_owners_manage_it() {
        let draft = course(CourseStatus::Draft, Visibility::Public);
        let owner = CourseAccess::decide(&draft, Some(&Standing::OwnerOrAdmin));
        assert!(owner.view && owner.edit && owner.manage_team && owner.manage_students);
        let editor = Standing::Team(vec![Permission::EditContent]);
        let editor = CourseAccess::decide(&draft, Some(&editor));
        assert!(editor.view && editor.edit);
        assert!(!editor.manage_team && !editor.manage_students && !editor.respond_to_reviews);
        let viewer = CourseAccess::decide(&draft, Some(&Standing::Team(vec![])));
        assert_eq!(
            viewer,
            CourseAccess {
                view: true,
                ..CourseAccess::default()
            }
        );
    }
}
