//! Workshops through the gRPC API: terms and bad input, seats taken and returned exactly
//! once (also under 500 concurrent callers), payment holds and late payments, attendance,
//! feedback, cancellation and the catalogue.

mod common;

use chrono::{Duration, Utc};
use common::*;
use lyceum_learning::jobs::workshop_holds::expire_holds;
use lyceum_learning::jobs::workshop_statistics::WorkshopStatistics;
use lyceum_platform::verify::Reconciliation;
use lyceum_proto::events::v1 as events;
use lyceum_proto::learning::v1 as pb;
use lyceum_testkit::{assert_code, authed, eventually, violated_fields};
use tonic::Code;
use uuid::Uuid;

async fn assert_no_drift(app: &TestApp) {
    let drift = WorkshopStatistics.check(&app.learning).await.unwrap();
    assert!(drift.is_empty(), "{drift:?}");
}

fn paid(
    payment_id: &str,
    payer: &User,
    amount: i64,
    registration: &str,
) -> events::PaymentSucceeded {
    events::PaymentSucceeded {
        payment_id: payment_id.into(),
        payer_id: payer.id.to_string(),
        amount_minor: amount,
        currency: "USD".into(),
        related_entity_type: "workshop_registration".into(),
        related_entity_id: registration.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn bad_input_gets_the_right_code_with_field_details() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let create = |spec: pb::Workshop| {
        let mut client = app.workshops();
        let token = teacher.token.clone();
        async move {
            client
                .create_workshop(authed(
                    pb::CreateWorkshopRequest {
                        workshop: Some(spec),
                    },
                    &token,
                ))
                .await
        }
    };
    let week = Duration::days(7);
    for capacity in [0, -3, 100_001] {
        let status = assert_code(
            create(workshop_spec(&teacher, capacity, 0, week)).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["workshop.capacity"]);
    }
    let start = Utc::now() + week;
    let mut dear_bird = workshop_spec(&teacher, 10, 5_000, week);
    dear_bird.early_bird_price_minor = 6_000;
    dear_bird.early_bird_end_time = Some(lyceum_platform::convert::timestamp(
        start + Duration::hours(1),
    ));
    dear_bird.end_time = Some(lyceum_platform::convert::timestamp(start));
    dear_bird.pillar = 0;
    let status = assert_code(create(dear_bird).await, Code::InvalidArgument);
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "workshop.early_bird_end_time",
            "workshop.early_bird_price_minor",
            "workshop.end_time",
            "workshop.pillar"
        ]
    );
    let mut no_cutoff = workshop_spec(&teacher, 10, 5_000, week);
    no_cutoff.early_bird_price_minor = 4_000;
    let status = assert_code(create(no_cutoff).await, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["workshop.early_bird_end_time"]);
    let mut nowhere = workshop_spec(&teacher, 10, 0, week);
    nowhere.time_zone = "Mars/Olympus_Mons".into();
    let status = assert_code(create(nowhere).await, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["workshop.time_zone"]);
    // Creating needs the instructor role.
    let student = app.student(None);
    assert_code(
        app.workshops()
            .create_workshop(authed(
                pb::CreateWorkshopRequest {
                    workshop: Some(workshop_spec(&student, 10, 0, week)),
                },
                &student.token,
            ))
            .await,
        Code::PermissionDenied,
    );

    // Registering for a draft, and for a workshop that has started.
    let draft = app.create_workshop(&teacher, 10, 0, week).await;
    assert_code(app.register(&student, &draft.id, "").await, Code::NotFound);
    let published = app.published_workshop(&teacher, 10, 0).await;
    let mut conn = app.db.admin_connection().await;
    sqlx::query(
        "UPDATE learning.workshops SET start_time = now() - interval '1 hour',
             end_time = now() + interval '1 hour' WHERE id = $1",
    )
    .bind(Uuid::parse_str(&published.id).unwrap())
    .execute(&mut conn)
    .await
    .unwrap();
    let status = assert_code(
        app.register(&student, &published.id, "").await,
        Code::FailedPrecondition,
    );
    assert!(status.message().contains("started"), "{status:?}");
    // A workshop in the past cannot be published.
    let past = app
        .create_workshop(&teacher, 10, 0, -Duration::hours(1))
        .await;
    assert_code(
        app.workshops()
            .publish_workshop(authed(
                pb::PublishWorkshopRequest { id: past.id },
                &teacher.token,
            ))
            .await,
        Code::FailedPrecondition,
    );

    // Feedback: out of range, and by someone who did not attend.
    let open = app.published_workshop(&teacher, 10, 0).await;
    app.register(&student, &open.id, "").await.unwrap();
    let feedback = |nps: Option<i32>, satisfaction: i32| pb::SubmitFeedbackRequest {
        workshop_id: open.id.clone(),
        overall_satisfaction: satisfaction,
        nps_score: nps,
        ..Default::default()
    };
    let status = assert_code(
        app.workshops()
            .submit_feedback(authed(feedback(Some(11), 6), &student.token))
            .await,
        Code::InvalidArgument,
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["nps_score", "overall_satisfaction"]);
    assert_code(
        app.workshops()
            .submit_feedback(authed(feedback(Some(10), 5), &student.token))
            .await,
        Code::FailedPrecondition,
    );
    // A request id beyond 200 characters.
    let status = assert_code(
        app.register(&student, &open.id, &"r".repeat(201)).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["request_id"]);
}

#[tokio::test]
async fn a_seat_is_taken_once_and_returned_exactly_once() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let workshop = app.published_workshop(&teacher, 2, 0).await;
    assert_eq!(workshop.seats_remaining, 2);
    let (ann, ben, cat) = (app.student(None), app.student(None), app.student(None));
    let a = app.register(&ann, &workshop.id, "").await.unwrap();
    assert_eq!(a.status, pb::RegistrationStatus::Registered as i32);
    app.register(&ben, &workshop.id, "").await.unwrap();
    let full = assert_code(
        app.register(&cat, &workshop.id, "").await,
        Code::FailedPrecondition,
    );
    assert!(full.message().contains("full"), "{full:?}");
    // One registration per user and workshop.
    assert_code(
        app.register(&ann, &workshop.id, "").await,
        Code::AlreadyExists,
    );

    // A double cancel returns one seat.
    app.cancel_registration(&ann, &a.id).await.unwrap();
    let again = app.cancel_registration(&ann, &a.id).await.unwrap();
    assert_eq!(again.status, pb::RegistrationStatus::Cancelled as i32);
    assert_eq!(again.cancel_reason, "registrant");
    assert_eq!(
        app.workshop(&teacher, &workshop.id).await.seats_remaining,
        1
    );

    // Cat takes the seat; Ann re-registering finds it full, then gets Ben's back.
    app.register(&cat, &workshop.id, "").await.unwrap();
    assert_code(
        app.register(&ann, &workshop.id, "").await,
        Code::FailedPrecondition,
    );
    let b = app
        .workshops()
        .list_registrations(authed(pb::ListRegistrationsRequest::default(), &ben.token))
        .await
        .unwrap()
        .into_inner()
        .registrations
        .remove(0);
    // Staff may cancel someone's registration; strangers may not see it.
    assert_code(app.cancel_registration(&cat, &b.id).await, Code::NotFound);
    let by_staff = app.cancel_registration(&teacher, &b.id).await.unwrap();
    assert_eq!(by_staff.cancel_reason, "staff");
    let back = app.register(&ann, &workshop.id, "").await.unwrap();
    assert_eq!(back.id, a.id, "re-registering reopens the registration");
    assert_eq!(back.status, pb::RegistrationStatus::Registered as i32);
    let workshop = app.workshop(&teacher, &workshop.id).await;
    assert_eq!(workshop.seats_remaining, 0);
    assert_eq!(workshop.statistics.unwrap().registered_count, 2);

    let subjects: Vec<String> = app
        .registration_events()
        .await
        .into_iter()
        .map(|(subject, _)| subject)
        .collect();
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.ends_with(".cancelled"))
            .count(),
        2,
        "{subjects:?}"
    );
    assert_no_drift(&app).await;
}

#[tokio::test]
async fn a_retried_registration_takes_no_second_seat() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let workshop = app.published_workshop(&teacher, 5, 0).await;
    let student = app.student(None);
    let first = app.register(&student, &workshop.id, "req-1").await.unwrap();
    let retry = app.register(&student, &workshop.id, "req-1").await.unwrap();
    assert_eq!(first.id, retry.id);
    assert_eq!(
        app.workshop(&teacher, &workshop.id).await.seats_remaining,
        4
    );
    // Another request of the same user is a second registration: refused.
    assert_code(
        app.register(&student, &workshop.id, "req-2").await,
        Code::AlreadyExists,
    );
    // A retry arriving after the registration was cancelled does not bring it back.
    app.cancel_registration(&student, &first.id).await.unwrap();
    let late_retry = app.register(&student, &workshop.id, "req-1").await.unwrap();
    assert_eq!(late_retry.status, pb::RegistrationStatus::Cancelled as i32);
    assert_eq!(
        app.workshop(&teacher, &workshop.id).await.seats_remaining,
        5
    );
    // The same key from another user is refused for that field.
    let other = app.student(None);
    let status = assert_code(
        app.register(&other, &workshop.id, "req-1").await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["request_id"]);
    assert_no_drift(&app).await;
}

#[tokio::test]
async fn five_hundred_concurrent_registrations_for_twenty_seats_never_overbook() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let workshop = app.published_workshop(&teacher, 20, 0).await;
    let students: Vec<User> = (0..500).map(|_| app.student(None)).collect();
    let attempts = students.iter().enumerate().map(|(i, student)| {
        let app = &app;
        let id = workshop.id.clone();
        async move {
            let mut held = false;
            let first = app.register(student, &id, &format!("first-{i}")).await;
            if let Ok(registration) = &first {
                held = true;
                if i % 3 == 0 {
                    // Cancel twice (one seat back), then try again.
                    app.cancel_registration(student, &registration.id)
                        .await
                        .unwrap();
                    app.cancel_registration(student, &registration.id)
                        .await
                        .unwrap();
                    held = app
                        .register(student, &id, &format!("again-{i}"))
                        .await
                        .is_ok();
                }
            } else if let Err(status) = &first {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                if i % 5 == 0 {
                    held = app
                        .register(student, &id, &format!("retry-{i}"))
                        .await
                        .is_ok();
                }
            }
            held
        }
    });
    let held = futures::future::join_all(attempts)
        .await
        .into_iter()
        .filter(|held| *held)
        .count();
    let workshop = app.workshop(&teacher, &workshop.id).await;
    let taken = workshop.statistics.unwrap().registered_count;
    assert!(taken <= 20);
    assert_eq!(taken as usize, held);
    assert_eq!(workshop.seats_remaining, 20 - taken);
    let mut conn = app.db.admin_connection().await;
    let active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM learning.workshop_registrations
         WHERE workshop_id = $1 AND status IN ('registered', 'pending_payment')",
    )
    .bind(Uuid::parse_str(&workshop.id).unwrap())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(active, taken);
    assert_no_drift(&app).await;
}

#[tokio::test]
async fn a_paid_registration_waits_for_its_payment_and_a_refund_returns_the_seat() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let workshop = app.published_workshop(&teacher, 3, 5_000).await;
    let student = app.student(None);
    let registration = app.register(&student, &workshop.id, "").await.unwrap();
    assert_eq!(
        registration.status,
        pb::RegistrationStatus::PendingPayment as i32
    );
    assert!(registration.hold_until.is_some());
    assert_eq!(
        app.workshop(&teacher, &workshop.id).await.seats_remaining,
        2
    );

    let payment_id = Uuid::now_v7().to_string();
    let payment = paid(&payment_id, &student, 5_000, &registration.id);
    app.publish_payment_event("succeeded", &payment).await;
    app.publish_payment_event("succeeded", &payment).await;
    eventually("registration", || async {
        app.registration(&student, &registration.id).await.status
            == pb::RegistrationStatus::Registered as i32
    })
    .await;
    let registered = app.registration(&student, &registration.id).await;
    assert_eq!(registered.payment_id, payment_id);
    assert!(registered.hold_until.is_none());

    let refund = events::PaymentRefunded {
        payment_id: payment_id.clone(),
        related_entity_type: "workshop_registration".into(),
        related_entity_id: registration.id.clone(),
        refunded_minor: 5_000,
        total_refunded_minor: 5_000,
        currency: "USD".into(),
        fully_refunded: true,
    };
    app.publish_payment_event("refunded", &refund).await;
    eventually("refund", || async {
        app.registration(&student, &registration.id).await.status
            == pb::RegistrationStatus::Refunded as i32
    })
    .await;
    assert_eq!(
        app.workshop(&teacher, &workshop.id).await.seats_remaining,
        3
    );
    let verbs: Vec<String> = app
        .registration_events()
        .await
        .into_iter()
        .map(|(subject, _)| subject)
        .collect();
    assert_eq!(
        verbs,
        [
            "learning.workshop_registration.created",
            "learning.workshop_registration.activated",
            "learning.workshop_registration.refunded"
        ]
    );
    assert_no_drift(&app).await;
}

#[tokio::test]
async fn a_lapsed_hold_frees_the_seat_and_a_late_payment_never_overbooks() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let workshop = app.published_workshop(&teacher, 1, 5_000).await;
    let (ann, ben) = (app.student(None), app.student(None));
    let a = app.register(&ann, &workshop.id, "").await.unwrap();
    // Nothing lapses before its time.
    assert_eq!(expire_holds(&app.learning, Utc::now()).await.unwrap(), 0);
    let later = Utc::now() + Duration::minutes(31);
    assert_eq!(expire_holds(&app.learning, later).await.unwrap(), 1);
    let lapsed = app.registration(&ann, &a.id).await;
    assert_eq!(lapsed.status, pb::RegistrationStatus::Cancelled as i32);
    assert_eq!(lapsed.cancel_reason, "hold_expired");
    assert_eq!(
        app.workshop(&teacher, &workshop.id).await.seats_remaining,
        1
    );

    // Ben takes the seat; Ann's payment arrives late and finds none.
    let b = app.register(&ben, &workshop.id, "").await.unwrap();
    let ann_paid = Uuid::now_v7().to_string();
    app.publish_payment_event("succeeded", &paid(&ann_paid, &ann, 5_000, &a.id))
        .await;
    eventually("unplaced", || async {
        app.registration(&ann, &a.id).await.cancel_reason == "unplaced"
    })
    .await;
    let unplaced = app.registration(&ann, &a.id).await;
    assert_eq!(unplaced.status, pb::RegistrationStatus::Cancelled as i32);
    assert_eq!(unplaced.payment_id, ann_paid);
    let workshop_now = app.workshop(&teacher, &workshop.id).await;
    assert_eq!(workshop_now.seats_remaining, 0);
    assert_eq!(workshop_now.statistics.unwrap().registered_count, 1);
    let refund_asked = app
        .registration_events()
        .await
        .into_iter()
        .filter(|(_, e)| e.registration_id == a.id && e.refund_due)
        .count();
    assert_eq!(refund_asked, 1, "the unplaced payment is to be refunded");

    // Ben's hold lapses too; his late payment takes the seat that is free again.
    expire_holds(&app.learning, later).await.unwrap();
    assert_eq!(
        app.workshop(&teacher, &workshop.id).await.seats_remaining,
        1
    );
    let ben_paid = Uuid::now_v7().to_string();
    app.publish_payment_event("succeeded", &paid(&ben_paid, &ben, 5_000, &b.id))
        .await;
    eventually("placed late", || async {
        app.registration(&ben, &b.id).await.status == pb::RegistrationStatus::Registered as i32
    })
    .await;
    assert_eq!(
        app.workshop(&teacher, &workshop.id).await.seats_remaining,
        0
    );
    assert_no_drift(&app).await;
}

#[tokio::test]
async fn facilitators_mark_attendance_and_attendees_give_feedback_once() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let helper = app.student(None);
    // Starting in half an hour: check-in is open.
    let workshop = app
        .published_workshop_starting(&teacher, 10, 0, Duration::minutes(30))
        .await;
    let (ann, ben) = (app.student(None), app.student(None));
    let a = app.register(&ann, &workshop.id, "").await.unwrap();
    let b = app.register(&ben, &workshop.id, "").await.unwrap();
    let mark = |who: &User, id: &str, attended: bool| {
        let mut client = app.workshops();
        let token = who.token.clone();
        let id = id.to_owned();
        async move {
            client
                .mark_attendance(authed(
                    pb::MarkAttendanceRequest {
                        registration_id: id,
                        attended,
                    },
                    &token,
                ))
                .await
                .map(|r| r.into_inner().registration.unwrap())
        }
    };
    // Neither a registrant nor a stranger marks attendance.
    assert_code(mark(&ann, &a.id, true).await, Code::PermissionDenied);
    assert_code(mark(&helper, &a.id, true).await, Code::NotFound);
    app.workshops()
        .add_facilitator(authed(
            pb::AddFacilitatorRequest {
                workshop_id: workshop.id.clone(),
                facilitator_id: helper.id.to_string(),
                role: pb::FacilitatorRole::Assistant as i32,
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    let attended = mark(&helper, &a.id, true).await.unwrap();
    assert_eq!(attended.status, pb::RegistrationStatus::Completed as i32);
    assert!(attended.attend_time.is_some());
    let absent = mark(&teacher, &b.id, false).await.unwrap();
    assert_eq!(absent.status, pb::RegistrationStatus::NoShow as i32);
    // Marked attended, it stands.
    assert_code(mark(&teacher, &a.id, false).await, Code::FailedPrecondition);

    let feedback = |satisfaction: i32, nps: Option<i32>| pb::SubmitFeedbackRequest {
        workshop_id: workshop.id.clone(),
        overall_satisfaction: satisfaction,
        content_rating: 4,
        nps_score: nps,
        would_recommend: true,
        what_went_well: "Concrete exercises".into(),
        ..Default::default()
    };
    // A no-show gives no feedback; an attendee once.
    assert_code(
        app.workshops()
            .submit_feedback(authed(feedback(2, Some(3)), &ben.token))
            .await,
        Code::FailedPrecondition,
    );
    let given = app
        .workshops()
        .submit_feedback(authed(feedback(5, Some(10)), &ann.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(given.feedback.unwrap().nps_score, Some(10));
    let stats = given.statistics.unwrap();
    assert_eq!((stats.feedback_count, stats.average_satisfaction), (1, 5.0));
    let status = assert_code(
        app.workshops()
            .submit_feedback(authed(feedback(4, None), &ann.token))
            .await,
        Code::AlreadyExists,
    );
    assert_eq!(violated_fields(&status), ["workshop_id"]);

    // The no-show is corrected to attended and gives feedback too.
    mark(&helper, &b.id, true).await.unwrap();
    let second = app
        .workshops()
        .submit_feedback(authed(feedback(2, None), &ben.token))
        .await
        .unwrap()
        .into_inner();
    let stats = second.statistics.unwrap();
    assert_eq!((stats.feedback_count, stats.average_satisfaction), (2, 3.5));
    let stats = app
        .workshop(&teacher, &workshop.id)
        .await
        .statistics
        .unwrap();
    assert_eq!(
        (
            stats.attended_count,
            stats.feedback_count,
            stats.average_satisfaction
        ),
        (2, 2, 3.5)
    );
    // The team reads the feedback; attendees do not read each other's.
    let listed = app
        .workshops()
        .list_feedback(authed(
            pb::ListFeedbackRequest {
                workshop_id: workshop.id.clone(),
                ..Default::default()
            },
            &helper.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .feedback;
    assert_eq!(listed.len(), 2);
    assert_code(
        app.workshops()
            .list_feedback(authed(
                pb::ListFeedbackRequest {
                    workshop_id: workshop.id.clone(),
                    ..Default::default()
                },
                &ann.token,
            ))
            .await,
        Code::PermissionDenied,
    );
    let mut conn = app.db.admin_connection().await;
    let subjects: Vec<String> = sqlx::query_scalar(
        "SELECT subject FROM learning.outbox WHERE subject LIKE 'learning.workshop_feedback.%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(subjects.len(), 2);
    assert_no_drift(&app).await;
}

#[tokio::test]
async fn cancelling_a_workshop_cancels_its_registrations_and_asks_for_refunds() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let workshop = app.published_workshop(&teacher, 5, 3_000).await;
    let (ann, ben) = (app.student(None), app.student(None));
    let a = app.register(&ann, &workshop.id, "").await.unwrap();
    let b = app.register(&ben, &workshop.id, "").await.unwrap();
    let payment_id = Uuid::now_v7().to_string();
    app.publish_payment_event("succeeded", &paid(&payment_id, &ann, 3_000, &a.id))
        .await;
    eventually("payment", || async {
        app.registration(&ann, &a.id).await.status == pb::RegistrationStatus::Registered as i32
    })
    .await;

    // Only the owner cancels.
    assert_code(
        app.workshops()
            .cancel_workshop(authed(
                pb::CancelWorkshopRequest {
                    id: workshop.id.clone(),
                    reason: "x".into(),
                },
                &ann.token,
            ))
            .await,
        Code::PermissionDenied,
    );
    let cancelled = app
        .workshops()
        .cancel_workshop(authed(
            pb::CancelWorkshopRequest {
                id: workshop.id.clone(),
                reason: "The facilitator is ill".into(),
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.cancelled_registrations, 2);
    let cancelled = cancelled.workshop.unwrap();
    assert_eq!(cancelled.status, pb::WorkshopStatus::Cancelled as i32);
    assert_eq!(cancelled.seats_remaining, 5);
    assert_eq!(cancelled.cancel_reason, "The facilitator is ill");
    for (user, id) in [(&ann, &a.id), (&ben, &b.id)] {
        let registration = app.registration(user, id).await;
        assert_eq!(registration.cancel_reason, "workshop_cancelled");
    }
    let events = app.registration_events().await;
    let refund_due: Vec<_> = events
        .iter()
        .filter(|(_, e)| e.refund_due)
        .map(|(_, e)| e.registration_id.clone())
        .collect();
    assert_eq!(
        refund_due,
        vec![a.id.clone()],
        "only the paid one is refunded"
    );
    // Registrants still see the cancelled workshop; nobody registers for it.
    assert_eq!(
        app.workshop(&ben, &workshop.id).await.status,
        pb::WorkshopStatus::Cancelled as i32
    );
    assert_code(
        app.register(&app.student(None), &workshop.id, "").await,
        Code::FailedPrecondition,
    );
    let mut conn = app.db.admin_connection().await;
    let status_events: Vec<String> = sqlx::query_scalar(
        "SELECT subject FROM learning.outbox WHERE subject LIKE 'learning.workshop.%' ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        status_events,
        ["learning.workshop.published", "learning.workshop.cancelled"]
    );
    assert_no_drift(&app).await;
}

#[tokio::test]
async fn the_catalogue_filters_searches_and_hides_what_the_caller_may_not_see() {
    let app = TestApp::spawn().await;
    let org = Uuid::now_v7();
    let teacher = app.instructor(Some(org));
    let outsider = app.student(None);
    let member = app.student(Some(org));
    let create = |spec: pb::Workshop| {
        let mut client = app.workshops();
        let token = teacher.token.clone();
        async move {
            let draft = client
                .create_workshop(authed(
                    pb::CreateWorkshopRequest {
                        workshop: Some(spec),
                    },
                    &token,
                ))
                .await
                .unwrap()
                .into_inner()
                .workshop
                .unwrap();
            client
                .publish_workshop(authed(pb::PublishWorkshopRequest { id: draft.id }, &token))
                .await
                .unwrap()
                .into_inner()
                .workshop
                .unwrap()
        }
    };
    let mut coaching = workshop_spec(&teacher, 10, 0, Duration::days(3));
    coaching.title = "Coaching conversations".into();
    coaching.pillar = pb::Pillar::Coaching as i32;
    coaching.level = pb::WorkshopLevel::Beginner as i32;
    coaching.format = pb::WorkshopFormat::InPerson as i32;
    coaching.location = "Berlin".into();
    coaching.tags = vec!["coaching".into()];
    let coaching = create(coaching).await;
    let change = create(workshop_spec(&teacher, 10, 0, Duration::days(10))).await;
    let mut internal = workshop_spec(&teacher, 10, 0, Duration::days(5));
    internal.title = "Internal retrospective practice".into();
    internal.visibility = pb::CourseVisibility::Organization as i32;
    let internal = create(internal).await;
    let draft = app
        .create_workshop(&teacher, 10, 0, Duration::days(4))
        .await;

    let list = |viewer: &User, request: pb::ListWorkshopsRequest| {
        let mut client = app.workshops();
        let token = viewer.token.clone();
        async move {
            client
                .list_workshops(authed(request, &token))
                .await
                .unwrap()
                .into_inner()
                .workshops
                .into_iter()
                .map(|w| w.id)
                .collect::<Vec<_>>()
        }
    };
    // In start order; the organization's own for its members only; drafts for nobody.
    assert_eq!(
        list(&outsider, Default::default()).await,
        [coaching.id.clone(), change.id.clone()]
    );
    assert_eq!(
        list(&member, Default::default()).await,
        [coaching.id.clone(), internal.id.clone(), change.id.clone()]
    );
    let by = |f: fn(&mut pb::ListWorkshopsRequest)| {
        let mut request = pb::ListWorkshopsRequest::default();
        f(&mut request);
        request
    };
    assert_eq!(
        list(&outsider, by(|r| r.pillar = pb::Pillar::Coaching as i32)).await,
        vec![coaching.id.clone()]
    );
    assert_eq!(
        list(
            &outsider,
            by(|r| r.format = pb::WorkshopFormat::Online as i32)
        )
        .await,
        vec![change.id.clone()]
    );
    assert_eq!(
        list(&outsider, by(|r| r.tags = vec!["coaching".into()])).await,
        vec![coaching.id.clone()]
    );
    assert_eq!(
        list(&outsider, by(|r| r.query = "conversations".into())).await,
        vec![coaching.id.clone()]
    );
    let mut window = pb::ListWorkshopsRequest {
        start_after: Some(lyceum_platform::convert::timestamp(
            Utc::now() + Duration::days(4),
        )),
        ..Default::default()
    };
    assert_eq!(
        list(&member, window.clone()).await,
        [internal.id.clone(), change.id.clone()]
    );
    window.start_before = Some(lyceum_platform::convert::timestamp(
        Utc::now() + Duration::days(6),
    ));
    assert_eq!(list(&member, window).await, vec![internal.id.clone()]);
    // Pages.
    let first = app
        .workshops()
        .list_workshops(authed(
            pb::ListWorkshopsRequest {
                page_size: 1,
                ..Default::default()
            },
            &member.token,
        ))
        .await
        .unwrap()
        .into_inner();
    let second = app
        .workshops()
        .list_workshops(authed(
            pb::ListWorkshopsRequest {
                page_size: 1,
                page_token: first.next_page_token,
                ..Default::default()
            },
            &member.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.workshops[0].id, internal.id);
    // The owner lists drafts; an outsider gets NOT_FOUND for one.
    assert_eq!(
        list(
            &teacher,
            by(|r| r.status = pb::WorkshopStatus::Draft as i32)
        )
        .await,
        vec![draft.id.clone()]
    );
    assert_code(
        app.workshops()
            .get_workshop(authed(
                pb::GetWorkshopRequest { id: draft.id },
                &outsider.token,
            ))
            .await,
        Code::NotFound,
    );
    assert_code(
        app.workshops()
            .get_workshop(authed(
                pb::GetWorkshopRequest { id: internal.id },
                &outsider.token,
            ))
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn capacity_changes_keep_the_seats_taken_and_only_admins_feature() {
    let app = TestApp::spawn().await;
    let teacher = app.instructor(None);
    let workshop = app.published_workshop(&teacher, 3, 0).await;
    for _ in 0..2 {
        app.register(&app.student(None), &workshop.id, "")
            .await
            .unwrap();
    }
    let update = |capacity: i32, featured: bool, paths: &[&str]| pb::UpdateWorkshopRequest {
        workshop: Some(pb::Workshop {
            id: workshop.id.clone(),
            capacity,
            featured,
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    };
    let status = assert_code(
        app.workshops()
            .update_workshop(authed(update(1, false, &["capacity"]), &teacher.token))
            .await,
        Code::FailedPrecondition,
    );
    assert!(status.message().contains("2 seats"), "{status:?}");
    let status = assert_code(
        app.workshops()
            .update_workshop(authed(update(0, false, &["capacity"]), &teacher.token))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["workshop.capacity"]);
    let grown = app
        .workshops()
        .update_workshop(authed(update(5, false, &["capacity"]), &teacher.token))
        .await
        .unwrap()
        .into_inner()
        .workshop
        .unwrap();
    assert_eq!((grown.capacity, grown.seats_remaining), (5, 3));
    // A listed workshop's change is announced (instructor's copy of its schedule).
    assert!(
        app.outbox_subjects()
            .await
            .contains(&"learning.workshop.updated".to_owned())
    );
    assert_code(
        app.workshops()
            .update_workshop(authed(update(5, true, &["featured"]), &teacher.token))
            .await,
        Code::PermissionDenied,
    );
    let admin = app.user(None, &[("user", false), ("admin", false)]);
    let featured = app
        .workshops()
        .update_workshop(authed(update(5, true, &["featured"]), &admin.token))
        .await
        .unwrap()
        .into_inner()
        .workshop
        .unwrap();
    assert!(featured.featured);
    assert_no_drift(&app).await;
}
