//! Instructor revenue's types and pure rules: payment statuses and how they move, whose
//! fee a sale pays, what a sale sold, the fee split and its proportional reversal on
//! refunds, and how much a refund may give back. Everything is integer minor units.

mod ids;

pub use ids::{CourseId, PayoutId, UserId};
pub use lyceum_platform::money::{Currency, Money};
use lyceum_platform::text_enum;
use lyceum_proto::instructor::v1 as pb;

text_enum! {
    pub enum PaymentStatus: pb::PaymentStatus {
        Pending = "pending" => Pending,
        Succeeded = "succeeded" => Succeeded,
        Failed = "failed" => Failed,
        Refunded = "refunded" => Refunded,
        PartiallyRefunded = "partially_refunded" => PartiallyRefunded,
    }
}

impl PaymentStatus {
    /// Whether the payment took money that can still be (partly) refunded.
    pub fn is_paid(self) -> bool {
        matches!(
            self,
            PaymentStatus::Succeeded | PaymentStatus::PartiallyRefunded
        )
    }

    /// Statuses move forward only. A provider's confirmation applies to a pending payment,
    /// or to a failed attempt it confirms afterwards; a repeated one changes nothing.
    pub fn takes_success(self) -> bool {
        matches!(self, PaymentStatus::Pending | PaymentStatus::Failed)
    }

    /// A failure applies to a pending payment only: after a success it is late or repeated.
    pub fn takes_failure(self) -> bool {
        self == PaymentStatus::Pending
    }
}

/// Whose platform fee a sale pays, fixed when its payment succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeSource {
    /// The fee of the enrollment's instructor, as learning told it.
    EnrollmentInstructor(uuid::Uuid),
    /// The fee of the workshop registration's instructor (the workshop's owner), as
    /// learning told it.
    RegistrationInstructor(uuid::Uuid),
    /// The fee of the instructor the payment names.
    NamedInstructor(Option<uuid::Uuid>),
}

/// For an enrollment or a workshop registration, its own instructor: the instructor a
/// payer names is not to be trusted (it could be one with a lower fee). Such a payment
/// that names nothing it paid for pays the platform's fee.
pub fn fee_source(
    payment_type: PaymentType,
    related_entity_id: Option<uuid::Uuid>,
    named_instructor: Option<uuid::Uuid>,
) -> FeeSource {
    match (payment_type, related_entity_id) {
        (PaymentType::CourseEnrollment, Some(enrollment)) => {
            FeeSource::EnrollmentInstructor(enrollment)
        }
        (PaymentType::WorkshopRegistration, Some(registration)) => {
            FeeSource::RegistrationInstructor(registration)
        }
        (PaymentType::CourseEnrollment | PaymentType::WorkshopRegistration, None) => {
            FeeSource::NamedInstructor(None)
        }
        _ => FeeSource::NamedInstructor(named_instructor),
    }
}

/// What a sale sold, which names its revenue transaction's type and ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleItem {
    CourseEnrollment {
        course_id: uuid::Uuid,
        enrollment_id: uuid::Uuid,
    },
    WorkshopRegistration {
        workshop_id: uuid::Uuid,
        registration_id: uuid::Uuid,
    },
}

impl SaleItem {
    pub fn transaction_type(self) -> TransactionType {
        match self {
            SaleItem::CourseEnrollment { .. } => TransactionType::CourseEnrollment,
            SaleItem::WorkshopRegistration { .. } => TransactionType::WorkshopRegistration,
        }
    }
}

text_enum! {
    pub enum Provider: pb::PaymentProvider {
        Stripe = "stripe" => Stripe,
        Paypal = "paypal" => Paypal,
        Manual = "manual" => Manual,
    }
}

text_enum! {
    pub enum PaymentType: pb::PaymentType {
        CourseEnrollment = "course_enrollment" => CourseEnrollment,
        WorkshopRegistration = "workshop_registration" => WorkshopRegistration,
        Engagement = "engagement" => Engagement,
        Subscription = "subscription" => Subscription,
        Other = "other" => Other,
    }
}

text_enum! {
    pub enum TransactionType: pb::TransactionType {
        CourseEnrollment = "course_enrollment" => CourseEnrollment,
        WorkshopRegistration = "workshop_registration" => WorkshopRegistration,
        Refund = "refund" => Refund,
    }
}

text_enum! {
    pub enum ActivityType: pb::ActivityType {
        Enrolled = "enrolled" => Enrolled,
        LessonStarted = "lesson_started" => LessonStarted,
        LessonCompleted = "lesson_completed" => LessonCompleted,
        QuizPassed = "quiz_passed" => QuizPassed,
        CourseCompleted = "course_completed" => CourseCompleted,
        ReviewPosted = "review_posted" => ReviewPosted,
        EnrollmentCancelled = "enrollment_cancelled" => EnrollmentCancelled,
        WorkshopAttended = "workshop_attended" => WorkshopAttended,
    }
}

/// The default platform fee: 20 %.
pub const DEFAULT_FEE_BPS: i32 = 2000;

/// A fee percentage as basis points (20.00 % = 2000), from a percent with at most two
/// decimals.
pub fn fee_bps_from_percent(percent: f64) -> Result<i32, String> {
    if !(0.0..=100.0).contains(&percent) || !percent.is_finite() {
        return Err("must be from 0 to 100".into());
    }
    let bps = (percent * 100.0).round();
    if ((bps / 100.0) - percent).abs() > 1e-9 {
        return Err("must have at most two decimals".into());
    }
    Ok(bps as i32)
}

/// `amount × bps / 10000`, rounded half-up to the minor unit (amounts are positive).
pub fn fee_for(amount_minor: i64, fee_bps: i32) -> i64 {
    let product = i128::from(amount_minor) * i128::from(fee_bps);
    ((product + 5_000) / 10_000) as i64
}

/// The fee returned by a refund, so that the fees returned so far stay proportional to
/// the amount refunded so far and add up to the whole fee once everything is refunded.
pub fn fee_refund(amount_minor: i64, fee_minor: i64, refunded_before: i64, refund: i64) -> i64 {
    let proportional = |refunded: i64| -> i64 {
        let product = i128::from(fee_minor) * i128::from(refunded);
        let amount = i128::from(amount_minor);
        ((product * 2 + amount) / (amount * 2)) as i64
    };
    proportional(refunded_before + refund) - proportional(refunded_before)
}

/// Why a refund cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundRefusal {
    /// Only a succeeded or partly refunded payment has money to give back.
    NotPaid(PaymentStatus),
    /// More was asked than is left to refund.
    ExceedsRemaining { remaining: i64 },
}

impl std::fmt::Display for RefundRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotPaid(status) => write!(f, "a {status} payment cannot be refunded"),
            Self::ExceedsRemaining { remaining } => {
                write!(f, "exceeds what is left to refund ({remaining})")
            }
        }
    }
}

/// What a refund gives back: the amount asked, or everything left when none is asked
/// (0), never more than what is left of a paid payment. `requested` is not negative (the
/// request's validation refuses that).
pub fn refund_amount(
    status: PaymentStatus,
    amount_minor: i64,
    refunded_minor: i64,
    requested: i64,
) -> Result<i64, RefundRefusal> {
    if !status.is_paid() {
        return Err(RefundRefusal::NotPaid(status));
    }
    let remaining = amount_minor - refunded_minor;
    let amount = if requested == 0 { remaining } else { requested };
    if amount > remaining {
        return Err(RefundRefusal::ExceedsRemaining { remaining });
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_statuses_only_move_forward() {
        use PaymentStatus::*;
        assert!(Pending.takes_success() && Failed.takes_success());
        assert!(!Succeeded.takes_success() && !Refunded.takes_success());
        assert!(Pending.takes_failure());
        for later in [Succeeded, Failed, Refunded, PartiallyRefunded] {
            assert!(!later.takes_failure(), "{later}");
        }
    }

    #[test]
    fn an_enrollment_pays_its_own_instructors_fee_whoever_the_payer_names() {
        let (enrollment, named) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        assert_eq!(
            fee_source(PaymentType::CourseEnrollment, Some(enrollment), Some(named)),
            FeeSource::EnrollmentInstructor(enrollment)
        );
        assert_eq!(
            fee_source(PaymentType::CourseEnrollment, None, Some(named)),
            FeeSource::NamedInstructor(None)
        );
        assert_eq!(
            fee_source(PaymentType::Other, Some(enrollment), Some(named)),
            FeeSource::NamedInstructor(Some(named))
        );
    }

    #[test]
    fn a_registration_pays_its_workshops_instructors_fee_whoever_the_payer_names() {
        let (registration, named) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        assert_eq!(
            fee_source(
                PaymentType::WorkshopRegistration,
                Some(registration),
                Some(named)
            ),
            FeeSource::RegistrationInstructor(registration)
        );
        assert_eq!(
            fee_source(PaymentType::WorkshopRegistration, None, Some(named)),
            FeeSource::NamedInstructor(None)
        );
    }

    #[test]
    fn a_refund_gives_back_what_is_asked_or_everything_left_and_never_more() {
        let paid = PaymentStatus::Succeeded;
        assert_eq!(refund_amount(paid, 5000, 0, 0), Ok(5000));
        assert_eq!(refund_amount(paid, 5000, 0, 1200), Ok(1200));
        let partly = PaymentStatus::PartiallyRefunded;
        assert_eq!(refund_amount(partly, 5000, 1200, 0), Ok(3800));
        assert_eq!(refund_amount(partly, 5000, 1200, 3800), Ok(3800));
        assert_eq!(
            refund_amount(partly, 5000, 1200, 3801),
            Err(RefundRefusal::ExceedsRemaining { remaining: 3800 })
        );
    }

    #[test]
    fn only_a_paid_payment_can_be_refunded() {
        for status in [
            PaymentStatus::Pending,
            PaymentStatus::Failed,
            PaymentStatus::Refunded,
        ] {
            assert_eq!(
                refund_amount(status, 5000, 0, 0),
                Err(RefundRefusal::NotPaid(status))
            );
        }
    }

    #[test]
    fn fees_round_half_up_and_earnings_take_the_rest() {
        assert_eq!(fee_for(4999, 2000), 1000); // 999.8
        assert_eq!(fee_for(2, 2500), 1); // 0.5 rounds up
        assert_eq!(fee_for(1, 2000), 0); // 0.2
        assert_eq!(fee_for(10_000, 1750), 1750);
    }

    #[test]
    fn partial_refunds_return_the_fee_in_proportion_and_in_full_at_the_end() {
        let (amount, fee) = (4999, fee_for(4999, 2000));
        let refunds = [1000, 333, 2000, 1666];
        let mut refunded = 0;
        let mut fee_returned = 0;
        for refund in refunds {
            let returned = fee_refund(amount, fee, refunded, refund);
            assert!(returned >= 0 && returned <= refund);
            fee_returned += returned;
            refunded += refund;
        }
        assert_eq!(refunded, amount);
        assert_eq!(fee_returned, fee);
    }

    #[test]
    fn fee_percentages_are_parsed_to_basis_points() {
        assert_eq!(fee_bps_from_percent(20.0), Ok(2000));
        assert_eq!(fee_bps_from_percent(12.5), Ok(1250));
        assert!(fee_bps_from_percent(12.345).is_err());
        assert!(fee_bps_from_percent(101.0).is_err());
        assert!(fee_bps_from_percent(-1.0).is_err());
    }
}
