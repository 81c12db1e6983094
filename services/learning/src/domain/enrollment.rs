//! An enrollment's rules: who may enroll, the status a new or reopened enrollment takes,
//! how a status change moves the course's counts, and the event verb it publishes.
//!
//! Enroll's single statement (migration 0009's `enroll()`) applies [`decide_enroll`] inside
//! the database, for one round trip; the store reports its refusals as
//! [`EnrollRefusal`]s, and the reopen path decides here from the rows it loaded. The
//! `enroll_rules_agree_with_the_database` test in `tests/enrollments.rs` holds the two
//! together.

use super::{CourseStatus, EnrollmentStatus, EnrollmentType};

/// What enrolling reads of a course.
#[derive(Debug, Clone, Copy)]
pub struct EnrollmentTerms {
    pub status: CourseStatus,
    pub enrollment_type: EnrollmentType,
    pub price_minor: i64,
}

/// Why a student may not enroll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollRefusal {
    NotPublished,
    /// Joined through one of the course's cohorts, not directly.
    CohortOnly,
    /// One enrollment per student per course; only a cancelled one is reopened.
    AlreadyEnrolled,
}

impl std::fmt::Display for EnrollRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotPublished => "only published courses take enrollments",
            Self::CohortOnly => "this course is joined through one of its cohorts",
            Self::AlreadyEnrolled => "the student is already enrolled in this course",
        })
    }
}

/// What enrolling does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollDecision {
    /// A new enrollment, in this status.
    Open(EnrollmentStatus),
    /// The student's cancelled enrollment comes back, in this status.
    Reopen(EnrollmentStatus),
}

/// Free courses open active; paid ones wait for their payment.
pub fn opening_status(price_minor: i64) -> EnrollmentStatus {
    if price_minor == 0 {
        EnrollmentStatus::Active
    } else {
        EnrollmentStatus::PendingPayment
    }
}

/// Whether a student may enroll in a course, given their existing enrollment's status.
pub fn decide_enroll(
    course: &EnrollmentTerms,
    existing: Option<EnrollmentStatus>,
) -> Result<EnrollDecision, EnrollRefusal> {
    if course.status != CourseStatus::Published {
        return Err(EnrollRefusal::NotPublished);
    }
    if course.enrollment_type == EnrollmentType::CohortOnly {
        return Err(EnrollRefusal::CohortOnly);
    }
    let status = opening_status(course.price_minor);
    match existing {
        None => Ok(EnrollDecision::Open(status)),
        Some(EnrollmentStatus::Cancelled) => Ok(EnrollDecision::Reopen(status)),
        Some(_) => Err(EnrollRefusal::AlreadyEnrolled),
    }
}

/// An allowed change of an enrollment's status, with what it does to the course's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrollmentChange {
    pub from: EnrollmentStatus,
    pub to: EnrollmentStatus,
    /// Added to the course's `enrolled_count`: students who are or were taught.
    pub enrolled_delta: i64,
    /// Added to the course's `completed_count`.
    pub completed_delta: i64,
    /// A cancelled enrollment starting afresh at the course's current price.
    pub reopens: bool,
}

impl EnrollmentChange {
    /// Whether the course's counts move at all.
    pub fn moves_counts(&self) -> bool {
        self.enrolled_delta != 0 || self.completed_delta != 0
    }

    /// The verb of the event the change publishes (`learning.enrollment.<verb>`).
    pub fn verb(&self) -> &'static str {
        event_verb(self.to)
    }
}

/// A refused status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitionRefused {
    pub from: EnrollmentStatus,
    pub to: EnrollmentStatus,
}

impl std::fmt::Display for TransitionRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "an enrollment that is {} cannot become {}",
            self.from, self.to
        )
    }
}

/// Moving an enrollment from `from` to `to`: allowed along its lifecycle only.
pub fn decide_transition(
    from: EnrollmentStatus,
    to: EnrollmentStatus,
) -> Result<EnrollmentChange, TransitionRefused> {
    if !from.can_become(to) {
        return Err(TransitionRefused { from, to });
    }
    let completed = |s: EnrollmentStatus| i64::from(s == EnrollmentStatus::Completed);
    Ok(EnrollmentChange {
        from,
        to,
        enrolled_delta: i64::from(to.counts_as_enrolled()) - i64::from(from.counts_as_enrolled()),
        completed_delta: completed(to) - completed(from),
        reopens: from == EnrollmentStatus::Cancelled,
    })
}

/// The event verb for the status an enrollment reached. A pending enrollment was
/// `created`, whether new or reopened.
pub fn event_verb(status: EnrollmentStatus) -> &'static str {
    match status {
        EnrollmentStatus::PendingPayment => "created",
        EnrollmentStatus::Active => "activated",
        EnrollmentStatus::Completed => "completed",
        EnrollmentStatus::Cancelled => "cancelled",
        EnrollmentStatus::Refunded => "refunded",
    }
}

/// Why progress may not be recorded on an enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotLearning(pub EnrollmentStatus);

impl std::fmt::Display for NotLearning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "progress is recorded on active enrollments; this one is {}",
            self.0
        )
    }
}

/// Progress is recorded while a student is learning, or after they completed the course.
pub fn may_record_progress(status: EnrollmentStatus) -> Result<(), NotLearning> {
    match status {
        EnrollmentStatus::Active | EnrollmentStatus::Completed => Ok(()),
        other => Err(NotLearning(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EnrollmentStatus::*;

    fn course(
        status: CourseStatus,
        enrollment_type: EnrollmentType,
        price: i64,
    ) -> EnrollmentTerms {
        EnrollmentTerms {
            status,
            enrollment_type,
            price_minor: price,
        }
    }

    #[test]
    fn published_open_courses_take_students_free_ones_at_once() {
        let free = course(CourseStatus::Published, EnrollmentType::Open, 0);
        let paid = course(CourseStatus::Published, EnrollmentType::Hybrid, 4999);
        assert_eq!(decide_enroll(&free, None), Ok(EnrollDecision::Open(Active)));
        assert_eq!(
            decide_enroll(&paid, None),
            Ok(EnrollDecision::Open(PendingPayment))
        );
        let draft = course(CourseStatus::Draft, EnrollmentType::Open, 0);
        assert_eq!(
            decide_enroll(&draft, None),
            Err(EnrollRefusal::NotPublished)
        );
        let cohort = course(CourseStatus::Published, EnrollmentType::CohortOnly, 0);
        assert_eq!(decide_enroll(&cohort, None), Err(EnrollRefusal::CohortOnly));
    }

    #[test]
    fn only_a_cancelled_enrollment_is_reopened() {
        let paid = course(CourseStatus::Published, EnrollmentType::Open, 100);
        assert_eq!(
            decide_enroll(&paid, Some(Cancelled)),
            Ok(EnrollDecision::Reopen(PendingPayment))
        );
        for status in [PendingPayment, Active, Completed, Refunded] {
            assert_eq!(
                decide_enroll(&paid, Some(status)),
                Err(EnrollRefusal::AlreadyEnrolled)
            );
        }
        // The course's own state is checked first: an archived course reopens nothing.
        let archived = course(CourseStatus::Archived, EnrollmentType::Open, 0);
        assert_eq!(
            decide_enroll(&archived, Some(Cancelled)),
            Err(EnrollRefusal::NotPublished)
        );
    }

    #[test]
    fn transitions_move_the_counts_by_what_changed() {
        let activated = decide_transition(PendingPayment, Active).unwrap();
        assert_eq!(
            (activated.enrolled_delta, activated.completed_delta),
            (1, 0)
        );
        assert_eq!(activated.verb(), "activated");
        let completed = decide_transition(Active, Completed).unwrap();
        assert_eq!(
            (completed.enrolled_delta, completed.completed_delta),
            (0, 1)
        );
        let refunded = decide_transition(Completed, Refunded).unwrap();
        assert_eq!(
            (refunded.enrolled_delta, refunded.completed_delta),
            (-1, -1)
        );
        let cancelled = decide_transition(PendingPayment, Cancelled).unwrap();
        assert!(!cancelled.moves_counts());
        let reopened = decide_transition(Cancelled, PendingPayment).unwrap();
        assert!(reopened.reopens && !reopened.moves_counts());
        assert_eq!(reopened.verb(), "created");
        assert_eq!(
            decide_transition(Refunded, Active),
            Err(TransitionRefused {
                from: Refunded,
                to: Active
            })
        );
    }

    #[test]
    fn progress_is_recorded_while_learning_or_after_completing() {
        assert!(may_record_progress(Active).is_ok());
        assert!(may_record_progress(Completed).is_ok());
        assert_eq!(
            may_record_progress(PendingPayment).unwrap_err().to_string(),
            "progress is recorded on active enrollments; this one is pending_payment"
        );
    }
}
