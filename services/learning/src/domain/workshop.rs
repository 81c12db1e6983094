//! A workshop's rules: the terms it may be published with, its status moves, who stands
//! how towards it, what registering costs and does, the registration's status machine
//! (which moves take or give back a seat), attendance, feedback and late payments.
//!
//! Seats are the kit's capacity pool (one per workshop): a registration holds a claim on
//! it exactly while its status [`RegistrationStatus::holds_seat`].

use chrono::{DateTime, Duration, Utc};
use lyceum_platform::auth::{Principal, roles};
use lyceum_platform::text_enum;
use lyceum_proto::learning::v1 as pb;
use uuid::Uuid;

use super::Visibility;

text_enum! {
    pub enum WorkshopStatus: pb::WorkshopStatus {
        Draft = "draft" => Draft,
        Published = "published" => Published,
        Archived = "archived" => Archived,
        Cancelled = "cancelled" => Cancelled,
    }
}

text_enum! {
    pub enum Pillar: pb::Pillar {
        Adaptability = "adaptability" => Adaptability,
        Coaching = "coaching" => Coaching,
        Marketplace = "marketplace" => Marketplace,
    }
}

text_enum! {
    pub enum WorkshopLevel: pb::WorkshopLevel {
        Beginner = "beginner" => Beginner,
        Intermediate = "intermediate" => Intermediate,
        Advanced = "advanced" => Advanced,
    }
}

text_enum! {
    pub enum WorkshopFormat: pb::WorkshopFormat {
        Online = "online" => Online,
        InPerson = "in_person" => InPerson,
        Hybrid = "hybrid" => Hybrid,
    }
}

text_enum! {
    pub enum FacilitatorRole: pb::FacilitatorRole {
        CoFacilitator = "co_facilitator" => CoFacilitator,
        Assistant = "assistant" => Assistant,
    }
}

text_enum! {
    pub enum RegistrationStatus: pb::RegistrationStatus {
        PendingPayment = "pending_payment" => PendingPayment,
        Registered = "registered" => Registered,
        Completed = "completed" => Completed,
        NoShow = "no_show" => NoShow,
        Cancelled = "cancelled" => Cancelled,
        Refunded = "refunded" => Refunded,
    }
}

/// Why a registration was cancelled, as stored and sent in its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    Registrant,
    Staff,
    WorkshopCancelled,
    HoldExpired,
    /// A payment arrived for a lapsed hold and no seat was left for it.
    Unplaced,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registrant => "registrant",
            Self::Staff => "staff",
            Self::WorkshopCancelled => "workshop_cancelled",
            Self::HoldExpired => "hold_expired",
            Self::Unplaced => "unplaced",
        }
    }
}

/// How long a seat waits for its payment.
pub const PAYMENT_HOLD: Duration = Duration::minutes(30);
/// Facilitators mark attendance from this long before the start.
pub const CHECK_IN_OPENS: Duration = Duration::hours(1);
/// The largest workshop.
pub const MAX_CAPACITY: i32 = 100_000;

/// A workshop's schedule, seats and prices, as checked together.
#[derive(Debug, Clone, Copy)]
pub struct WorkshopTerms {
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub capacity: i32,
    pub price_minor: i64,
    pub early_bird: Option<EarlyBird>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarlyBird {
    pub price_minor: i64,
    pub ends_at: DateTime<Utc>,
}

impl WorkshopTerms {
    /// Every rule the terms break, as (field, message), for the caller's violations.
    pub fn violations(&self) -> Vec<(&'static str, &'static str)> {
        let mut found = Vec::new();
        if !(1..=MAX_CAPACITY).contains(&self.capacity) {
            found.push(("capacity", "must be from 1 to 100000 seats"));
        }
        if self.end_time <= self.start_time {
            found.push(("end_time", "must be after start_time"));
        }
        if let Some(early) = self.early_bird {
            if early.price_minor >= self.price_minor {
                found.push(("early_bird_price_minor", "must be below the price"));
            }
            if early.price_minor < 0 {
                found.push(("early_bird_price_minor", "must not be negative"));
            }
            if early.ends_at > self.start_time {
                found.push(("early_bird_end_time", "must be at or before start_time"));
            }
        }
        found
    }

    /// What a registration made at `now` pays.
    pub fn price_at(&self, now: DateTime<Utc>) -> i64 {
        match self.early_bird {
            Some(early) if now < early.ends_at => early.price_minor,
            _ => self.price_minor,
        }
    }
}

/// Why a workshop may not change status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkshopRefusal {
    Move(WorkshopStatus, WorkshopStatus),
    /// Publishing a workshop that has already started.
    InThePast,
    /// Editing a workshop that is no longer a draft or published.
    Closed,
}

impl std::fmt::Display for WorkshopRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Move(from, to) => write!(f, "a {from} workshop cannot become {to}"),
            Self::InThePast => f.write_str("a workshop that has started cannot be published"),
            Self::Closed => f.write_str("archived and cancelled workshops are not edited"),
        }
    }
}

/// draft → published → archived; draft or published → cancelled; a draft may also be
/// archived directly.
pub fn decide_status_change(
    current: WorkshopStatus,
    next: WorkshopStatus,
    start_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), WorkshopRefusal> {
    use WorkshopStatus::*;
    let allowed = matches!(
        (current, next),
        (Draft, Published)
            | (Draft, Archived)
            | (Published, Archived)
            | (Draft, Cancelled)
            | (Published, Cancelled)
    );
    if !allowed {
        return Err(WorkshopRefusal::Move(current, next));
    }
    if next == Published && start_time <= now {
        return Err(WorkshopRefusal::InThePast);
    }
    Ok(())
}

pub fn may_edit(status: WorkshopStatus) -> Result<(), WorkshopRefusal> {
    match status {
        WorkshopStatus::Draft | WorkshopStatus::Published => Ok(()),
        _ => Err(WorkshopRefusal::Closed),
    }
}

/// What the access rules read of a workshop.
#[derive(Debug, Clone, Copy)]
pub struct WorkshopScope {
    pub instructor_id: Uuid,
    pub organization_id: Option<Uuid>,
    pub status: WorkshopStatus,
    pub visibility: Visibility,
}

/// How a caller stands towards a workshop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkshopStanding {
    /// The owner, the workshop's organization's admins and platform admins.
    OwnerOrAdmin,
    /// A co-facilitator or assistant.
    Facilitator,
    /// Anyone else; `member` when the workshop belongs to the caller's organization.
    Outsider { member: bool },
}

impl WorkshopStanding {
    pub fn of(principal: &Principal, workshop: &WorkshopScope, facilitates: bool) -> Self {
        let admin = principal.has_platform_access()
            || workshop
                .organization_id
                .is_some_and(|org| principal.administers(org));
        if admin || principal.is_user(workshop.instructor_id) {
            Self::OwnerOrAdmin
        } else if facilitates {
            Self::Facilitator
        } else {
            Self::Outsider {
                member: workshop.organization_id.is_some()
                    && workshop.organization_id == principal.organization_id,
            }
        }
    }
}

/// What a caller may do with one workshop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkshopAccess {
    pub view: bool,
    /// Edit, publish, archive, cancel, manage facilitators.
    pub manage: bool,
    /// See registrations and feedback, mark attendance, cancel registrations.
    pub run: bool,
}

impl WorkshopAccess {
    /// Drafts are the team's; everything else is visible where the workshop is listed
    /// (public, or its organization's members). `registered`: the caller has a
    /// registration, which keeps the workshop visible to them whatever becomes of it.
    pub fn decide(
        workshop: &WorkshopScope,
        standing: Option<&WorkshopStanding>,
        registered: bool,
    ) -> Self {
        let listed = workshop.status != WorkshopStatus::Draft;
        let public = workshop.visibility == Visibility::Public;
        match standing {
            None => Self {
                view: listed && public,
                ..Self::default()
            },
            Some(WorkshopStanding::OwnerOrAdmin) => Self {
                view: true,
                manage: true,
                run: true,
            },
            Some(WorkshopStanding::Facilitator) => Self {
                view: true,
                manage: false,
                run: true,
            },
            Some(WorkshopStanding::Outsider { member }) => Self {
                view: registered || listed && (public || *member),
                ..Self::default()
            },
        }
    }
}

/// Who owns a new workshop: the caller, or (for platform admins) whoever they name; as
/// for courses, the caller needs the instructor role and stays in their organization.
pub fn decide_workshop_creator(
    principal: &Principal,
    instructor: Option<Uuid>,
    organization: Option<Uuid>,
) -> Result<Uuid, CreateWorkshopRefusal> {
    let platform = principal.has_platform_access();
    let instructor_id = match instructor {
        Some(id) if id != principal.subject && !platform => {
            return Err(CreateWorkshopRefusal::ForSomeoneElse);
        }
        Some(id) => id,
        None => principal.subject,
    };
    if !platform && !principal.has_role(roles::INSTRUCTOR, principal.organization_id) {
        return Err(CreateWorkshopRefusal::NotAnInstructor);
    }
    if organization.is_some_and(|org| principal.organization_id != Some(org)) && !platform {
        return Err(CreateWorkshopRefusal::OtherOrganization);
    }
    Ok(instructor_id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateWorkshopRefusal {
    ForSomeoneElse,
    NotAnInstructor,
    OtherOrganization,
}

impl std::fmt::Display for CreateWorkshopRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ForSomeoneElse => "only platform admins create workshops for others",
            Self::NotAnInstructor => "creating workshops needs the instructor role",
            Self::OtherOrganization => "workshops belong to the instructor's own organization",
        })
    }
}

/// Why a user may not register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterRefusal {
    NotPublished,
    Started,
    /// One registration per user and workshop; only a cancelled or refunded one reopens.
    AlreadyRegistered,
}

impl std::fmt::Display for RegisterRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotPublished => "only published workshops take registrations",
            Self::Started => "the workshop has already started",
            Self::AlreadyRegistered => "the user is already registered for this workshop",
        })
    }
}

/// What registering does: a new registration or a reopened one, in this status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterDecision {
    Open(RegistrationStatus),
    Reopen(RegistrationStatus),
}

/// Free registrations are registered at once; paid ones hold a seat while the payment is
/// pending.
pub fn opening_status(price_minor: i64) -> RegistrationStatus {
    if price_minor == 0 {
        RegistrationStatus::Registered
    } else {
        RegistrationStatus::PendingPayment
    }
}

pub fn decide_register(
    status: WorkshopStatus,
    start_time: DateTime<Utc>,
    price_minor: i64,
    existing: Option<RegistrationStatus>,
    now: DateTime<Utc>,
) -> Result<RegisterDecision, RegisterRefusal> {
    if status != WorkshopStatus::Published {
        return Err(RegisterRefusal::NotPublished);
    }
    if start_time <= now {
        return Err(RegisterRefusal::Started);
    }
    let opening = opening_status(price_minor);
    match existing {
        None => Ok(RegisterDecision::Open(opening)),
        Some(RegistrationStatus::Cancelled | RegistrationStatus::Refunded) => {
            Ok(RegisterDecision::Reopen(opening))
        }
        Some(_) => Err(RegisterRefusal::AlreadyRegistered),
    }
}

impl RegistrationStatus {
    /// Holds a claim on the workshop's seats. Attendees and no-shows keep theirs: the
    /// seat was theirs for the session.
    pub fn holds_seat(self) -> bool {
        use RegistrationStatus::*;
        matches!(self, PendingPayment | Registered | Completed | NoShow)
    }

    pub fn can_become(self, next: RegistrationStatus) -> bool {
        use RegistrationStatus::*;
        matches!(
            (self, next),
            (PendingPayment, Registered)
                | (PendingPayment, Cancelled)
                | (Registered, Completed)
                | (Registered, NoShow)
                | (Registered, Cancelled)
                | (Registered, Refunded)
                | (NoShow, Completed)
                | (Completed, Refunded)
                | (NoShow, Refunded)
                | (Cancelled, Refunded)
                | (Cancelled, PendingPayment)
                | (Cancelled, Registered)
                | (Refunded, PendingPayment)
                | (Refunded, Registered)
        )
    }
}

/// The event verb of a move into `next`.
pub fn registration_verb(next: RegistrationStatus) -> &'static str {
    match next {
        RegistrationStatus::PendingPayment => "created",
        RegistrationStatus::Registered => "activated",
        RegistrationStatus::Completed => "attended",
        RegistrationStatus::NoShow => "no_show",
        RegistrationStatus::Cancelled => "cancelled",
        RegistrationStatus::Refunded => "refunded",
    }
}

/// What a registration's status change does to the workshop's seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatEffect {
    Take,
    Release,
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationChange {
    pub seat: SeatEffect,
    /// The change to the workshop's attended count.
    pub attended_delta: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationRefused {
    pub from: RegistrationStatus,
    pub to: RegistrationStatus,
}

impl std::fmt::Display for RegistrationRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a {} registration cannot become {}", self.from, self.to)
    }
}

pub fn decide_registration_change(
    from: RegistrationStatus,
    to: RegistrationStatus,
) -> Result<RegistrationChange, RegistrationRefused> {
    if !from.can_become(to) {
        return Err(RegistrationRefused { from, to });
    }
    let seat = match (from.holds_seat(), to.holds_seat()) {
        (false, true) => SeatEffect::Take,
        (true, false) => SeatEffect::Release,
        _ => SeatEffect::Keep,
    };
    let attended = |s: RegistrationStatus| i64::from(s == RegistrationStatus::Completed);
    Ok(RegistrationChange {
        seat,
        attended_delta: attended(to) - attended(from),
    })
}

/// Why attendance cannot be marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttendanceRefusal {
    TooEarly,
    NotRunning,
    Status(RegistrationRefused),
}

impl std::fmt::Display for AttendanceRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooEarly => f.write_str("attendance opens an hour before the start"),
            Self::NotRunning => f.write_str("attendance is marked for published workshops"),
            Self::Status(refused) => refused.fmt(f),
        }
    }
}

/// Attended or absent: from an hour before the start, for a workshop that takes place.
/// A no-show may be corrected to attended; an attendance, once marked, stands.
pub fn decide_attendance(
    workshop: WorkshopStatus,
    start_time: DateTime<Utc>,
    current: RegistrationStatus,
    attended: bool,
    now: DateTime<Utc>,
) -> Result<RegistrationStatus, AttendanceRefusal> {
    if !matches!(
        workshop,
        WorkshopStatus::Published | WorkshopStatus::Archived
    ) {
        return Err(AttendanceRefusal::NotRunning);
    }
    if now < start_time - CHECK_IN_OPENS {
        return Err(AttendanceRefusal::TooEarly);
    }
    let next = if attended {
        RegistrationStatus::Completed
    } else {
        RegistrationStatus::NoShow
    };
    if current == next {
        return Ok(next);
    }
    let allowed = matches!(
        (current, next),
        (RegistrationStatus::Registered, _)
            | (RegistrationStatus::NoShow, RegistrationStatus::Completed)
    );
    if !allowed {
        return Err(AttendanceRefusal::Status(RegistrationRefused {
            from: current,
            to: next,
        }));
    }
    Ok(next)
}

/// Feedback is the attendees': registrations marked attended.
pub fn may_give_feedback(status: RegistrationStatus) -> Result<(), FeedbackRefusal> {
    if status == RegistrationStatus::Completed {
        Ok(())
    } else {
        Err(FeedbackRefusal::NotAttended)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackRefusal {
    NotAttended,
}

impl std::fmt::Display for FeedbackRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("only attendees give feedback on a workshop")
    }
}

/// A Net Promoter Score answer, 0–10.
pub fn parse_nps(raw: Option<i32>) -> Result<Option<i32>, String> {
    match raw {
        None => Ok(None),
        Some(n) if (0..=10).contains(&n) => Ok(Some(n)),
        Some(_) => Err("must be from 0 to 10".into()),
    }
}

/// What a succeeded payment does to the registration it pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentDecision {
    /// The seat held for it becomes the registrant's.
    Confirm,
    /// The hold lapsed (or the registrant cancelled): take a free seat if there is one.
    Reclaim,
    /// Already applied, or the registration is past paying for: nothing to do.
    Ignore,
}

pub fn decide_payment(status: RegistrationStatus, paid_already: bool) -> PaymentDecision {
    if paid_already {
        return PaymentDecision::Ignore;
    }
    match status {
        RegistrationStatus::PendingPayment => PaymentDecision::Confirm,
        RegistrationStatus::Cancelled => PaymentDecision::Reclaim,
        _ => PaymentDecision::Ignore,
    }
}

/// Whether a seat may still be taken for a payment that arrives late: the workshop takes
/// registrations.
pub fn may_place_late(
    workshop: WorkshopStatus,
    start_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    workshop == WorkshopStatus::Published && start_time > now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    fn terms() -> WorkshopTerms {
        WorkshopTerms {
            start_time: at(600),
            end_time: at(720),
            capacity: 20,
            price_minor: 10_000,
            early_bird: Some(EarlyBird {
                price_minor: 7_500,
                ends_at: at(60),
            }),
        }
    }

    #[test]
    fn terms_name_every_broken_rule() {
        assert!(terms().violations().is_empty());
        let broken = WorkshopTerms {
            capacity: 0,
            end_time: at(600),
            early_bird: Some(EarlyBird {
                price_minor: 12_000,
                ends_at: at(700),
            }),
            ..terms()
        };
        let fields: Vec<_> = broken.violations().iter().map(|v| v.0).collect();
        assert_eq!(
            fields,
            [
                "capacity",
                "end_time",
                "early_bird_price_minor",
                "early_bird_end_time"
            ]
        );
        assert!(
            WorkshopTerms {
                capacity: -5,
                ..terms()
            }
            .violations()
            .iter()
            .any(|v| v.0 == "capacity")
        );
    }

    #[test]
    fn the_early_bird_price_holds_until_its_cutoff() {
        assert_eq!(terms().price_at(at(0)), 7_500);
        assert_eq!(terms().price_at(at(60)), 10_000);
        let plain = WorkshopTerms {
            early_bird: None,
            ..terms()
        };
        assert_eq!(plain.price_at(at(0)), 10_000);
    }

    #[test]
    fn workshops_move_forward_and_publish_only_before_they_start() {
        use WorkshopStatus::*;
        assert!(decide_status_change(Draft, Published, at(10), at(0)).is_ok());
        assert_eq!(
            decide_status_change(Draft, Published, at(0), at(10)),
            Err(WorkshopRefusal::InThePast)
        );
        assert!(decide_status_change(Published, Cancelled, at(0), at(10)).is_ok());
        assert!(decide_status_change(Cancelled, Published, at(10), at(0)).is_err());
        assert!(decide_status_change(Archived, Cancelled, at(10), at(0)).is_err());
    }

    #[test]
    fn registering_needs_a_published_future_workshop_and_no_live_registration() {
        use RegistrationStatus::*;
        let published = WorkshopStatus::Published;
        assert_eq!(
            decide_register(published, at(10), 0, None, at(0)),
            Ok(RegisterDecision::Open(Registered))
        );
        assert_eq!(
            decide_register(published, at(10), 500, Some(Cancelled), at(0)),
            Ok(RegisterDecision::Reopen(PendingPayment))
        );
        assert_eq!(
            decide_register(published, at(10), 0, Some(NoShow), at(0)),
            Err(RegisterRefusal::AlreadyRegistered)
        );
        assert_eq!(
            decide_register(WorkshopStatus::Draft, at(10), 0, None, at(0)),
            Err(RegisterRefusal::NotPublished)
        );
        assert_eq!(
            decide_register(published, at(0), 0, None, at(0)),
            Err(RegisterRefusal::Started)
        );
    }

    #[test]
    fn a_seat_is_taken_and_returned_exactly_by_the_moves_that_cross_the_line() {
        use RegistrationStatus::*;
        let seat = |from, to| decide_registration_change(from, to).map(|c| c.seat);
        assert_eq!(seat(Cancelled, Registered), Ok(SeatEffect::Take));
        assert_eq!(seat(Refunded, PendingPayment), Ok(SeatEffect::Take));
        assert_eq!(seat(Registered, Cancelled), Ok(SeatEffect::Release));
        assert_eq!(seat(Completed, Refunded), Ok(SeatEffect::Release));
        assert_eq!(seat(PendingPayment, Registered), Ok(SeatEffect::Keep));
        assert_eq!(seat(Cancelled, Refunded), Ok(SeatEffect::Keep));
        // A second cancel is no move at all.
        assert!(decide_registration_change(Cancelled, Cancelled).is_err());
        for from in RegistrationStatus::ALL {
            for to in RegistrationStatus::ALL {
                if let Ok(change) = decide_registration_change(*from, *to) {
                    let expected = match (from.holds_seat(), to.holds_seat()) {
                        (false, true) => SeatEffect::Take,
                        (true, false) => SeatEffect::Release,
                        _ => SeatEffect::Keep,
                    };
                    assert_eq!(change.seat, expected, "{from} -> {to}");
                }
            }
        }
    }

    #[test]
    fn attendance_counts_follow_completion() {
        use RegistrationStatus::*;
        let delta = |from, to| decide_registration_change(from, to).unwrap().attended_delta;
        assert_eq!(delta(Registered, Completed), 1);
        assert_eq!(delta(NoShow, Completed), 1);
        assert_eq!(delta(Completed, Refunded), -1);
        assert_eq!(delta(Registered, NoShow), 0);
    }

    #[test]
    fn attendance_opens_an_hour_before_and_stands_once_marked() {
        use RegistrationStatus::*;
        let published = WorkshopStatus::Published;
        assert_eq!(
            decide_attendance(published, at(120), Registered, true, at(0)),
            Err(AttendanceRefusal::TooEarly)
        );
        assert_eq!(
            decide_attendance(published, at(60), Registered, true, at(0)),
            Ok(Completed)
        );
        assert_eq!(
            decide_attendance(published, at(0), NoShow, true, at(5)),
            Ok(Completed)
        );
        assert!(decide_attendance(published, at(0), Completed, false, at(5)).is_err());
        assert!(decide_attendance(published, at(0), Cancelled, true, at(5)).is_err());
        assert_eq!(
            decide_attendance(WorkshopStatus::Cancelled, at(0), Registered, true, at(5)),
            Err(AttendanceRefusal::NotRunning)
        );
    }

    #[test]
    fn feedback_is_for_attendees_and_nps_is_zero_to_ten() {
        assert!(may_give_feedback(RegistrationStatus::Completed).is_ok());
        assert!(may_give_feedback(RegistrationStatus::Registered).is_err());
        assert!(may_give_feedback(RegistrationStatus::NoShow).is_err());
        assert_eq!(parse_nps(Some(0)), Ok(Some(0)));
        assert_eq!(parse_nps(None), Ok(None));
        assert!(parse_nps(Some(11)).is_err());
        assert!(parse_nps(Some(-1)).is_err());
    }

    #[test]
    fn payments_confirm_holds_and_reclaim_seats_for_lapsed_ones() {
        use RegistrationStatus::*;
        assert_eq!(
            decide_payment(PendingPayment, false),
            PaymentDecision::Confirm
        );
        assert_eq!(decide_payment(Cancelled, false), PaymentDecision::Reclaim);
        assert_eq!(decide_payment(Registered, false), PaymentDecision::Ignore);
        assert_eq!(decide_payment(Cancelled, true), PaymentDecision::Ignore);
        assert!(may_place_late(WorkshopStatus::Published, at(10), at(0)));
        assert!(!may_place_late(WorkshopStatus::Cancelled, at(10), at(0)));
        assert!(!may_place_late(WorkshopStatus::Published, at(0), at(10)));
    }

    #[test]
    fn drafts_are_the_teams_and_registrants_keep_sight_of_theirs() {
        let scope = |status| WorkshopScope {
            instructor_id: Uuid::from_u128(1),
            organization_id: Some(Uuid::from_u128(10)),
            status,
            visibility: Visibility::Organization,
        };
        let outsider = WorkshopStanding::Outsider { member: false };
        let member = WorkshopStanding::Outsider { member: true };
        let published = scope(WorkshopStatus::Published);
        assert!(!WorkshopAccess::decide(&published, None, false).view);
        assert!(!WorkshopAccess::decide(&published, Some(&outsider), false).view);
        assert!(WorkshopAccess::decide(&published, Some(&member), false).view);
        assert!(WorkshopAccess::decide(&published, Some(&outsider), true).view);
        let draft = scope(WorkshopStatus::Draft);
        assert!(!WorkshopAccess::decide(&draft, Some(&member), false).view);
        let facilitator =
            WorkshopAccess::decide(&draft, Some(&WorkshopStanding::Facilitator), false);
        assert!(facilitator.view && facilitator.run && !facilitator.manage);
    }
}
