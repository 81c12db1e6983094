//! Learning's workshop events in instructor revenue: sales of paid registrations, the
//! refunds learning asks for, attendance on the timeline, and the dashboard's workshops,
//! through the gRPC API against the real PostgreSQL and NATS. The events are published
//! through learning's outbox, as learning's workshop handlers publish them.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{App, Caller, SETTLE, money};
use lyceum_platform::auth::PrincipalKind;
use lyceum_platform::convert::timestamp;
use lyceum_platform::events::Event;
use lyceum_platform::verify::Reconciliation;
use lyceum_proto::events::v1 as epb;
use lyceum_proto::instructor::v1 as ipb;
use lyceum_proto::instructor::v1::profile_service_client::ProfileServiceClient;
use lyceum_testkit::{authed, claims_of, eventually_within};
use prost::Message as _;
use uuid::Uuid;

/// A workshop as learning knows it.
struct Workshop {
    id: Uuid,
    instructor: Uuid,
    title: &'static str,
    start: DateTime<Utc>,
}

impl Workshop {
    fn new(teacher: &Caller, title: &'static str, start: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            instructor: teacher.id,
            title,
            start,
        }
    }

    fn status(&self, status: &str, version: i64) -> epb::WorkshopStatusChanged {
        epb::WorkshopStatusChanged {
            workshop_id: self.id.to_string(),
            instructor_id: self.instructor.to_string(),
            title: self.title.into(),
            status: status.into(),
            start_time: Some(timestamp(self.start)),
            end_time: Some(timestamp(self.start + Duration::hours(2))),
            price_minor: 5_000,
            currency: "EUR".into(),
            capacity: 20,
            version,
            ..Default::default()
        }
    }
}

/// A registration as learning knows it: its events carry its state at each change.
struct Registration {
    id: Uuid,
    user: Uuid,
    price_minor: i64,
    currency: &'static str,
    payment_id: String,
}

impl Registration {
    fn new(user: Uuid, price_minor: i64, currency: &'static str) -> Self {
        Self {
            id: Uuid::now_v7(),
            user,
            price_minor,
            currency,
            payment_id: String::new(),
        }
    }

    fn state(
        &self,
        workshop: &Workshop,
        status: &str,
        version: i64,
    ) -> epb::WorkshopRegistrationChanged {
        epb::WorkshopRegistrationChanged {
            registration_id: self.id.to_string(),
            workshop_id: workshop.id.to_string(),
            workshop_title: workshop.title.into(),
            user_id: self.user.to_string(),
            instructor_id: workshop.instructor.to_string(),
            status: status.into(),
            price_minor: self.price_minor,
            currency: self.currency.into(),
            payment_id: self.payment_id.clone(),
            seats_remaining: 10,
            version,
            registered_time: Some(timestamp(Utc::now())),
            workshop_start_time: Some(timestamp(workshop.start)),
            ..Default::default()
        }
    }

    /// A change that makes the payment due back: cancelled by staff.
    fn cancelled_with_refund(
        &self,
        workshop: &Workshop,
        version: i64,
    ) -> epb::WorkshopRegistrationChanged {
        epb::WorkshopRegistrationChanged {
            cancel_reason: "staff".into(),
            refund_due: true,
            ..self.state(workshop, "cancelled", version)
        }
    }
}

impl App {
    /// Publishes an event through learning's outbox (its relay sends it), as learning's
    /// workshop handlers do.
    async fn publish_as_learning<M: prost::Name>(&self, subject: &str, payload: &M) {
        let mut tx = self
            .learning
            .begin_system("test: learning's workshop events")
            .await
            .unwrap();
        tx.publish(Event::new(subject, None, payload))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    async fn workshop_status(&self, workshop: &Workshop, status: &str, version: i64) {
        self.publish_as_learning(
            &format!("learning.workshop.{status}"),
            &workshop.status(status, version),
        )
        .await;
    }

    async fn registration_event(&self, verb: &str, state: &epb::WorkshopRegistrationChanged) {
        self.publish_as_learning(&format!("learning.workshop_registration.{verb}"), state)
            .await;
    }

    /// The registrant pays for a registration, naming an instructor; the provider's handler
    /// confirms it.
    async fn pay_registration(
        &self,
        registrant: &Caller,
        named_instructor: Uuid,
        registration: &mut Registration,
        operator: &Caller,
    ) -> ipb::Payment {
        let payment = self
            .payments()
            .record_payment(authed(
                ipb::RecordPaymentRequest {
                    request_id: format!("checkout-{}", registration.id),
                    instructor_id: named_instructor.to_string(),
                    amount: Some(money(registration.price_minor, registration.currency)),
                    provider: ipb::PaymentProvider::Stripe as i32,
                    r#type: ipb::PaymentType::WorkshopRegistration as i32,
                    related_entity_id: registration.id.to_string(),
                    ..Default::default()
                },
                &registrant.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .payment
            .unwrap();
        let payment = self
            .payments()
            .succeed_payment(authed(
                ipb::SucceedPaymentRequest {
                    id: payment.id,
                    provider_transaction_id: "ch_w".into(),
                },
                &operator.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .payment
            .unwrap();
        registration.payment_id = payment.id.clone();
        payment
    }

    /// A registrant's workshop registration, paid and activated, its sale booked.
    async fn paid_registration(
        &self,
        workshop: &Workshop,
        registrant: &Caller,
        price_minor: i64,
        currency: &'static str,
        operator: &Caller,
    ) -> (Registration, ipb::Payment) {
        let mut registration = Registration::new(registrant.id, price_minor, currency);
        self.registration_event(
            "created",
            &registration.state(workshop, "pending_payment", 1),
        )
        .await;
        self.learning_events_applied().await;
        let payment = self
            .pay_registration(registrant, workshop.instructor, &mut registration, operator)
            .await;
        self.registration_event("activated", &registration.state(workshop, "registered", 2))
            .await;
        self.learning_events_applied().await;
        (registration, payment)
    }

    async fn transactions(&self, teacher: &Caller) -> Vec<ipb::RevenueTransaction> {
        self.revenue()
            .list_revenue_transactions(authed(
                ipb::ListRevenueTransactionsRequest {
                    instructor_id: teacher.id.to_string(),
                    page_size: 100,
                    ..Default::default()
                },
                &teacher.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .transactions
    }

    async fn payment(&self, id: &str, operator: &Caller) -> ipb::Payment {
        self.payments()
            .get_payment(authed(
                ipb::GetPaymentRequest { id: id.into() },
                &operator.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .payment
            .unwrap()
    }

    /// (request id, amount, fee) of each refund of a payment.
    async fn refunds(&self, payment_id: &str) -> Vec<(String, i64, i64)> {
        let mut conn = self.db.admin_connection().await;
        sqlx::query_as(
            "SELECT request_id, amount_minor, fee_minor FROM instructor.payment_refunds
             WHERE payment_id = $1::uuid ORDER BY created_at",
        )
        .bind(payment_id)
        .fetch_all(&mut conn)
        .await
        .unwrap()
    }

    /// The `payment.refunded` events instructor published for a payment.
    async fn refund_events(&self, payment_id: &str) -> Vec<epb::PaymentRefunded> {
        let mut conn = self.db.admin_connection().await;
        let rows: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT envelope FROM instructor.outbox WHERE subject = 'instructor.payment.refunded'
             ORDER BY id",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        rows.iter()
            .map(|bytes| {
                let envelope = epb::EventEnvelope::decode(bytes.as_slice()).unwrap();
                lyceum_platform::events::unpack::<epb::PaymentRefunded>(&envelope).unwrap()
            })
            .filter(|refund| refund.payment_id == payment_id)
            .collect()
    }

    /// Sends an envelope learning published once more, as JetStream redelivers it.
    async fn redeliver(&self, envelope: &epb::EventEnvelope) {
        let subject = envelope.event_type.trim_start_matches("lyceum.");
        let message = async_nats::jetstream::message::PublishMessage::build()
            .message_id(Uuid::now_v7().to_string())
            .payload(envelope.encode_to_vec().into());
        self.bus
            .jetstream()
            .send_publish(self.bus.subject(subject), message)
            .await
            .unwrap()
            .await
            .unwrap();
    }

    async fn recent_activity(&self, teacher: &Caller) -> Vec<ipb::Activity> {
        self.dashboard()
            .list_recent_activity(authed(
                ipb::ListRecentActivityRequest {
                    instructor_id: teacher.id.to_string(),
                    page_size: 100,
                    ..Default::default()
                },
                &teacher.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .activities
    }
}

#[tokio::test]
async fn a_paid_registration_books_a_workshop_sale_at_the_fee_of_the_workshops_instructor() {
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    // An instructor whom the platform charges nothing: naming them must not lower the fee.
    let decoy = app.user(&["user", "instructor"]);
    app.set_fee(Some(decoy.id), 0.0).await;
    let registrant = app.user(&["user"]);
    let operator = app.mint(PrincipalKind::Service, &[]);
    let workshop = Workshop::new(&teacher, "Negotiation", Utc::now() + Duration::days(7));
    app.workshop_status(&workshop, "published", 1).await;

    let mut registration = Registration::new(registrant.id, 5_000, "EUR");
    app.registration_event(
        "created",
        &registration.state(&workshop, "pending_payment", 1),
    )
    .await;
    app.learning_events_applied().await;
    let payment = app
        .pay_registration(&registrant, decoy.id, &mut registration, &operator)
        .await;
    app.registration_event("activated", &registration.state(&workshop, "registered", 2))
        .await;
    app.learning_events_applied().await;

    let sale = (
        teacher.id,
        "workshop_registration".to_owned(),
        5_000,
        2000,
        1_000,
        4_000,
    );
    assert_eq!(app.booked(&payment.id).await, vec![sale.clone()]);
    let listed = app.transactions(&teacher).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            listed[0].r#type,
            listed[0].workshop_id.as_str(),
            listed[0].registration_id.as_str(),
            listed[0].course_id.as_str(),
            listed[0].student_id.as_str()
        ),
        (
            ipb::TransactionType::WorkshopRegistration as i32,
            workshop.id.to_string().as_str(),
            registration.id.to_string().as_str(),
            "",
            registrant.id.to_string().as_str()
        )
    );
    assert!(app.transactions(&decoy).await.is_empty());

    // The activation again (a replay that skips the inbox): still one sale.
    let activation: Vec<_> = app
        .learning_events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "lyceum.learning.workshop_registration.activated")
        .collect();
    app.feed_learning_events(&activation).await;
    assert_eq!(app.booked(&payment.id).await, vec![sale.clone()]);

    // An operator's partial refund reverses the registration's sale in proportion.
    let refund = app
        .payments()
        .refund_payment(authed(
            ipb::RefundPaymentRequest {
                id: payment.id.clone(),
                request_id: "goodwill".into(),
                amount_minor: 1_000,
                reason: "late start".into(),
            },
            &operator.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .refund_transaction
        .unwrap();
    assert_eq!(
        (
            refund.instructor_id.as_str(),
            refund.workshop_id.as_str(),
            refund.registration_id.as_str()
        ),
        (
            teacher.id.to_string().as_str(),
            workshop.id.to_string().as_str(),
            registration.id.to_string().as_str()
        )
    );
    assert_eq!(
        app.booked(&payment.id).await,
        vec![
            sale,
            (teacher.id, "refund".to_owned(), -1_000, 2000, -200, -800)
        ]
    );
    let stats = app.stats(&teacher).await;
    assert_eq!(stats.total_revenue, vec![money(3_200, "EUR")]);
    assert!(
        lyceum_instructor::jobs::payment_totals::PaymentTotals
            .check(&app.instructor)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_refund_due_refunds_the_registrations_payment_once_however_often_it_is_asked() {
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let registrant = app.user(&["user"]);
    let operator = app.mint(PrincipalKind::Service, &[]);
    let workshop = Workshop::new(&teacher, "Facilitation", Utc::now() + Duration::days(3));
    app.workshop_status(&workshop, "published", 1).await;
    let (registration, payment) = app
        .paid_registration(&workshop, &registrant, 8_000, "EUR", &operator)
        .await;

    // Staff cancel the registration: learning asks for the payment back. The event comes
    // twice from JetStream, and once more as a new event asking the same.
    let cancelled = registration.cancelled_with_refund(&workshop, 3);
    app.registration_event("cancelled", &cancelled).await;
    app.learning_events_applied().await;
    let envelope = app
        .learning_events()
        .await
        .into_iter()
        .find(|e| e.event_type == "lyceum.learning.workshop_registration.cancelled")
        .unwrap();
    app.redeliver(&envelope).await;
    app.registration_event(
        "refunded",
        &epb::WorkshopRegistrationChanged {
            refund_due: true,
            ..registration.state(&workshop, "refunded", 4)
        },
    )
    .await;
    app.learning_events_applied().await;

    let refunded = app.payment(&payment.id, &operator).await;
    assert_eq!(
        (refunded.status, refunded.refunded),
        (
            ipb::PaymentStatus::Refunded as i32,
            Some(money(8_000, "EUR"))
        )
    );
    assert_eq!(
        app.refunds(&payment.id).await,
        vec![(
            format!("registration-refund:{}", registration.id),
            8_000,
            1_600
        )]
    );
    assert_eq!(
        app.booked(&payment.id).await,
        vec![
            (
                teacher.id,
                "workshop_registration".to_owned(),
                8_000,
                2000,
                1_600,
                6_400
            ),
            (
                teacher.id,
                "refund".to_owned(),
                -8_000,
                2000,
                -1_600,
                -6_400
            ),
        ]
    );
    let events = app.refund_events(&payment.id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (
            events[0].related_entity_type.as_str(),
            events[0].related_entity_id.as_str(),
            events[0].fully_refunded
        ),
        (
            "workshop_registration",
            registration.id.to_string().as_str(),
            true
        )
    );
    assert!(app.stats(&teacher).await.total_revenue == vec![money(0, "EUR")]);

    // Out of order: the refund learning asks for is applied before the activation that
    // books the sale; the sale is then booked with its refund, the same way.
    let other = app.user(&["user"]);
    let mut late = Registration::new(other.id, 3_000, "EUR");
    let created = late.state(&workshop, "pending_payment", 1);
    app.registration_event("created", &created).await;
    app.learning_events_applied().await;
    let late_payment = app
        .pay_registration(&other, teacher.id, &mut late, &operator)
        .await;
    let activated = late.state(&workshop, "registered", 2);
    let cancelled = late.cancelled_with_refund(&workshop, 3);
    let envelope = |subject: &str, payload: &epb::WorkshopRegistrationChanged| {
        let row =
            Event::new(subject, None, payload).into_outbox_row("learning", &Default::default());
        epb::EventEnvelope::decode(row.envelope.as_slice()).unwrap()
    };
    app.feed_learning_events(&[
        envelope("learning.workshop_registration.cancelled", &cancelled),
        envelope("learning.workshop_registration.activated", &activated),
    ])
    .await;
    assert_eq!(
        app.booked(&late_payment.id).await,
        vec![
            (
                teacher.id,
                "workshop_registration".to_owned(),
                3_000,
                2000,
                600,
                2_400
            ),
            (teacher.id, "refund".to_owned(), -3_000, 2000, -600, -2_400),
        ]
    );
    assert_eq!(app.refunds(&late_payment.id).await.len(), 1);
    assert!(
        lyceum_instructor::jobs::payment_totals::PaymentTotals
            .check(&app.instructor)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn workshops_count_on_the_dashboard_and_attendance_lands_on_the_timeline() {
    use lyceum_proto::identity::v1 as idpb;
    use lyceum_proto::identity::v1::auth_service_client::AuthServiceClient;
    use lyceum_proto::identity::v1::user_service_client::UserServiceClient;
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let now = Utc::now();
    let upcoming = Workshop::new(&teacher, "Storytelling", now + Duration::days(10));
    let given = Workshop::new(&teacher, "Change management", now - Duration::days(10));
    let archived = Workshop::new(&teacher, "Coaching basics", now - Duration::days(30));
    let called_off = Workshop::new(&teacher, "Offsite", now + Duration::days(20));
    app.workshop_status(&upcoming, "published", 1).await;
    app.workshop_status(&given, "published", 1).await;
    // Archived before its publication arrives: the newer state stays, and it still counts.
    app.workshop_status(&archived, "archived", 2).await;
    app.workshop_status(&archived, "published", 1).await;
    app.workshop_status(&called_off, "published", 1).await;
    app.workshop_status(&called_off, "cancelled", 2).await;

    // A real user, so the timeline names them: registered, then attended.
    UserServiceClient::new(app.channel())
        .create_user(idpb::CreateUserRequest {
            email: "ada@example.org".into(),
            password: "Correct-Horse-42".into(),
            full_name: "Ada Lovelace".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let token = AuthServiceClient::new(app.channel())
        .authenticate(idpb::AuthenticateRequest {
            email: "ada@example.org".into(),
            password: "Correct-Horse-42".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .tokens
        .unwrap()
        .access_token;
    let ada = Caller {
        id: claims_of(&token).sub,
        token,
    };
    let registration = Registration::new(ada.id, 0, "EUR");
    app.registration_event("created", &registration.state(&given, "registered", 1))
        .await;
    app.registration_event("attended", &registration.state(&given, "completed", 2))
        .await;
    app.learning_events_applied().await;

    let stats = app.stats(&teacher).await;
    assert_eq!(
        (
            stats.total_workshops,
            stats.upcoming_workshops,
            stats.total_students
        ),
        (4, 1, 1),
        "four published (one since archived, one cancelled), one yet to start"
    );
    eventually_within("Ada's name on the timeline", SETTLE, || async {
        app.recent_activity(&teacher)
            .await
            .first()
            .is_some_and(|a| a.student_name == "Ada Lovelace")
    })
    .await;
    let activity = app.recent_activity(&teacher).await;
    assert_eq!(activity.len(), 1, "{activity:?}");
    assert_eq!(
        (
            activity[0].r#type,
            activity[0].student_id.as_str(),
            activity[0].workshop_id.as_str(),
            activity[0].workshop_title.as_str(),
            activity[0].course_id.as_str()
        ),
        (
            ipb::ActivityType::WorkshopAttended as i32,
            ada.id.to_string().as_str(),
            given.id.to_string().as_str(),
            "Change management",
            ""
        )
    );

    // Every workshop event applied once more (a replay that skips the inbox) counts nothing
    // twice.
    let workshop_events: Vec<_> = app
        .learning_events()
        .await
        .into_iter()
        .filter(|e| e.event_type.starts_with("lyceum.learning.workshop."))
        .collect();
    app.feed_learning_events(&workshop_events).await;
    let again = app.stats(&teacher).await;
    assert_eq!((again.total_workshops, again.upcoming_workshops), (4, 1));

    // The profile's statistics agree, and so does their recount.
    ProfileServiceClient::new(app.channel())
        .upsert_instructor_profile(authed(
            ipb::UpsertInstructorProfileRequest {
                profile: Some(ipb::InstructorProfile {
                    bio: "Fifteen years of running workshops for teams that are changing fast."
                        .into(),
                    ..Default::default()
                }),
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    let figures = ProfileServiceClient::new(app.channel())
        .get_instructor_profile(ipb::GetInstructorProfileRequest {
            instructor_id: teacher.id.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap()
        .statistics
        .unwrap();
    assert_eq!((figures.total_workshops, figures.total_students), (4, 1));
    assert!(
        lyceum_instructor::jobs::instructor_stats::InstructorStats
            .check(&app.instructor)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_workshop_sale_in_euros_and_a_course_sale_in_dollars_are_never_added_up() {
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let operator = app.mint(PrincipalKind::Service, &[]);
    let (course, _) = app.course_in(&teacher, "In dollars", 4_999, "USD", 1).await;
    let student = app.user(&["user"]);
    let enrollment = app.enroll(&student, &course).await;
    app.pay(&student, &teacher, &enrollment, &operator).await;
    let workshop = Workshop::new(&teacher, "In euros", Utc::now() + Duration::days(5));
    app.workshop_status(&workshop, "published", 1).await;
    let registrant = app.user(&["user"]);
    app.paid_registration(&workshop, &registrant, 3_000, "EUR", &operator)
        .await;
    eventually_within("both sales", SETTLE, || async {
        app.stats(&teacher).await.total_revenue.len() == 2
    })
    .await;

    let stats = app.stats(&teacher).await;
    assert_eq!(
        stats.total_revenue,
        vec![money(2_400, "EUR"), money(3_999, "USD")]
    );
    assert_eq!(stats.pending_revenue, stats.total_revenue);
    assert_eq!(stats.total_students, 2, "the student and the registrant");
    let rows = app
        .dashboard()
        .get_revenue_breakdown(authed(
            ipb::GetRevenueBreakdownRequest {
                instructor_id: teacher.id.to_string(),
                ..Default::default()
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .rows;
    let by_type: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.r#type,
                r.transaction_count,
                r.gross.clone(),
                r.platform_fees.clone(),
                r.instructor_earnings.clone(),
            )
        })
        .collect();
    assert_eq!(
        by_type,
        vec![
            (
                ipb::TransactionType::CourseEnrollment as i32,
                1,
                vec![money(4_999, "USD")],
                vec![money(1_000, "USD")],
                vec![money(3_999, "USD")]
            ),
            (
                ipb::TransactionType::WorkshopRegistration as i32,
                1,
                vec![money(3_000, "EUR")],
                vec![money(600, "EUR")],
                vec![money(2_400, "EUR")]
            ),
        ]
    );
}

/// The whole path through the services' own APIs, no event written by hand: learning's
/// WorkshopService, instructor's PaymentService, the events between them, the dashboards.
#[tokio::test]
async fn registrations_paid_attended_and_cancelled_through_the_apis_reach_the_dashboards() {
    use lyceum_proto::learning::v1 as lpb;
    use lyceum_proto::learning::v1::workshop_service_client::WorkshopServiceClient;

    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let operator = app.mint(PrincipalKind::Service, &[]);
    let mut workshops = WorkshopServiceClient::new(app.channel());
    // Starting in half an hour: upcoming, and its attendance can be marked.
    let start = Utc::now() + Duration::minutes(30);
    let title = "Facilitating hard conversations";
    let draft = workshops
        .create_workshop(authed(
            lpb::CreateWorkshopRequest {
                workshop: Some(lpb::Workshop {
                    title: title.into(),
                    pillar: lpb::Pillar::Coaching as i32,
                    level: lpb::WorkshopLevel::Advanced as i32,
                    format: lpb::WorkshopFormat::Hybrid as i32,
                    start_time: Some(timestamp(start)),
                    end_time: Some(timestamp(start + Duration::hours(3))),
                    time_zone: "Europe/Paris".into(),
                    capacity: 10,
                    price: Some(lpb::Money {
                        amount_minor: 3_000,
                        currency: "EUR".into(),
                    }),
                    ..Default::default()
                }),
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .workshop
        .unwrap();
    let workshop = workshops
        .publish_workshop(authed(
            lpb::PublishWorkshopRequest { id: draft.id },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .workshop
        .unwrap();

    // Two registrants pay in euros.
    let (ann, ben) = (app.user(&["user"]), app.user(&["user"]));
    let mut registrations = Vec::new();
    for registrant in [&ann, &ben] {
        let registration = workshops
            .register(authed(
                lpb::RegisterRequest {
                    workshop_id: workshop.id.clone(),
                    request_id: format!("checkout-{}", registrant.id),
                },
                &registrant.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .registration
            .unwrap();
        let payment = app
            .payments()
            .record_payment(authed(
                ipb::RecordPaymentRequest {
                    request_id: format!("pay-{}", registration.id),
                    amount: Some(money(3_000, "EUR")),
                    provider: ipb::PaymentProvider::Stripe as i32,
                    r#type: ipb::PaymentType::WorkshopRegistration as i32,
                    related_entity_id: registration.id.clone(),
                    ..Default::default()
                },
                &registrant.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .payment
            .unwrap();
        app.payments()
            .succeed_payment(authed(
                ipb::SucceedPaymentRequest {
                    id: payment.id,
                    provider_transaction_id: format!("ch_{}", registration.id),
                },
                &operator.token,
            ))
            .await
            .unwrap();
        registrations.push((registrant, registration.id));
    }
    let status_of = |who: &Caller, id: &str| {
        let mut client = WorkshopServiceClient::new(app.channel());
        let (token, id) = (who.token.clone(), id.to_owned());
        async move {
            client
                .get_registration(authed(lpb::GetRegistrationRequest { id }, &token))
                .await
                .unwrap()
                .into_inner()
                .registration
                .unwrap()
                .status
        }
    };
    for (who, id) in &registrations {
        eventually_within("the payment registers", SETTLE, || async {
            status_of(who, id).await == lpb::RegistrationStatus::Registered as i32
        })
        .await;
    }
    // A course sale in dollars, to another student.
    let (course, _) = app.course_in(&teacher, "In dollars", 4_999, "USD", 1).await;
    let cal = app.user(&["user"]);
    let enrollment = app.enroll(&cal, &course).await;
    app.pay(&cal, &teacher, &enrollment, &operator).await;

    // The teacher cancels Ben's seat: learning asks for the refund, instructor makes it,
    // and learning marks the registration refunded.
    workshops
        .cancel_registration(authed(
            lpb::CancelRegistrationRequest {
                id: registrations[1].1.clone(),
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    eventually_within("the staff cancellation is refunded", SETTLE, || async {
        status_of(&ben, &registrations[1].1).await == lpb::RegistrationStatus::Refunded as i32
    })
    .await;
    // Ann attends and says how it went.
    workshops
        .mark_attendance(authed(
            lpb::MarkAttendanceRequest {
                registration_id: registrations[0].1.clone(),
                attended: true,
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    workshops
        .submit_feedback(authed(
            lpb::SubmitFeedbackRequest {
                workshop_id: workshop.id.clone(),
                overall_satisfaction: 5,
                nps_score: Some(9),
                would_recommend: true,
                ..Default::default()
            },
            &ann.token,
        ))
        .await
        .unwrap();

    eventually_within("the dashboard", SETTLE, || async {
        let stats = app.stats(&teacher).await;
        stats.total_revenue == vec![money(2_400, "EUR"), money(3_999, "USD")]
            && stats.total_students == 2
    })
    .await;
    let stats = app.stats(&teacher).await;
    assert_eq!((stats.total_workshops, stats.upcoming_workshops), (1, 1));
    assert_eq!(stats.total_courses, 1);
    let rows = app
        .dashboard()
        .get_revenue_breakdown(authed(
            ipb::GetRevenueBreakdownRequest {
                instructor_id: teacher.id.to_string(),
                ..Default::default()
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .rows;
    let earnings: Vec<_> = rows
        .iter()
        .map(|r| (r.r#type, r.instructor_earnings.clone()))
        .collect();
    // Two registration sales, and the refund of one as its own negative row.
    assert_eq!(
        earnings,
        vec![
            (
                ipb::TransactionType::CourseEnrollment as i32,
                vec![money(3_999, "USD")]
            ),
            (
                ipb::TransactionType::Refund as i32,
                vec![money(-2_400, "EUR")]
            ),
            (
                ipb::TransactionType::WorkshopRegistration as i32,
                vec![money(4_800, "EUR")]
            ),
        ]
    );
    eventually_within("the attendance on the timeline", SETTLE, || async {
        app.dashboard()
            .list_recent_activity(authed(
                ipb::ListRecentActivityRequest {
                    instructor_id: teacher.id.to_string(),
                    ..Default::default()
                },
                &teacher.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .activities
            .iter()
            .any(|a| {
                a.r#type == ipb::ActivityType::WorkshopAttended as i32
                    && a.workshop_id == workshop.id
                    && a.workshop_title == title
                    && a.student_id == ann.id.to_string()
            })
    })
    .await;
    // Both services' reconciliations agree with what happened.
    let drift = lyceum_learning::jobs::workshop_statistics::WorkshopStatistics
        .check(&app.learning)
        .await
        .unwrap();
    assert!(drift.is_empty(), "{drift:?}");
    let checks: [Box<dyn Reconciliation>; 2] = [
        Box::new(lyceum_instructor::jobs::payment_totals::PaymentTotals),
        Box::new(lyceum_instructor::jobs::instructor_stats::InstructorStats),
    ];
    for check in checks {
        let drift = check.check(&app.instructor).await.unwrap();
        assert!(drift.is_empty(), "{}: {drift:?}", check.name());
    }
}
