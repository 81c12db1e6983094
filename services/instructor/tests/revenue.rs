//! Instructor revenue through the gRPC API with identity, learning and instructor in one
//! process against the real PostgreSQL and NATS.

mod common;

use std::time::Duration;

use common::{App, Caller, SETTLE, amount_in, money, usd};
use lyceum_learning::domain::CourseStatus;
use lyceum_platform::auth::PrincipalKind;
use lyceum_platform::verify::Reconciliation;
use lyceum_proto::instructor::v1 as ipb;
use lyceum_proto::instructor::v1::profile_service_client::ProfileServiceClient;
use lyceum_proto::instructor::v1::settings_service_client::SettingsServiceClient;
use lyceum_proto::learning::v1 as lpb;
use lyceum_proto::learning::v1::review_service_client::ReviewServiceClient;
use lyceum_testkit::{assert_code, authed, eventually_within};
use tonic::Code;
use uuid::Uuid;

#[tokio::test]
async fn paid_and_free_enrollments_flow_into_exact_dashboards_that_survive_redelivery_and_restart()
{
    let mut app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let operator = app.mint(PrincipalKind::Service, &[]);
    let (paid_course, paid_lessons) = app.course(&teacher, "Paid masterclass", 4999, 2).await;
    let (free_course, _) = app.course(&teacher, "Free primer", 0, 1).await;

    let payers: Vec<Caller> = (0..3).map(|_| app.user(&["user"])).collect();
    let mut payments = Vec::new();
    for student in &payers {
        let enrollment = app.enroll(student, &paid_course).await;
        assert_eq!(
            enrollment.status,
            lpb::EnrollmentStatus::PendingPayment as i32
        );
        payments.push(app.pay(student, &teacher, &enrollment, &operator).await);
    }
    let freeloaders: Vec<Caller> = (0..2).map(|_| app.user(&["user"])).collect();
    for student in &freeloaders {
        app.enroll(student, &free_course).await;
    }
    // One paying student also takes the free course: still one student.
    app.enroll(&payers[0], &free_course).await;

    // Payments activate the enrollments; activations become revenue.
    eventually_within("three sales", SETTLE, || async {
        usd(&app.stats(&teacher).await.total_revenue) == 3 * 3999
    })
    .await;

    // Progress and a review by the student who completes the paid course.
    let mine = app
        .enrollments()
        .list_enrollments(authed(
            lpb::ListEnrollmentsRequest::default(),
            &payers[0].token,
        ))
        .await
        .unwrap()
        .into_inner()
        .enrollments
        .into_iter()
        .find(|e| e.course_id == paid_course)
        .unwrap();
    for lesson in &paid_lessons {
        app.enrollments()
            .record_lesson_progress(authed(
                lpb::RecordLessonProgressRequest {
                    enrollment_id: mine.id.clone(),
                    lesson_id: lesson.clone(),
                    status: lpb::LessonProgressStatus::Completed as i32,
                    progress_percent: 100,
                    watch_time_seconds: 300,
                    quiz_score: None,
                },
                &payers[0].token,
            ))
            .await
            .unwrap();
    }
    ReviewServiceClient::new(app.channel())
        .create_review(authed(
            lpb::CreateReviewRequest {
                course_id: paid_course.clone(),
                rating: 5,
                ..Default::default()
            },
            &payers[0].token,
        ))
        .await
        .unwrap();

    // A partial refund of one payment returns fee and earnings in proportion.
    let refund = app
        .payments()
        .refund_payment(authed(
            ipb::RefundPaymentRequest {
                id: payments[1].id.clone(),
                request_id: "refund-1".into(),
                amount_minor: 1000,
                reason: "partial".into(),
            },
            &operator.token,
        ))
        .await
        .unwrap()
        .into_inner();
    let refund_tx = refund.refund_transaction.unwrap();
    assert_eq!(refund_tx.amount.unwrap().amount_minor, -1000);
    assert_eq!(refund_tx.platform_fee.unwrap().amount_minor, -200);
    assert_eq!(refund_tx.instructor_earnings.unwrap().amount_minor, -800);

    eventually_within("the review and the completion", SETTLE, || async {
        let stats = app.stats(&teacher).await;
        stats.total_reviews == 1
    })
    .await;
    let expected = |stats: &ipb::GetDashboardStatsResponse| {
        assert_eq!(
            stats.total_students, 5,
            "3 payers + 2 free, the payer counted once"
        );
        assert_eq!(stats.total_courses, 2);
        assert_eq!(usd(&stats.total_revenue), 3 * 3999 - 800);
        assert_eq!(usd(&stats.pending_revenue), 3 * 3999 - 800);
        assert_eq!((stats.average_rating, stats.total_reviews), (5.0, 1));
        assert_eq!(stats.active_enrollments, 5, "6 enrollments, one completed");
    };
    expected(&app.stats(&teacher).await);

    let breakdown = app
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
    let sale = breakdown
        .iter()
        .find(|r| r.r#type == ipb::TransactionType::CourseEnrollment as i32)
        .unwrap();
    let refunds = breakdown
        .iter()
        .find(|r| r.r#type == ipb::TransactionType::Refund as i32)
        .unwrap();
    assert_eq!((sale.transaction_count, usd(&sale.gross)), (3, 14997));
    assert_eq!(
        usd(&sale.platform_fees),
        3000,
        "20 % of 4999 rounds half-up to 1000"
    );
    for row in &breakdown {
        let (gross, fees, earnings) = (
            usd(&row.gross),
            usd(&row.platform_fees),
            usd(&row.instructor_earnings),
        );
        assert_eq!(
            fees + earnings,
            gross,
            "fees and earnings reconcile to the minor unit"
        );
    }
    assert_eq!(usd(&refunds.gross), -1000);

    let students = app
        .dashboard()
        .list_student_progress(authed(
            ipb::ListStudentProgressRequest {
                instructor_id: teacher.id.to_string(),
                course_id: paid_course.clone(),
                ..Default::default()
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .students;
    assert_eq!(students.len(), 3);
    let finisher = students
        .iter()
        .find(|s| s.student_id == payers[0].id.to_string())
        .unwrap();
    assert_eq!(
        (
            finisher.progress_percentage,
            finisher.enrollment_status.as_str()
        ),
        (100.0, "completed")
    );
    let activity = app
        .dashboard()
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
        .activities;
    let count =
        |kind: ipb::ActivityType| activity.iter().filter(|a| a.r#type == kind as i32).count();
    assert_eq!(count(ipb::ActivityType::Enrolled), 6);
    assert_eq!(count(ipb::ActivityType::LessonCompleted), 2);
    assert_eq!(count(ipb::ActivityType::CourseCompleted), 1);
    assert_eq!(count(ipb::ActivityType::ReviewPosted), 1);
    assert!(
        activity
            .windows(2)
            .all(|w| w[0].occur_time.as_ref().unwrap().seconds
                >= w[1].occur_time.as_ref().unwrap().seconds)
    );

    // A duplicated delivery of every learning event, then a restart of the consumers:
    // the figures do not move.
    let mut conn = app.db.admin_connection().await;
    let envelopes: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT subject, envelope FROM learning.outbox")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert!(!envelopes.is_empty());
    for (subject, envelope) in &envelopes {
        let message = async_nats::jetstream::message::PublishMessage::build()
            .message_id(Uuid::now_v7().to_string())
            .payload(envelope.clone().into());
        app.bus
            .jetstream()
            .send_publish(app.bus.subject(subject), message)
            .await
            .unwrap()
            .await
            .unwrap();
    }
    app.restart().await;
    let marker = app.user(&["user"]);
    app.enroll(&marker, &free_course).await;
    eventually_within("the marker enrollment", SETTLE, || async {
        app.stats(&teacher).await.total_students == 6
    })
    .await;
    let stats = app.stats(&teacher).await;
    assert_eq!(usd(&stats.total_revenue), 3 * 3999 - 800);
    assert_eq!(stats.total_reviews, 1);

    // Nothing drifted.
    assert!(
        lyceum_learning::jobs::course_statistics::CourseStatistics
            .check(&app.learning)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        lyceum_instructor::jobs::payment_totals::PaymentTotals
            .check(&app.instructor)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        lyceum_instructor::jobs::instructor_stats::InstructorStats
            .check(&app.instructor)
            .await
            .unwrap()
            .is_empty()
    );

    // The public profile carries the same statistics, kept from the events.
    ProfileServiceClient::new(app.channel())
        .upsert_instructor_profile(authed(
            ipb::UpsertInstructorProfileRequest {
                profile: Some(ipb::InstructorProfile {
                    bio: "Twenty years of building and teaching backend systems at scale.".into(),
                    expertise_tags: vec!["rust".into()],
                    pillars: vec!["coaching".into()],
                    ..Default::default()
                }),
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    let profile = ProfileServiceClient::new(app.channel())
        .get_instructor_profile(ipb::GetInstructorProfileRequest {
            instructor_id: teacher.id.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .profile
        .unwrap();
    let figures = profile.statistics.unwrap();
    assert_eq!(
        (
            figures.total_students,
            figures.total_courses,
            figures.total_reviews,
            figures.average_rating
        ),
        (6, 2, 1, 5.0)
    );

    // A payout settles the pending earnings.
    let payout = app
        .revenue()
        .create_payout(authed(
            ipb::CreatePayoutRequest {
                instructor_id: teacher.id.to_string(),
                request_id: "payout-1".into(),
                currency: "USD".into(),
            },
            &operator.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .payout
        .unwrap();
    assert_eq!(
        (
            payout.transaction_count,
            payout.amount.unwrap().amount_minor
        ),
        (4, 3 * 3999 - 800)
    );
    assert_eq!(
        app.stats(&teacher).await.pending_revenue,
        vec![ipb::Money {
            amount_minor: 0,
            currency: "USD".into()
        }]
    );

    // Another instructor or a student sees none of it.
    for outsider in [app.user(&["user", "instructor"]), payers[2].clone()] {
        assert_code(
            app.dashboard()
                .get_dashboard_stats(authed(
                    ipb::GetDashboardStatsRequest {
                        instructor_id: teacher.id.to_string(),
                    },
                    &outsider.token,
                ))
                .await,
            Code::PermissionDenied,
        );
        assert_code(
            app.revenue()
                .list_revenue_transactions(authed(
                    ipb::ListRevenueTransactionsRequest {
                        instructor_id: teacher.id.to_string(),
                        ..Default::default()
                    },
                    &outsider.token,
                ))
                .await,
            Code::PermissionDenied,
        );
    }
}

async fn paid_payment(app: &App, amount: i64) -> (ipb::Payment, Caller) {
    let teacher = app.user(&["user", "instructor"]);
    let payer = app.user(&["user"]);
    let operator = app.mint(PrincipalKind::Service, &[]);
    let payment = app
        .payments()
        .record_payment(authed(
            ipb::RecordPaymentRequest {
                request_id: Uuid::now_v7().to_string(),
                instructor_id: teacher.id.to_string(),
                amount: Some(ipb::Money {
                    amount_minor: amount,
                    currency: "USD".into(),
                }),
                provider: ipb::PaymentProvider::Manual as i32,
                r#type: ipb::PaymentType::Other as i32,
                ..Default::default()
            },
            &payer.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    let payment = app
        .payments()
        .succeed_payment(authed(
            ipb::SucceedPaymentRequest {
                id: payment.id,
                ..Default::default()
            },
            &operator.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    (payment, operator)
}

#[tokio::test]
async fn concurrent_refunds_never_exceed_the_payment() {
    let app = App::spawn().await;
    let (payment, operator) = paid_payment(&app, 10_000).await;
    let attempts = (0..20).map(|i| {
        let mut client = app.payments();
        let request = authed(
            ipb::RefundPaymentRequest {
                id: payment.id.clone(),
                request_id: format!("r-{i}"),
                amount_minor: 1_000,
                reason: String::new(),
            },
            &operator.token,
        );
        async move { client.refund_payment(request).await }
    });
    let results = futures::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10);
    // Refused because nothing is left: the amount exceeds the rest, or the payment is refunded.
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|s| matches!(s.code(), Code::InvalidArgument | Code::FailedPrecondition))
    );
    let stored = app
        .payments()
        .get_payment(authed(
            ipb::GetPaymentRequest {
                id: payment.id.clone(),
            },
            &operator.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    assert_eq!(stored.refunded.unwrap().amount_minor, 10_000);
    assert_eq!(stored.status, ipb::PaymentStatus::Refunded as i32);
    // The fees returned add up to the whole fee fixed at success.
    let mut conn = app.db.admin_connection().await;
    let (fees, amounts): (i64, i64) = sqlx::query_as(
        "SELECT sum(fee_minor)::bigint, sum(amount_minor)::bigint
         FROM instructor.payment_refunds WHERE payment_id = $1::uuid",
    )
    .bind(&payment.id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((fees, amounts), (2_000, 10_000));
    // Nothing was sold with this payment, so no revenue is reversed.
    let booked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM instructor.revenue_transactions WHERE payment_id = $1::uuid",
    )
    .bind(&payment.id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(booked, 0);
    assert!(
        lyceum_instructor::jobs::payment_totals::PaymentTotals
            .check(&app.instructor)
            .await
            .unwrap()
            .is_empty()
    );
    // A retried refund request returns the first result and moves no money.
    let retried = app
        .payments()
        .refund_payment(authed(
            ipb::RefundPaymentRequest {
                id: payment.id.clone(),
                request_id: "r-0".into(),
                amount_minor: 1_000,
                reason: String::new(),
            },
            &operator.token,
        ))
        .await;
    assert_eq!(
        retried.is_ok(),
        results[0].is_ok(),
        "a retry answers as the first call did"
    );
    let after: (i64,) =
        sqlx::query_as("SELECT refunded_minor FROM instructor.payments WHERE id = $1::uuid")
            .bind(&payment.id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(after.0, 10_000);
}

#[tokio::test]
async fn retries_of_one_request_id_create_one_payment_and_different_parameters_are_rejected() {
    let app = App::spawn().await;
    let payer = app.user(&["user"]);
    let request = |amount: i64| ipb::RecordPaymentRequest {
        request_id: "checkout-42".into(),
        amount: Some(ipb::Money {
            amount_minor: amount,
            currency: "USD".into(),
        }),
        provider: ipb::PaymentProvider::Stripe as i32,
        r#type: ipb::PaymentType::Other as i32,
        ..Default::default()
    };
    let attempts = (0..16).map(|_| {
        let mut client = app.payments();
        let request = authed(request(2500), &payer.token);
        async move { client.record_payment(request).await }
    });
    let results = futures::future::join_all(attempts).await;
    let ids: std::collections::HashSet<String> = results
        .into_iter()
        .map(|r| r.unwrap().into_inner().payment.unwrap().id)
        .collect();
    assert_eq!(ids.len(), 1);
    let mut conn = app.db.admin_connection().await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM instructor.payments")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(count, 1);
    let status = assert_code(
        app.payments()
            .record_payment(authed(request(2600), &payer.token))
            .await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("request_id"), "{status:?}");
    // Another payer's request id is refused as such, though their payment stays hidden.
    let stranger = app.user(&["user"]);
    let status = assert_code(
        app.payments()
            .record_payment(authed(request(2500), &stranger.token))
            .await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("another payer"), "{status:?}");

    // Bad input names its fields.
    let status = assert_code(
        app.payments()
            .record_payment(authed(
                ipb::RecordPaymentRequest {
                    request_id: String::new(),
                    amount: Some(ipb::Money {
                        amount_minor: -5,
                        currency: "usd".into(),
                    }),
                    ..Default::default()
                },
                &payer.token,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert!(
        status.message().contains("amount.amount_minor") && status.message().contains("request_id"),
        "{status:?}"
    );
}

#[tokio::test]
async fn payment_status_only_moves_forward() {
    let app = App::spawn().await;
    let (payment, operator) = paid_payment(&app, 3000).await;
    let late_failure = app
        .payments()
        .fail_payment(authed(
            ipb::FailPaymentRequest {
                id: payment.id.clone(),
                reason: "late webhook".into(),
            },
            &operator.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    assert_eq!(late_failure.status, ipb::PaymentStatus::Succeeded as i32);
    let again = app
        .payments()
        .succeed_payment(authed(
            ipb::SucceedPaymentRequest {
                id: payment.id.clone(),
                ..Default::default()
            },
            &operator.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    assert_eq!(
        again.succeed_time, payment.succeed_time,
        "a repeated confirmation changes nothing"
    );
    // Payers cannot confirm their own payments.
    let payer = app.user(&["user"]);
    assert_code(
        app.payments()
            .succeed_payment(authed(
                ipb::SucceedPaymentRequest {
                    id: payment.id.clone(),
                    ..Default::default()
                },
                &payer.token,
            ))
            .await,
        Code::PermissionDenied,
    );
    let mut conn = app.db.admin_connection().await;
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM instructor.outbox WHERE subject = 'instructor.payment.succeeded'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(events, 1);
}

#[tokio::test]
async fn row_level_security_keeps_revenue_to_its_instructor() {
    use lyceum_platform::db::TenantContext;
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let student = app.user(&["user"]);
    let operator = app.mint(PrincipalKind::Service, &[]);
    let (course, _) = app.course(&teacher, "Databases", 5000, 1).await;
    let enrollment = app.enroll(&student, &course).await;
    let payment = app.pay(&student, &teacher, &enrollment, &operator).await;
    eventually_within("the sale", SETTLE, || async {
        usd(&app.stats(&teacher).await.total_revenue) == 4000
    })
    .await;
    app.payments()
        .refund_payment(authed(
            ipb::RefundPaymentRequest {
                id: payment.id.clone(),
                request_id: "r".into(),
                amount_minor: 500,
                reason: String::new(),
            },
            &operator.token,
        ))
        .await
        .unwrap();
    let count_as = |user: Uuid| {
        let db = app.instructor.clone();
        async move {
            let context = TenantContext {
                user_id: Some(user),
                org_id: None,
                roles: vec!["user".into(), "instructor".into()],
            };
            let mut tx = db.begin(&context).await.unwrap();
            let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM revenue_transactions")
                .fetch_one(tx.conn())
                .await
                .unwrap();
            let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
                .fetch_one(tx.conn())
                .await
                .unwrap();
            (rows, payments)
        }
    };
    assert_eq!(
        count_as(teacher.id).await,
        (2, 1),
        "the instructor sees the sale, the refund and the payment"
    );
    assert_eq!(
        count_as(Uuid::now_v7()).await,
        (0, 0),
        "another instructor sees nothing"
    );
}

/// Found by the attack matrix: a request naming another instructor used to be applied
/// to the caller's own profile or settings, and anyone could keep "settings".
#[tokio::test]
async fn profiles_and_settings_are_written_only_by_their_own_instructor() {
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let other = app.user(&["user", "instructor"]);
    let student = app.user(&["user"]);
    let bio = "Coach for engineering leaders moving their teams to new ways of working.";
    let profile = |instructor: &Caller| ipb::UpsertInstructorProfileRequest {
        profile: Some(ipb::InstructorProfile {
            instructor_id: instructor.id.to_string(),
            bio: bio.into(),
            pillars: vec!["adaptability".into()],
            ..Default::default()
        }),
    };
    assert_code(
        ProfileServiceClient::new(app.channel())
            .upsert_instructor_profile(authed(profile(&other), &teacher.token))
            .await,
        Code::PermissionDenied,
    );
    // Naming oneself is what the field is for.
    ProfileServiceClient::new(app.channel())
        .upsert_instructor_profile(authed(profile(&teacher), &teacher.token))
        .await
        .expect("one's own profile");
    let settings = |instructor: &Caller| ipb::UpdateInstructorSettingsRequest {
        settings: Some(ipb::InstructorSettings {
            instructor_id: instructor.id.to_string(),
            payment_method: "paypal".into(),
            ..Default::default()
        }),
    };
    assert_code(
        SettingsServiceClient::new(app.channel())
            .update_instructor_settings(authed(settings(&other), &teacher.token))
            .await,
        Code::PermissionDenied,
    );
    assert_code(
        SettingsServiceClient::new(app.channel())
            .update_instructor_settings(authed(settings(&student), &student.token))
            .await,
        Code::PermissionDenied,
    );
    let mut conn = app.db.admin_connection().await;
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM instructor.instructor_settings")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, 0, "nothing was written for anyone");
}

#[tokio::test]
async fn profiles_validate_and_settings_keep_payment_details_encrypted_and_private() {
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let status = assert_code(
        ProfileServiceClient::new(app.channel())
            .upsert_instructor_profile(authed(
                ipb::UpsertInstructorProfileRequest {
                    profile: Some(ipb::InstructorProfile {
                        bio: "Too short".into(),
                        pillars: vec!["cooking".into()],
                        ..Default::default()
                    }),
                },
                &teacher.token,
            ))
            .await,
        Code::InvalidArgument,
    );
    assert!(
        status.message().contains("profile.bio") && status.message().contains("profile.pillars"),
        "{status:?}"
    );
    let bio = "Coach for engineering leaders moving their teams to new ways of working.";
    ProfileServiceClient::new(app.channel())
        .upsert_instructor_profile(authed(
            ipb::UpsertInstructorProfileRequest {
                profile: Some(ipb::InstructorProfile {
                    bio: bio.into(),
                    expertise_tags: vec!["leadership".into(), "change".into()],
                    pillars: vec!["adaptability".into()],
                    ..Default::default()
                }),
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    let found = ProfileServiceClient::new(app.channel())
        .search_instructors(ipb::SearchInstructorsRequest {
            expertise_tag: "leadership".into(),
            pillar: "adaptability".into(),
            page_size: 10,
        })
        .await
        .unwrap()
        .into_inner()
        .profiles;
    assert_eq!(found.len(), 1);
    let none = ProfileServiceClient::new(app.channel())
        .search_instructors(ipb::SearchInstructorsRequest {
            expertise_tag: "leadership".into(),
            pillar: "marketplace".into(),
            page_size: 10,
        })
        .await
        .unwrap()
        .into_inner()
        .profiles;
    assert!(none.is_empty());

    let secret = "IBAN DE89 3704 0044 0532 0130 00";
    let saved = SettingsServiceClient::new(app.channel())
        .update_instructor_settings(authed(
            ipb::UpdateInstructorSettingsRequest {
                settings: Some(ipb::InstructorSettings {
                    payment_method: "bank_transfer".into(),
                    payment_details: secret.into(),
                    payout_schedule: "weekly".into(),
                    ..Default::default()
                }),
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(saved.payment_details, secret);
    // What the database holds (and a dump would show) is ciphertext.
    let mut conn = app.db.admin_connection().await;
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT payment_details_encrypted FROM instructor.instructor_settings")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(!stored.windows(4).any(|w| w == b"IBAN") && !stored.windows(4).any(|w| w == b"DE89"));
    let as_text: String =
        sqlx::query_scalar("SELECT row_to_json(s)::text FROM instructor.instructor_settings s")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(!as_text.contains("DE89"), "{as_text}");
    let mine = SettingsServiceClient::new(app.channel())
        .get_instructor_settings(authed(
            ipb::GetInstructorSettingsRequest::default(),
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(
        (mine.payment_details.as_str(), mine.payout_schedule.as_str()),
        (secret, "weekly")
    );
    for outsider in [app.user(&["user", "instructor"]), app.user(&["user"])] {
        assert_code(
            SettingsServiceClient::new(app.channel())
                .get_instructor_settings(authed(
                    ipb::GetInstructorSettingsRequest {
                        instructor_id: teacher.id.to_string(),
                    },
                    &outsider.token,
                ))
                .await,
            Code::PermissionDenied,
        );
    }
}

#[tokio::test]
async fn dashboards_show_the_names_identity_publishes() {
    use lyceum_proto::identity::v1 as idpb;
    use lyceum_proto::identity::v1::auth_service_client::AuthServiceClient;
    use lyceum_proto::identity::v1::user_service_client::UserServiceClient;
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let (course, _) = app.course(&teacher, "Compilers", 0, 1).await;

    // A real user: registered with identity, signed in with a real token.
    UserServiceClient::new(app.channel())
        .create_user(idpb::CreateUserRequest {
            email: "grace@example.org".into(),
            password: "Correct-Horse-42".into(),
            full_name: "Grace Hopper".into(),
            avatar_url: "https://cdn.example/grace.png".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let tokens = AuthServiceClient::new(app.channel())
        .authenticate(idpb::AuthenticateRequest {
            email: "grace@example.org".into(),
            password: "Correct-Horse-42".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .tokens
        .unwrap();
    let grace = Caller {
        id: Uuid::nil(),
        token: tokens.access_token,
    };
    app.enroll(&grace, &course).await;

    eventually_within("Grace's name on the dashboard", SETTLE, || async {
        let rows = app
            .dashboard()
            .list_student_progress(authed(
                ipb::ListStudentProgressRequest {
                    instructor_id: teacher.id.to_string(),
                    ..Default::default()
                },
                &teacher.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .students;
        rows.first().is_some_and(|r| {
            r.student_name == "Grace Hopper" && r.student_email == "grace@example.org"
        })
    })
    .await;
    let activity = app
        .dashboard()
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
        .activities;
    assert_eq!(activity[0].student_name, "Grace Hopper");
    assert_eq!(activity[0].course_title, "Compilers");
}

#[tokio::test]
async fn dashboards_and_payouts_never_mix_currencies() {
    use prost::Message as _;
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let operator = app.mint(PrincipalKind::Service, &[]);
    let (dollars, _) = app.course_in(&teacher, "In dollars", 4999, "USD", 1).await;
    let (euros, _) = app.course_in(&teacher, "In euros", 3000, "EUR", 1).await;
    for course in [&dollars, &euros, &euros] {
        let student = app.user(&["user"]);
        let enrollment = app.enroll(&student, course).await;
        app.pay(&student, &teacher, &enrollment, &operator).await;
    }
    eventually_within("three sales", SETTLE, || async {
        app.stats(&teacher).await.total_revenue.len() == 2
            && amount_in(&app.stats(&teacher).await.total_revenue, "EUR") == Some(4800)
    })
    .await;

    // One entry per currency, sorted by code, never a sum of both.
    let stats = app.stats(&teacher).await;
    assert_eq!(
        stats.total_revenue,
        vec![money(4800, "EUR"), money(3999, "USD")]
    );
    assert_eq!(
        stats.pending_revenue,
        vec![money(4800, "EUR"), money(3999, "USD")]
    );
    let breakdown = app
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
    assert_eq!(breakdown.len(), 1, "{breakdown:?}");
    let sales = &breakdown[0];
    assert_eq!(sales.transaction_count, 3);
    assert_eq!(sales.gross, vec![money(6000, "EUR"), money(4999, "USD")]);
    assert_eq!(
        sales.platform_fees,
        vec![money(1200, "EUR"), money(1000, "USD")]
    );
    assert_eq!(
        sales.instructor_earnings,
        vec![money(4800, "EUR"), money(3999, "USD")]
    );
    let months = app
        .dashboard()
        .get_monthly_revenue(authed(
            ipb::GetMonthlyRevenueRequest {
                instructor_id: teacher.id.to_string(),
                months: 1,
            },
            &teacher.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .months;
    assert_eq!(months.len(), 1, "{months:?}");
    assert_eq!(months[0].transaction_count, 3);
    assert_eq!(
        months[0].gross,
        vec![money(6000, "EUR"), money(4999, "USD")]
    );
    assert_eq!(
        months[0].instructor_earnings,
        vec![money(4800, "EUR"), money(3999, "USD")]
    );

    // A payout settles one currency; a retry returns it; the same request id for another
    // currency is refused.
    let paid_dollars = app
        .payout(&operator, &teacher, "payout-usd", "USD")
        .await
        .unwrap();
    assert_eq!(
        (paid_dollars.amount.clone(), paid_dollars.transaction_count),
        (Some(money(3999, "USD")), 1)
    );
    let retried = app
        .payout(&operator, &teacher, "payout-usd", "USD")
        .await
        .unwrap();
    assert_eq!(retried, paid_dollars);
    let status = assert_code(
        app.payout(&operator, &teacher, "payout-usd", "EUR").await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("request_id"), "{status:?}");
    assert_eq!(
        app.stats(&teacher).await.pending_revenue,
        vec![money(4800, "EUR"), money(0, "USD")]
    );
    assert_code(
        app.payout(&operator, &teacher, "payout-usd-2", "USD").await,
        Code::FailedPrecondition,
    );
    // Concurrent retries of one request: one payout.
    let attempts = (0..8).map(|_| app.payout(&operator, &teacher, "payout-eur", "EUR"));
    let results = futures::future::join_all(attempts).await;
    let paid_euros = results[0].clone().unwrap();
    assert!(
        results.iter().all(|r| r.as_ref().ok() == Some(&paid_euros)),
        "{results:?}"
    );
    assert_eq!(
        (paid_euros.amount.clone(), paid_euros.transaction_count),
        (Some(money(4800, "EUR")), 2)
    );
    assert_eq!(
        app.stats(&teacher).await.pending_revenue,
        vec![money(0, "EUR"), money(0, "USD")]
    );

    // The instructor lists their payouts, newest first, a page at a time.
    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .revenue()
            .list_payouts(authed(
                ipb::ListPayoutsRequest {
                    page_size: 1,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
                &teacher.token,
            ))
            .await
            .unwrap()
            .into_inner();
        listed.extend(page.payouts);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(listed, vec![paid_euros.clone(), paid_dollars.clone()]);

    // Each payout published one payout.made event.
    let mut conn = app.db.admin_connection().await;
    let events: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT envelope FROM instructor.outbox WHERE subject = 'instructor.payout.made' ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let made: Vec<lyceum_proto::events::v1::PayoutMade> = events
        .iter()
        .map(|bytes| {
            let envelope =
                lyceum_proto::events::v1::EventEnvelope::decode(bytes.as_slice()).unwrap();
            assert_eq!(envelope.event_type, "lyceum.instructor.payout.made");
            lyceum_platform::events::unpack(&envelope).unwrap()
        })
        .collect();
    assert_eq!(
        made.iter()
            .map(|m| (
                m.payout_id.clone(),
                m.amount_minor,
                m.currency.clone(),
                m.transaction_count
            ))
            .collect::<Vec<_>>(),
        vec![
            (paid_dollars.id.clone(), 3999, "USD".to_owned(), 1),
            (paid_euros.id.clone(), 4800, "EUR".to_owned(), 2),
        ]
    );

    // Bad input names its fields; only the platform pays out; payouts are the
    // instructor's to read.
    let status = assert_code(
        app.revenue()
            .create_payout(authed(
                ipb::CreatePayoutRequest {
                    instructor_id: "nope".into(),
                    request_id: String::new(),
                    currency: "usd".into(),
                },
                &operator.token,
            ))
            .await,
        Code::InvalidArgument,
    );
    for field in ["instructor_id", "request_id", "currency"] {
        assert!(status.message().contains(field), "{field}: {status:?}");
    }
    assert_code(
        app.payout(&teacher, &teacher, "mine", "EUR").await,
        Code::PermissionDenied,
    );
    let stranger = app.user(&["user", "instructor"]);
    assert_code(
        app.revenue()
            .list_payouts(authed(
                ipb::ListPayoutsRequest {
                    instructor_id: teacher.id.to_string(),
                    ..Default::default()
                },
                &stranger.token,
            ))
            .await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn a_sale_books_the_fee_fixed_when_its_payment_succeeded() {
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let student = app.user(&["user"]);
    let operator = app.mint(PrincipalKind::Service, &[]);
    let (course, _) = app.course(&teacher, "Fees", 10_000, 1).await;
    let enrollment = app.enroll(&student, &course).await;
    let payment = app.pay(&student, &teacher, &enrollment, &operator).await;
    eventually_within("the sale", SETTLE, || async {
        usd(&app.stats(&teacher).await.total_revenue) == 8_000
    })
    .await;

    // The platform raises its fee after the payment succeeded, and only then is the
    // activation consumed (as when the consumer lags): the fee stays the one fixed at
    // success.
    app.set_fee(None, 50.0).await;
    let mut conn = app.db.admin_connection().await;
    sqlx::query("DELETE FROM instructor.revenue_transactions WHERE payment_id = $1::uuid")
        .bind(&payment.id)
        .execute(&mut conn)
        .await
        .unwrap();
    let activations = app.activations().await;
    assert_eq!(activations.len(), 1);
    app.feed_learning_events(&activations).await;
    assert_eq!(
        app.booked(&payment.id).await,
        vec![(
            teacher.id,
            "course_enrollment".to_owned(),
            10_000,
            2000,
            2_000,
            8_000
        )]
    );

    // A payment that succeeds after the change pays the new fee.
    let (other, _) = app.course(&teacher, "Fees, later", 10_000, 1).await;
    let later = app.enroll(&student, &other).await;
    let later_payment = app.pay(&student, &teacher, &later, &operator).await;
    eventually_within("the later sale", SETTLE, || async {
        usd(&app.stats(&teacher).await.total_revenue) == 13_000
    })
    .await;
    assert_eq!(app.booked(&later_payment.id).await[0].3, 5000);
}

#[tokio::test]
async fn a_scoped_payment_service_fixes_the_instructors_own_fee() {
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let student = app.user(&["user"]);
    let operator = app.mint(PrincipalKind::Service, &[]);
    app.set_fee(Some(teacher.id), 10.0).await;
    let (course, _) = app.course(&teacher, "Own fee", 10_000, 1).await;
    let enrollment = app.enroll(&student, &course).await;
    // The fee is fixed for the enrollment's instructor once the projection knows it: the
    // payment service, under its payments:write scope, must be able to read that.
    eventually_within("the enrollment in the projection", SETTLE, || async {
        let mut conn = app.db.admin_connection().await;
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM instructor.enrollment_projection WHERE enrollment_id = $1::uuid",
        )
        .bind(&enrollment.id)
        .fetch_one(&mut conn)
        .await
        .unwrap()
            == 1
    })
    .await;
    let payment = app.pay(&student, &teacher, &enrollment, &operator).await;
    eventually_within("the sale", SETTLE, || async {
        usd(&app.stats(&teacher).await.total_revenue) == 9_000
    })
    .await;
    assert_eq!(app.booked(&payment.id).await[0].3, 1000);
}

#[tokio::test]
async fn revenue_goes_to_the_enrollments_instructor_not_the_one_the_payer_names() {
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    // An instructor whom the platform charges nothing: naming them must not lower the fee.
    let decoy = app.user(&["user", "instructor"]);
    app.set_fee(Some(decoy.id), 0.0).await;
    let student = app.user(&["user"]);
    let operator = app.mint(PrincipalKind::Service, &[]);
    let (course, _) = app
        .course(&teacher, "Owned by the teacher", 10_000, 1)
        .await;
    let enrollment = app.enroll(&student, &course).await;
    app.learning_events_applied().await;
    let payment = app
        .pay_naming(&student, decoy.id, &enrollment, &operator)
        .await;
    eventually_within("the sale", SETTLE, || async {
        usd(&app.stats(&teacher).await.total_revenue) == 8_000
    })
    .await;
    let refund = app
        .payments()
        .refund_payment(authed(
            ipb::RefundPaymentRequest {
                id: payment.id.clone(),
                request_id: "partial".into(),
                amount_minor: 1_000,
                reason: String::new(),
            },
            &operator.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .refund_transaction
        .unwrap();
    assert_eq!(refund.instructor_id, teacher.id.to_string());
    let booked = vec![
        (
            teacher.id,
            "course_enrollment".to_owned(),
            10_000,
            2000,
            2_000,
            8_000,
        ),
        (teacher.id, "refund".to_owned(), -1_000, 2000, -200, -800),
    ];
    assert_eq!(app.booked(&payment.id).await, booked);

    // A payment that sold nothing, naming an instructor, then refunded: no revenue is
    // booked or reversed for anyone (the named instructor earned nothing to give back).
    let (other, _) = paid_payment(&app, 5_000).await;
    let named: Uuid = other.instructor_id.parse().unwrap();
    app.payments()
        .refund_payment(authed(
            ipb::RefundPaymentRequest {
                id: other.id.clone(),
                request_id: "all".into(),
                amount_minor: 0,
                reason: String::new(),
            },
            &operator.token,
        ))
        .await
        .unwrap();
    assert!(app.booked(&other.id).await.is_empty());
    for nobody in [decoy.id, named] {
        let transactions = app
            .revenue()
            .list_revenue_transactions(authed(
                ipb::ListRevenueTransactionsRequest {
                    instructor_id: nobody.to_string(),
                    ..Default::default()
                },
                &app.admin().token,
            ))
            .await
            .unwrap()
            .into_inner()
            .transactions;
        assert!(transactions.is_empty(), "{transactions:?}");
    }
    assert!(app.stats(&decoy).await.total_revenue.is_empty());

    let mut conn = app.db.admin_connection().await;

    // A refund made before the sale was booked is booked with it, the same way.
    sqlx::query("DELETE FROM instructor.revenue_transactions WHERE payment_id = $1::uuid")
        .bind(&payment.id)
        .execute(&mut conn)
        .await
        .unwrap();
    app.feed_learning_events(&app.activations().await).await;
    assert_eq!(app.booked(&payment.id).await, booked);
    assert!(
        lyceum_instructor::jobs::payment_totals::PaymentTotals
            .check(&app.instructor)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Records a student's progress in `tx` as learning's handler does: saves the totals and
/// publishes the event with them.
async fn save_progress(
    tx: &mut lyceum_platform::db::Tx,
    enrollment_id: Uuid,
    lesson_id: Uuid,
    completed_lessons: i32,
) {
    use lyceum_learning::events::{LessonChange, lesson_progress_recorded};
    use lyceum_learning::store::{enrollments, progress};
    let enrollment = enrollments::get(tx, enrollment_id).await.unwrap().unwrap();
    let mut row = progress::lock(tx, enrollment_id).await.unwrap().unwrap();
    row.completed_lessons = completed_lessons;
    row.progress_percentage = f64::from(completed_lessons) * 50.0;
    let saved = progress::save(tx, &row).await.unwrap();
    let change = LessonChange {
        lesson_id,
        lesson_status: "completed".into(),
        started_now: false,
        completed_now: true,
        quiz: None,
    };
    tx.publish(lesson_progress_recorded(&enrollment, &change, &saved))
        .await
        .unwrap();
}

async fn set_course_status(
    tx: &mut lyceum_platform::db::Tx,
    course_id: Uuid,
    status: CourseStatus,
) {
    use lyceum_learning::events::course_status_changed;
    use lyceum_learning::store::courses;
    let row = courses::set_status(tx, course_id, status).await.unwrap();
    tx.publish(course_status_changed(&row)).await.unwrap();
}

/// A transaction of learning's that starts now (its `now()` is fixed from here on).
async fn begin_learning(app: &App) -> lyceum_platform::db::Tx {
    // The service's own role, as learning's handlers switch to for progress and statistics.
    let mut tx = app.learning.begin_system("test race").await.unwrap();
    let _: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(tx.conn())
        .await
        .unwrap();
    tx
}

#[tokio::test]
async fn a_change_that_commits_last_wins_even_if_its_transaction_started_first() {
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let student = app.user(&["user"]);
    let (course, lessons) = app.course(&teacher, "Races", 0, 2).await;
    let enrollment = app.enroll(&student, &course).await;
    app.learning_events_applied().await;
    let (course_id, enrollment_id): (Uuid, Uuid) =
        (course.parse().unwrap(), enrollment.id.parse().unwrap());
    let lesson_id: Uuid = lessons[0].parse().unwrap();

    // Each time, the transaction that started first commits last: learning ends with its
    // state, and so must the projections.
    let mut early = begin_learning(&app).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut late = begin_learning(&app).await;
    save_progress(&mut late, enrollment_id, lesson_id, 1).await;
    set_course_status(&mut late, course_id, CourseStatus::Archived).await;
    late.commit().await.unwrap();
    save_progress(&mut early, enrollment_id, lesson_id, 2).await;
    set_course_status(&mut early, course_id, CourseStatus::Published).await;
    early.commit().await.unwrap();

    app.learning_events_applied().await;
    let mut conn = app.db.admin_connection().await;
    let (completed, progress): (i32, f64) = sqlx::query_as(
        "SELECT completed_lessons, progress_percentage::float8 FROM instructor.enrollment_projection
         WHERE enrollment_id = $1",
    )
    .bind(enrollment_id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((completed, progress), (2, 100.0));
    let status: String =
        sqlx::query_scalar("SELECT status FROM instructor.course_projection WHERE course_id = $1")
            .bind(course_id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(status, "published");
    assert_eq!(app.stats(&teacher).await.total_courses, 1);
}

/// Every row of the projections learning's events feed, with what differs between two
/// applications of the same events left out (generated ids, insertion times).
async fn projection_snapshot(app: &App) -> Vec<(String, String)> {
    let mut conn = app.db.admin_connection().await;
    sqlx::query_as(
        "SELECT 'course', to_jsonb(c)::text FROM instructor.course_projection c
         UNION ALL SELECT 'enrollment', to_jsonb(e)::text FROM instructor.enrollment_projection e
         UNION ALL SELECT 'stats', to_jsonb(s)::text FROM instructor.instructor_stats s
         UNION ALL SELECT 'student', (to_jsonb(s) - 'first_seen_at')::text FROM instructor.instructor_students s
         UNION ALL SELECT 'activity', (to_jsonb(a) - 'id')::text FROM instructor.student_activity a
         UNION ALL SELECT 'revenue', (to_jsonb(r) - 'id' - 'created_at')::text
                   FROM instructor.revenue_transactions r
         ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

async fn clear_projections(app: &App) {
    let mut conn = app.db.admin_connection().await;
    sqlx::query(
        "TRUNCATE instructor.course_projection, instructor.enrollment_projection, instructor.instructor_stats,
                  instructor.instructor_students, instructor.student_activity, instructor.revenue_transactions",
    )
    .execute(&mut conn)
    .await
    .unwrap();
}

/// A deterministic shuffle (xorshift), so that a failure can be replayed.
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut items = items.to_vec();
    let mut state = seed.max(1);
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
    items
}

#[tokio::test]
async fn projections_end_identical_whatever_order_learnings_events_arrive_in() {
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let operator = app.mint(PrincipalKind::Service, &[]);
    let (paid, paid_lessons) = app.course_in(&teacher, "Paid", 2_000, "EUR", 2).await;
    let (free, free_lessons) = app.course(&teacher, "Free", 0, 2).await;
    let students: Vec<Caller> = (0..4).map(|_| app.user(&["user"])).collect();

    let payer = app.enroll(&students[0], &paid).await;
    app.pay(&students[0], &teacher, &payer, &operator).await;
    eventually_within("the activation", SETTLE, || async {
        app.stats(&teacher).await.total_revenue.len() == 1
    })
    .await;
    let mut free_enrollments = Vec::new();
    for student in &students[1..] {
        free_enrollments.push(app.enroll(student, &free).await);
    }
    let progress = |student: &Caller, enrollment: &str, lesson: &str, status| {
        let request = authed(
            lpb::RecordLessonProgressRequest {
                enrollment_id: enrollment.to_owned(),
                lesson_id: lesson.to_owned(),
                status: status as i32,
                progress_percent: if status == lpb::LessonProgressStatus::Completed {
                    100
                } else {
                    40
                },
                watch_time_seconds: 120,
                quiz_score: None,
            },
            &student.token,
        );
        let mut client = app.enrollments();
        async move { client.record_lesson_progress(request).await.unwrap() }
    };
    use lpb::LessonProgressStatus::{Completed, InProgress};
    progress(&students[0], &payer.id, &paid_lessons[0], InProgress).await;
    progress(&students[0], &payer.id, &paid_lessons[0], Completed).await;
    progress(&students[0], &payer.id, &paid_lessons[1], InProgress).await;
    for lesson in &free_lessons {
        progress(&students[2], &free_enrollments[1].id, lesson, Completed).await;
        progress(&students[1], &free_enrollments[0].id, lesson, Completed).await;
    }
    progress(
        &students[3],
        &free_enrollments[2].id,
        &free_lessons[0],
        Completed,
    )
    .await;
    let mut reviews = ReviewServiceClient::new(app.channel());
    let mut review_ids = Vec::new();
    for (student, rating) in [(&students[1], 4), (&students[2], 5)] {
        review_ids.push(
            reviews
                .create_review(authed(
                    lpb::CreateReviewRequest {
                        course_id: free.clone(),
                        rating,
                        ..Default::default()
                    },
                    &student.token,
                ))
                .await
                .unwrap()
                .into_inner()
                .review
                .unwrap()
                .id,
        );
    }
    reviews
        .delete_review(authed(
            lpb::DeleteReviewRequest {
                id: review_ids[0].clone(),
            },
            &students[1].token,
        ))
        .await
        .unwrap();
    app.enrollments()
        .cancel_enrollment(authed(
            lpb::CancelEnrollmentRequest {
                id: free_enrollments[2].id.clone(),
            },
            &students[3].token,
        ))
        .await
        .unwrap();
    app.courses()
        .archive_course(authed(
            lpb::ArchiveCourseRequest { id: paid.clone() },
            &teacher.token,
        ))
        .await
        .unwrap();

    // In order, as the real consumer applied them.
    app.learning_events_applied().await;
    let in_order = projection_snapshot(&app).await;
    let events = app.learning_events().await;
    let kinds: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e.event_type.as_str()).collect();
    for kind in [
        "lyceum.learning.course.published",
        "lyceum.learning.course.archived",
        "lyceum.learning.enrollment.created",
        "lyceum.learning.enrollment.activated",
        "lyceum.learning.enrollment.completed",
        "lyceum.learning.enrollment.cancelled",
        "lyceum.learning.lesson_progress.recorded",
        "lyceum.learning.review.created",
        "lyceum.learning.review.deleted",
    ] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
    }
    assert!(in_order.iter().any(|(table, _)| table == "revenue"));

    let mut reversed = events.clone();
    reversed.reverse();
    let orders = [
        ("reversed", reversed),
        ("shuffled 1", shuffled(&events, 1)),
        ("shuffled 2", shuffled(&events, 0x9e37_79b9_7f4a_7c15)),
        ("shuffled 3", shuffled(&events, 42)),
    ];
    for (name, order) in orders {
        clear_projections(&app).await;
        app.feed_learning_events(&order).await;
        let snapshot = projection_snapshot(&app).await;
        let differences: Vec<_> = snapshot
            .iter()
            .filter(|row| !in_order.contains(row))
            .chain(in_order.iter().filter(|row| !snapshot.contains(row)))
            .collect();
        assert!(
            snapshot == in_order,
            "{name}: the projections differ from in-order delivery: {differences:#?}"
        );
    }
}

#[tokio::test]
async fn a_renamed_course_shows_its_new_title_on_the_dashboards() {
    let app = App::spawn().await;
    let teacher = app.user(&["user", "instructor"]);
    let (course, _) = app.course_in(&teacher, "First title", 0, "USD", 1).await;
    let student = app.user(&["user"]);
    app.enroll(&student, &course).await;
    let titles = || async {
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
            .into_iter()
            .map(|a| a.course_title)
            .collect::<Vec<_>>()
    };
    eventually_within("the enrollment on the timeline", SETTLE, || async {
        titles().await == ["First title"]
    })
    .await;
    app.courses()
        .update_course(authed(
            lpb::UpdateCourseRequest {
                course: Some(lpb::Course {
                    id: course.clone(),
                    title: "Second title".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["title".into()],
                }),
            },
            &teacher.token,
        ))
        .await
        .unwrap();
    eventually_within("the new title", SETTLE, || async {
        titles().await == ["Second title"]
    })
    .await;
}
