//! A course's own rules: how its status moves, what publishing needs, and which of its
//! fields only its owner changes.

use super::{CourseStatus, Visibility};

/// Why a course may not take a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CourseRefusal {
    Transition {
        from: CourseStatus,
        to: CourseStatus,
    },
    /// A course is published with at least one lesson.
    NoLessons,
}

impl std::fmt::Display for CourseRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transition { from, to } => write!(f, "a {from} course cannot become {to}"),
            Self::NoLessons => f.write_str("a course needs at least one lesson to be published"),
        }
    }
}

/// Publishing or archiving: draft → published → archived (a draft may be archived
/// directly), and only a course with lessons is published.
pub fn decide_status_change(
    current: CourseStatus,
    next: CourseStatus,
    lesson_count: i32,
) -> Result<(), CourseRefusal> {
    if !current.can_become(next) {
        return Err(CourseRefusal::Transition {
            from: current,
            to: next,
        });
    }
    if next == CourseStatus::Published && lesson_count == 0 {
        return Err(CourseRefusal::NoLessons);
    }
    Ok(())
}

/// What a course costs, who may see it and how students join: changed by its owner and
/// admins, never by co-instructors, who edit content.
pub const OWNER_ONLY_FIELDS: [&str; 3] = ["price", "visibility", "enrollment_type"];

/// Whether an update touching `paths` needs the owner.
pub fn needs_owner<'a>(mut paths: impl Iterator<Item = &'a str>) -> bool {
    paths.any(|path| OWNER_ONLY_FIELDS.contains(&path))
}

/// A course restricted to an organization's members must belong to one.
pub fn check_visibility(
    visibility: Visibility,
    has_organization: bool,
) -> Result<(), &'static str> {
    if visibility == Visibility::Organization && !has_organization {
        Err("organization visibility needs an organization")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishing_needs_a_lesson_and_a_forward_move() {
        use CourseStatus::*;
        assert_eq!(decide_status_change(Draft, Published, 1), Ok(()));
        assert_eq!(
            decide_status_change(Draft, Published, 0),
            Err(CourseRefusal::NoLessons)
        );
        assert_eq!(decide_status_change(Draft, Archived, 0), Ok(()));
        assert_eq!(
            decide_status_change(Archived, Published, 3),
            Err(CourseRefusal::Transition {
                from: Archived,
                to: Published
            })
        );
        assert_eq!(
            CourseRefusal::Transition {
                from: Archived,
                to: Published
            }
            .to_string(),
            "a archived course cannot become published"
        );
    }

    #[test]
    fn price_visibility_and_enrollment_type_belong_to_the_owner() {
        assert!(needs_owner(["title", "price"].into_iter()));
        assert!(needs_owner(["enrollment_type"].into_iter()));
        assert!(!needs_owner(["title", "description", "tags"].into_iter()));
        assert!(check_visibility(Visibility::Organization, false).is_err());
        assert!(check_visibility(Visibility::Organization, true).is_ok());
        assert!(check_visibility(Visibility::Public, false).is_ok());
    }
}
