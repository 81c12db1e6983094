//! The resource library's rules: what a resource is made of, who may read it (its access
//! level) and who may write it. Migration 0013's policies say the same in SQL; the API
//! decides with [`ResourceAccess::decide`] and the database agrees.

use lyceum_platform::auth::{Principal, PrincipalKind, roles};
use lyceum_platform::text_enum;
use lyceum_proto::learning::v1 as pb;
use uuid::Uuid;

text_enum! {
    pub enum ResourceType: pb::ResourceType {
        Article = "article" => Article,
        Video = "video" => Video,
        Template = "template" => Template,
    }
}

text_enum! {
    pub enum AccessLevel: pb::ResourceAccessLevel {
        Public = "public" => Public,
        Registered = "registered" => Registered,
        OrganizationMembers = "organization_members" => OrganizationMembers,
        EnrolledStudents = "enrolled_students" => EnrolledStudents,
    }
}

text_enum! {
    pub enum ResourceStatus: pb::ResourceStatus {
        Draft = "draft" => Draft,
        Published = "published" => Published,
    }
}

/// What the access rules read of a resource.
#[derive(Debug, Clone, Copy)]
pub struct ResourceScope {
    pub author_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub course_id: Option<Uuid>,
    pub access_level: AccessLevel,
    pub status: ResourceStatus,
}

/// How the caller stands towards the resource's course, as loaded from the database (all
/// false without a course or a caller).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CourseStanding {
    /// An active or completed enrollment in the course.
    pub learns: bool,
    /// On the course's teaching team (owner, co-instructor or assistant).
    pub teaches: bool,
    /// On the team with the right to edit its content (the owner always).
    pub edits: bool,
}

/// What a caller may do with one resource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceAccess {
    pub view: bool,
    /// Update, publish and delete; also see it as a draft.
    pub write: bool,
}

impl ResourceAccess {
    pub fn decide(
        resource: &ResourceScope,
        principal: Option<&Principal>,
        course: CourseStanding,
    ) -> Self {
        let write = principal.is_some_and(|p| {
            p.has_platform_access()
                || p.is_user(resource.author_id)
                || resource
                    .organization_id
                    .is_some_and(|org| p.administers(org))
                || (resource.course_id.is_some() && course.edits)
        });
        let readable = match resource.access_level {
            AccessLevel::Public => true,
            AccessLevel::Registered => principal.is_some_and(|p| p.kind == PrincipalKind::User),
            AccessLevel::OrganizationMembers => principal.is_some_and(|p| {
                resource.organization_id.is_some() && p.organization_id == resource.organization_id
            }),
            AccessLevel::EnrolledStudents => {
                resource.course_id.is_some() && (course.learns || course.teaches)
            }
        };
        Self {
            view: write || (resource.status == ResourceStatus::Published && readable),
            write,
        }
    }
}

/// Why a resource's fields do not hold together: `(field, message)` for each rule broken.
pub fn content_violations(
    resource_type: ResourceType,
    body: &str,
    content_url: &str,
) -> Vec<(&'static str, &'static str)> {
    let mut found = Vec::new();
    match resource_type {
        ResourceType::Article => {
            if body.is_empty() {
                found.push(("body", "is required for an article"));
            }
            if !content_url.is_empty() {
                found.push((
                    "content_url",
                    "must be empty for an article (its text is the body)",
                ));
            }
        }
        ResourceType::Video | ResourceType::Template => {
            if content_url.is_empty() {
                found.push(("content_url", "is required for a video or a template"));
            } else if !is_web_url(content_url) {
                found.push(("content_url", "must be an http or https URL"));
            }
            if !body.is_empty() {
                found.push(("body", "must be empty for a video or a template"));
            }
        }
    }
    found
}

/// An absolute http(s) URL with a host and no white space.
pub fn is_web_url(raw: &str) -> bool {
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !raw.chars().any(char::is_whitespace)
    })
}

/// Which scope the access level needs: `(field, message)` when it is missing. A course's
/// resource has its course's organization.
pub fn scope_violation(
    level: AccessLevel,
    has_organization: bool,
    has_course: bool,
) -> Option<(&'static str, &'static str)> {
    match level {
        AccessLevel::OrganizationMembers if !has_organization => Some((
            "organization_id",
            "is required for a resource for organization members",
        )),
        AccessLevel::EnrolledStudents if !has_course => Some((
            "course_id",
            "is required for a resource for enrolled students",
        )),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateResourceRefusal {
    NotAnInstructor,
    OtherOrganization,
    NotOnTheTeam,
}

impl std::fmt::Display for CreateResourceRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotAnInstructor => {
                "creating resources needs the instructor role or the organization's admin"
            }
            Self::OtherOrganization => "resources belong to the creator's own organization",
            Self::NotOnTheTeam => {
                "a course's resources are created by its teaching team (with edit_content) or its organization's admins"
            }
        })
    }
}

/// Who may create a resource in `organization` (already the course's organization for a
/// course's resource, `course` being how the creator stands towards that course):
/// platform admins anywhere; others only in their own organization, as the course's team
/// with edit_content (or its organization's admins) for a course's resource, and otherwise
/// as instructors (or the organization's admins).
pub fn decide_create(
    principal: &Principal,
    organization: Option<Uuid>,
    course: Option<CourseStanding>,
) -> Result<(), CreateResourceRefusal> {
    if principal.has_platform_access() {
        return Ok(());
    }
    if organization.is_some_and(|org| principal.organization_id != Some(org)) {
        return Err(CreateResourceRefusal::OtherOrganization);
    }
    let org_admin = organization.is_some_and(|org| principal.administers(org));
    match course {
        Some(course) if course.edits || org_admin => Ok(()),
        Some(_) => Err(CreateResourceRefusal::NotOnTheTeam),
        None if org_admin
            || (principal.kind == PrincipalKind::User
                && principal.has_role(roles::INSTRUCTOR, principal.organization_id)) =>
        {
            Ok(())
        }
        None => Err(CreateResourceRefusal::NotAnInstructor),
    }
}

#[cfg(test)]
mod tests {
    use lyceum_platform::auth::GrantedRole;

    use super::*;

    fn user(org: Option<Uuid>, roles: &[&str]) -> Principal {
        Principal {
            subject: Uuid::now_v7(),
            kind: PrincipalKind::User,
            organization_id: org,
            roles: roles
                .iter()
                .map(|role| GrantedRole {
                    role: (*role).to_owned(),
                    org: if *role == roles::ADMIN { None } else { org },
                })
                .collect(),
            session_id: None,
            scopes: vec![],
        }
    }

    fn resource(
        level: AccessLevel,
        status: ResourceStatus,
        org: Uuid,
        course: Uuid,
    ) -> ResourceScope {
        ResourceScope {
            author_id: Uuid::now_v7(),
            organization_id: Some(org),
            course_id: Some(course),
            access_level: level,
            status,
        }
    }

    const ENROLLED: CourseStanding = CourseStanding {
        learns: true,
        teaches: false,
        edits: false,
    };

    /// The matrix of the issue: access level × caller, for a published resource.
    #[test]
    fn each_access_level_opens_to_exactly_its_callers() {
        use AccessLevel::*;
        let org = Uuid::now_v7();
        let course = Uuid::now_v7();
        let member = user(Some(org), &[roles::MEMBER]);
        let outsider = user(Some(Uuid::now_v7()), &[roles::MEMBER]);
        let loner = user(None, &[]);
        let none = CourseStanding::default();
        // (level, anonymous, user without organization, member, other organization's
        // member, enrolled student of another organization, not-enrolled member)
        let expected = [
            (Public, [true, true, true, true, true, true]),
            (Registered, [false, true, true, true, true, true]),
            (
                OrganizationMembers,
                [false, false, true, false, false, true],
            ),
            (EnrolledStudents, [false, false, false, false, true, false]),
        ];
        for (level, sees) in expected {
            let r = resource(level, ResourceStatus::Published, org, course);
            let got = [
                ResourceAccess::decide(&r, None, none).view,
                ResourceAccess::decide(&r, Some(&loner), none).view,
                ResourceAccess::decide(&r, Some(&member), none).view,
                ResourceAccess::decide(&r, Some(&outsider), none).view,
                ResourceAccess::decide(&r, Some(&outsider), ENROLLED).view,
                ResourceAccess::decide(&r, Some(&member), none).view,
            ];
            assert_eq!(got, sees, "{level}");
        }
    }

    #[test]
    fn the_teaching_team_reads_its_courses_resources_and_editors_write_them() {
        let r = resource(
            AccessLevel::EnrolledStudents,
            ResourceStatus::Published,
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let assistant = user(None, &[roles::INSTRUCTOR]);
        let teaches = CourseStanding {
            teaches: true,
            ..CourseStanding::default()
        };
        let access = ResourceAccess::decide(&r, Some(&assistant), teaches);
        assert!(access.view && !access.write);
        let edits = CourseStanding {
            teaches: true,
            edits: true,
            learns: false,
        };
        assert!(ResourceAccess::decide(&r, Some(&assistant), edits).write);
    }

    #[test]
    fn drafts_are_seen_by_their_writers_only() {
        let org = Uuid::now_v7();
        let mut r = resource(
            AccessLevel::Public,
            ResourceStatus::Draft,
            org,
            Uuid::now_v7(),
        );
        let author = user(Some(org), &[roles::INSTRUCTOR]);
        r.author_id = author.subject;
        let none = CourseStanding::default();
        assert!(!ResourceAccess::decide(&r, None, none).view);
        assert!(!ResourceAccess::decide(&r, Some(&user(Some(org), &[])), none).view);
        assert!(!ResourceAccess::decide(&r, Some(&user(Some(org), &[])), ENROLLED).view);
        assert_eq!(
            ResourceAccess::decide(&r, Some(&author), none),
            ResourceAccess {
                view: true,
                write: true
            }
        );
        let org_admin = user(Some(org), &[roles::ORG_ADMIN]);
        assert!(ResourceAccess::decide(&r, Some(&org_admin), none).write);
        let platform = user(None, &[roles::ADMIN]);
        assert!(ResourceAccess::decide(&r, Some(&platform), none).write);
        let other_admin = user(Some(Uuid::now_v7()), &[roles::ORG_ADMIN]);
        assert!(!ResourceAccess::decide(&r, Some(&other_admin), none).view);
    }

    #[test]
    fn content_and_scope_follow_the_type_and_level() {
        assert!(content_violations(ResourceType::Article, "text", "").is_empty());
        assert_eq!(
            content_violations(ResourceType::Article, "", "https://x.test/a").len(),
            2
        );
        assert!(content_violations(ResourceType::Video, "", "https://cdn.test/v.mp4").is_empty());
        assert_eq!(
            content_violations(ResourceType::Template, "", "ftp://x")[0].0,
            "content_url"
        );
        assert!(!is_web_url("https://"));
        assert!(!is_web_url("https://a b"));
        assert!(scope_violation(AccessLevel::OrganizationMembers, false, false).is_some());
        assert!(scope_violation(AccessLevel::EnrolledStudents, true, false).is_some());
        assert!(scope_violation(AccessLevel::Registered, false, false).is_none());
    }

    #[test]
    fn creators_stay_in_their_organization_and_on_their_courses() {
        let org = Uuid::now_v7();
        let instructor = user(Some(org), &[roles::INSTRUCTOR]);
        let member = user(Some(org), &[roles::MEMBER]);
        assert_eq!(decide_create(&instructor, Some(org), None), Ok(()));
        assert_eq!(decide_create(&instructor, None, None), Ok(()));
        assert_eq!(
            decide_create(&member, Some(org), None),
            Err(CreateResourceRefusal::NotAnInstructor)
        );
        assert_eq!(
            decide_create(&instructor, Some(Uuid::now_v7()), None),
            Err(CreateResourceRefusal::OtherOrganization)
        );
        let outside = CourseStanding::default();
        assert_eq!(
            decide_create(&instructor, Some(org), Some(outside)),
            Err(CreateResourceRefusal::NotOnTheTeam)
        );
        let viewer = CourseStanding {
            teaches: true,
            ..outside
        };
        assert_eq!(
            decide_create(&instructor, Some(org), Some(viewer)),
            Err(CreateResourceRefusal::NotOnTheTeam)
        );
        let editor = CourseStanding {
            teaches: true,
            edits: true,
            learns: false,
        };
        assert_eq!(decide_create(&member, Some(org), Some(editor)), Ok(()));
        let org_admin = user(Some(org), &[roles::ORG_ADMIN]);
        assert_eq!(decide_create(&org_admin, Some(org), Some(outside)), Ok(()));
        assert_eq!(decide_create(&org_admin, Some(org), None), Ok(()));
        let platform = user(None, &[roles::ADMIN]);
        assert_eq!(decide_create(&platform, Some(Uuid::now_v7()), None), Ok(()));
    }
}
