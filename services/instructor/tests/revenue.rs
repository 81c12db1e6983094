//! Instructor revenue through the gRPC API with identity, learning and instructor in one
//! process against the real PostgreSQL and NATS.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use lyceum_instructor::InstructorModule;
use lyceum_learning::LearningModule;
use lyceum_platform::auth::{
    Claims, GrantedRole, ISSUER, PrincipalKind, TokenSigner, TokenVerifier, with_bearer,
};
use lyceum_platform::config::DEVELOPMENT_DATA_KEY;
use lyceum_platform::crypto::SecretBox;
use lyceum_platform::db::Database;
use lyceum_platform::events::EventBus;
use lyceum_platform::verify::Reconciliation;
use lyceum_proto::instructor::v1 as ipb;
use lyceum_proto::instructor::v1::dashboard_service_client::DashboardServiceClient;
use lyceum_proto::instructor::v1::payment_service_client::PaymentServiceClient;
use lyceum_proto::instructor::v1::profile_service_client::ProfileServiceClient;
use lyceum_proto::instructor::v1::revenue_service_client::RevenueServiceClient;
use lyceum_proto::instructor::v1::settings_service_client::SettingsServiceClient;
use lyceum_proto::learning::v1 as lpb;
use lyceum_proto::learning::v1::course_service_client::CourseServiceClient;
use lyceum_proto::learning::v1::enrollment_service_client::EnrollmentServiceClient;
use lyceum_proto::learning::v1::review_service_client::ReviewServiceClient;
use lyceum_testkit::{RunningServer, TestDatabase, test_bus};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use uuid::Uuid;

struct App {
    db: TestDatabase,
    learning: Database,
    instructor: Database,
    bus: EventBus,
    server: Option<RunningServer>,
    signer: TokenSigner,
    modules_db: (Database, Database, Database),
}

#[derive(Clone)]
struct Caller {
    id: Uuid,
    token: String,
}

impl App {
    async fn spawn() -> Self {
        let db = TestDatabase::create().await;
        for schema in [
            &lyceum_identity::SCHEMA,
            &lyceum_learning::SCHEMA,
            &lyceum_instructor::SCHEMA,
        ] {
            db.migrate(schema).await;
        }
        let identity = db.service_database(&lyceum_identity::SCHEMA).await;
        let learning = db.service_database(&lyceum_learning::SCHEMA).await;
        let instructor = db.service_database(&lyceum_instructor::SCHEMA).await;
        let sealer = SecretBox::from_base64(DEVELOPMENT_DATA_KEY).unwrap();
        lyceum_identity::IdentityModule::start(
            identity.clone(),
            sealer.clone(),
            Default::default(),
        )
        .await
        .unwrap();
        let mut conn = db.admin_connection().await;
        let (kid, sealed): (String, Vec<u8>) =
            sqlx::query_as("SELECT kid, private_key_encrypted FROM identity.signing_keys LIMIT 1")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        let seed: [u8; 32] = sealer.decrypt(&sealed).unwrap().try_into().unwrap();
        let mut app = Self {
            db,
            learning: learning.clone(),
            instructor: instructor.clone(),
            bus: test_bus().await,
            server: None,
            signer: TokenSigner::new(kid, SigningKey::from_bytes(&seed)),
            modules_db: (identity, learning, instructor),
        };
        app.start().await;
        app
    }

    /// Starts (or restarts) learning and instructor with their relays and consumers.
    async fn start(&mut self) {
        let (identity, learning, instructor) = self.modules_db.clone();
        let sealer = SecretBox::from_base64(DEVELOPMENT_DATA_KEY).unwrap();
        let identity_module =
            lyceum_identity::IdentityModule::start(identity.clone(), sealer, Default::default())
                .await
                .unwrap();
        // Signatures only, as learning and instructor verify tokens in their own processes.
        let verifier = Arc::new(TokenVerifier::new(Arc::new(
            lyceum_identity::store::signing_keys::DbKeySource::new(identity),
        )));
        self.server = Some(
            RunningServer::start(
                vec![
                    Arc::new(identity_module),
                    Arc::new(LearningModule::new(learning)),
                    Arc::new(InstructorModule::new(
                        instructor,
                        SecretBox::from_base64(DEVELOPMENT_DATA_KEY).unwrap(),
                    )),
                ],
                verifier,
                self.bus.clone(),
            )
            .await,
        );
    }

    async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.start().await;
    }

    fn mint(&self, kind: PrincipalKind, roles: &[&str]) -> Caller {
        let id = Uuid::now_v7();
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            sub: id,
            iat: now,
            exp: now + 3600,
            jti: Uuid::now_v7(),
            kind,
            org: None,
            roles: roles
                .iter()
                .map(|r| GrantedRole {
                    role: (*r).into(),
                    org: None,
                })
                .collect(),
            sid: None,
            // Service accounts here stand for the payment provider's handler and the
            // payout job.
            scopes: match kind {
                PrincipalKind::Service => vec![
                    lyceum_platform::auth::scopes::PAYMENTS_WRITE.into(),
                    lyceum_platform::auth::scopes::PAYOUTS_WRITE.into(),
                ],
                PrincipalKind::User => vec![],
            },
        };
        Caller {
            id,
            token: self.signer.sign(&claims),
        }
    }

    fn user(&self, roles: &[&str]) -> Caller {
        self.mint(PrincipalKind::User, roles)
    }

    fn channel(&self) -> Channel {
        self.server.as_ref().unwrap().channel.clone()
    }

    fn payments(&self) -> PaymentServiceClient<Channel> {
        PaymentServiceClient::new(self.channel())
    }

    fn dashboard(&self) -> DashboardServiceClient<Channel> {
        DashboardServiceClient::new(self.channel())
    }

    fn revenue(&self) -> RevenueServiceClient<Channel> {
        RevenueServiceClient::new(self.channel())
    }

    fn courses(&self) -> CourseServiceClient<Channel> {
        CourseServiceClient::new(self.channel())
    }

    fn enrollments(&self) -> EnrollmentServiceClient<Channel> {
        EnrollmentServiceClient::new(self.channel())
    }

    async fn course(
        &self,
        owner: &Caller,
        title: &str,
        price: i64,
        lessons: usize,
    ) -> (String, Vec<String>) {
        let course = self
            .courses()
            .create_course(authed(
                lpb::CreateCourseRequest {
                    course: Some(lpb::Course {
                        title: title.into(),
                        price: Some(lpb::Money {
                            amount_minor: price,
                            currency: "USD".into(),
                        }),
                        ..Default::default()
                    }),
                },
                &owner.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .course
            .unwrap();
        let module = self
            .courses()
            .create_module(authed(
                lpb::CreateModuleRequest {
                    course_id: course.id.clone(),
                    title: "M".into(),
                    description: String::new(),
                },
                &owner.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .module
            .unwrap();
        let mut ids = Vec::new();
        for i in 0..lessons {
            ids.push(
                self.courses()
                    .create_lesson(authed(
                        lpb::CreateLessonRequest {
                            course_id: course.id.clone(),
                            module_id: module.id.clone(),
                            title: format!("L{i}"),
                            r#type: lpb::LessonType::Video as i32,
                            duration_seconds: 300,
                            ..Default::default()
                        },
                        &owner.token,
                    ))
                    .await
                    .unwrap()
                    .into_inner()
                    .lesson
                    .unwrap()
                    .id,
            );
        }
        self.courses()
            .publish_course(authed(
                lpb::PublishCourseRequest {
                    id: course.id.clone(),
                },
                &owner.token,
            ))
            .await
            .unwrap();
        (course.id, ids)
    }

    async fn enroll(&self, student: &Caller, course_id: &str) -> lpb::Enrollment {
        self.enrollments()
            .enroll(authed(
                lpb::EnrollRequest {
                    course_id: course_id.into(),
                },
                &student.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .enrollment
            .unwrap()
    }

    /// The student pays for a pending enrollment; the provider's handler confirms it.
    async fn pay(
        &self,
        student: &Caller,
        teacher: &Caller,
        enrollment: &lpb::Enrollment,
        operator: &Caller,
    ) -> ipb::Payment {
        let payment = self
            .payments()
            .record_payment(authed(
                ipb::RecordPaymentRequest {
                    request_id: format!("checkout-{}", enrollment.id),
                    payer_id: String::new(),
                    instructor_id: teacher.id.to_string(),
                    organization_id: String::new(),
                    amount: Some(ipb::Money {
                        amount_minor: enrollment.price_paid.clone().unwrap().amount_minor,
                        currency: "USD".into(),
                    }),
                    provider: ipb::PaymentProvider::Stripe as i32,
                    r#type: ipb::PaymentType::CourseEnrollment as i32,
                    related_entity_id: enrollment.id.clone(),
                },
                &student.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .payment
            .unwrap();
        self.payments()
            .succeed_payment(authed(
                ipb::SucceedPaymentRequest {
                    id: payment.id.clone(),
                    provider_transaction_id: "ch_1".into(),
                },
                &operator.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .payment
            .unwrap()
    }

    async fn stats(&self, teacher: &Caller) -> ipb::GetDashboardStatsResponse {
        self.dashboard()
            .get_dashboard_stats(authed(
                ipb::GetDashboardStatsRequest {
                    instructor_id: teacher.id.to_string(),
                },
                &teacher.token,
            ))
            .await
            .unwrap()
            .into_inner()
    }
}

fn authed<T>(message: T, token: &str) -> Request<T> {
    with_bearer(Request::new(message), token)
}

#[track_caller]
fn assert_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Ok(value) => panic!("expected {code:?}, got {value:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{status:?}");
            status
        }
    }
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

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
    eventually("three sales", || async {
        app.stats(&teacher)
            .await
            .total_revenue
            .unwrap()
            .amount_minor
            == 3 * 3999
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

    eventually("the review and the completion", || async {
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
        assert_eq!(
            stats.total_revenue.clone().unwrap().amount_minor,
            3 * 3999 - 800
        );
        assert_eq!(
            stats.pending_revenue.clone().unwrap().amount_minor,
            3 * 3999 - 800
        );
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
    assert_eq!(
        (
            sale.transaction_count,
            sale.gross.clone().unwrap().amount_minor
        ),
        (3, 14997)
    );
    assert_eq!(
        sale.platform_fees.clone().unwrap().amount_minor,
        3000,
        "20 % of 4999 rounds half-up to 1000"
    );
    for row in &breakdown {
        let (gross, fees, earnings) = (
            row.gross.clone().unwrap().amount_minor,
            row.platform_fees.clone().unwrap().amount_minor,
            row.instructor_earnings.clone().unwrap().amount_minor,
        );
        assert_eq!(
            fees + earnings,
            gross,
            "fees and earnings reconcile to the minor unit"
        );
    }
    assert_eq!(refunds.gross.clone().unwrap().amount_minor, -1000);

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
    eventually("the marker enrollment", || async {
        app.stats(&teacher).await.total_students == 6
    })
    .await;
    let stats = app.stats(&teacher).await;
    assert_eq!(stats.total_revenue.unwrap().amount_minor, 3 * 3999 - 800);
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
            },
            &operator.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            payout.transaction_count,
            payout.amount.unwrap().amount_minor
        ),
        (4, 3 * 3999 - 800)
    );
    assert_eq!(
        app.stats(&teacher)
            .await
            .pending_revenue
            .unwrap()
            .amount_minor,
        0
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
    // The fees returned add up to the whole fee; earnings likewise.
    let mut conn = app.db.admin_connection().await;
    let (fees, earnings): (i64, i64) = sqlx::query_as(
        "SELECT sum(platform_fee_minor)::bigint, sum(instructor_earnings_minor)::bigint
         FROM instructor.revenue_transactions WHERE payment_id = $1::uuid",
    )
    .bind(&payment.id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((fees, earnings), (-2_000, -8_000));
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
    let (payment, operator) = paid_payment(&app, 5000).await;
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
    let teacher: Uuid = payment.instructor_id.parse().unwrap();
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
        count_as(teacher).await,
        (1, 1),
        "the instructor sees the refund and the payment"
    );
    assert_eq!(
        count_as(Uuid::now_v7()).await,
        (0, 0),
        "another instructor sees nothing"
    );
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

    eventually("Grace's name on the dashboard", || async {
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
