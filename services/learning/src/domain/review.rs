//! A review's rules: who may write one, who may vote on it, and what each change does to
//! the course's rating statistics.

use super::EnrollmentStatus;

/// Why a review may not be written or voted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewRefusal {
    NotCompleted,
    OwnVote,
}

impl std::fmt::Display for ReviewRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotCompleted => "only students who completed the course may review it",
            Self::OwnVote => "authors cannot vote on their own review",
        })
    }
}

/// Reviews come from students who completed the course: the student's enrollment, when
/// its status (read by `status_of`) allows one.
pub fn may_review<E>(
    enrollment: Option<E>,
    status_of: impl Fn(&E) -> EnrollmentStatus,
) -> Result<E, ReviewRefusal> {
    enrollment
        .filter(|e| status_of(e) == EnrollmentStatus::Completed)
        .ok_or(ReviewRefusal::NotCompleted)
}

/// Helpfulness is for readers to judge, not authors.
pub fn may_vote(voter_is_author: bool) -> Result<(), ReviewRefusal> {
    if voter_is_author {
        Err(ReviewRefusal::OwnVote)
    } else {
        Ok(())
    }
}

/// What a review's change adds to the course's rating sum and count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatingChange {
    pub verb: &'static str,
    pub sum: i64,
    pub count: i64,
}

impl RatingChange {
    pub fn created(rating: i32) -> Self {
        Self {
            verb: "created",
            sum: i64::from(rating),
            count: 1,
        }
    }

    pub fn updated(old: i32, new: i32) -> Self {
        Self {
            verb: "updated",
            sum: i64::from(new) - i64::from(old),
            count: 0,
        }
    }

    pub fn deleted(rating: i32) -> Self {
        Self {
            verb: "deleted",
            sum: -i64::from(rating),
            count: -1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_students_review_and_readers_vote() {
        let status = |s: &EnrollmentStatus| *s;
        assert_eq!(
            may_review(Some(EnrollmentStatus::Completed), status),
            Ok(EnrollmentStatus::Completed)
        );
        assert_eq!(
            may_review(Some(EnrollmentStatus::Active), status),
            Err(ReviewRefusal::NotCompleted)
        );
        assert_eq!(may_review(None, status), Err(ReviewRefusal::NotCompleted));
        assert_eq!(may_vote(true), Err(ReviewRefusal::OwnVote));
        assert!(may_vote(false).is_ok());
    }

    #[test]
    fn a_reviews_life_leaves_the_ratings_where_they_started() {
        let changes = [
            RatingChange::created(4),
            RatingChange::updated(4, 2),
            RatingChange::deleted(2),
        ];
        let (sum, count) = changes
            .iter()
            .fold((0, 0), |(sum, count), c| (sum + c.sum, count + c.count));
        assert_eq!((sum, count), (0, 0));
        assert_eq!(changes[1].sum, -2);
    }
}
