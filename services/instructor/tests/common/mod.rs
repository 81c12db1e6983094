//! The stack the instructor suites run against: identity, learning and instructor in one
//! process on the real PostgreSQL and NATS, with callers, and helpers that drive learning
//! and payments as a client would. Each suite uses part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use lyceum_instructor::InstructorModule;
use lyceum_learning::LearningModule;
use lyceum_platform::auth::{GrantedRole, PrincipalKind, TokenSigner, TokenVerifier};
use lyceum_platform::config::DEVELOPMENT_DATA_KEY;
use lyceum_platform::crypto::SecretBox;
use lyceum_platform::db::Database;
use lyceum_platform::events::EventBus;
use lyceum_proto::instructor::v1 as ipb;
use lyceum_proto::instructor::v1::dashboard_service_client::DashboardServiceClient;
use lyceum_proto::instructor::v1::payment_service_client::PaymentServiceClient;
use lyceum_proto::instructor::v1::revenue_service_client::RevenueServiceClient;
use lyceum_proto::learning::v1 as lpb;
use lyceum_proto::learning::v1::course_service_client::CourseServiceClient;
use lyceum_proto::learning::v1::enrollment_service_client::EnrollmentServiceClient;
use lyceum_testkit::{
    RunningServer, TestDatabase, authed, eventually_within, fresh_claims, test_bus,
};
use tonic::Status;
use tonic::transport::Channel;
use uuid::Uuid;

pub struct App {
    pub db: TestDatabase,
    pub learning: Database,
    pub instructor: Database,
    pub bus: EventBus,
    pub server: Option<RunningServer>,
    pub signer: TokenSigner,
    pub modules_db: (Database, Database, Database),
}

#[derive(Clone)]
pub struct Caller {
    pub id: Uuid,
    pub token: String,
}

impl App {
    pub async fn spawn() -> Self {
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
        let signer = db.identity_signer(&sealer).await;
        let mut app = Self {
            db,
            learning: learning.clone(),
            instructor: instructor.clone(),
            bus: test_bus().await,
            server: None,
            signer,
            modules_db: (identity, learning, instructor),
        };
        app.start().await;
        app
    }

    /// Starts (or restarts) learning and instructor with their relays and consumers.
    pub async fn start(&mut self) {
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

    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.start().await;
    }

    pub fn mint(&self, kind: PrincipalKind, roles: &[&str]) -> Caller {
        let roles = roles
            .iter()
            .map(|r| GrantedRole {
                role: (*r).into(),
                org: None,
            })
            .collect();
        // Service accounts here stand for the payment provider's handler and the payout job.
        let scopes = match kind {
            PrincipalKind::Service => vec![
                lyceum_platform::auth::scopes::PAYMENTS_WRITE.into(),
                lyceum_platform::auth::scopes::PAYOUTS_WRITE.into(),
            ],
            PrincipalKind::User => vec![],
        };
        let claims = fresh_claims(kind, None, roles, scopes);
        Caller {
            id: claims.sub,
            token: self.signer.sign(&claims),
        }
    }

    pub fn user(&self, roles: &[&str]) -> Caller {
        self.mint(PrincipalKind::User, roles)
    }

    pub fn channel(&self) -> Channel {
        self.server.as_ref().unwrap().channel.clone()
    }

    pub fn payments(&self) -> PaymentServiceClient<Channel> {
        PaymentServiceClient::new(self.channel())
    }

    pub fn dashboard(&self) -> DashboardServiceClient<Channel> {
        DashboardServiceClient::new(self.channel())
    }

    pub fn revenue(&self) -> RevenueServiceClient<Channel> {
        RevenueServiceClient::new(self.channel())
    }

    pub fn courses(&self) -> CourseServiceClient<Channel> {
        CourseServiceClient::new(self.channel())
    }

    pub fn enrollments(&self) -> EnrollmentServiceClient<Channel> {
        EnrollmentServiceClient::new(self.channel())
    }

    pub async fn course(
        &self,
        owner: &Caller,
        title: &str,
        price: i64,
        lessons: usize,
    ) -> (String, Vec<String>) {
        self.course_in(owner, title, price, "USD", lessons).await
    }

    pub async fn course_in(
        &self,
        owner: &Caller,
        title: &str,
        price: i64,
        currency: &str,
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
                            currency: currency.into(),
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

    pub async fn enroll(&self, student: &Caller, course_id: &str) -> lpb::Enrollment {
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
    pub async fn pay(
        &self,
        student: &Caller,
        teacher: &Caller,
        enrollment: &lpb::Enrollment,
        operator: &Caller,
    ) -> ipb::Payment {
        self.pay_naming(student, teacher.id, enrollment, operator)
            .await
    }

    /// Like [`App::pay`], with the instructor the payer's request names.
    pub async fn pay_naming(
        &self,
        student: &Caller,
        named_instructor: Uuid,
        enrollment: &lpb::Enrollment,
        operator: &Caller,
    ) -> ipb::Payment {
        let price = enrollment.price_paid.clone().unwrap();
        let payment = self
            .payments()
            .record_payment(authed(
                ipb::RecordPaymentRequest {
                    request_id: format!("checkout-{}", enrollment.id),
                    payer_id: String::new(),
                    instructor_id: named_instructor.to_string(),
                    organization_id: String::new(),
                    amount: Some(ipb::Money {
                        amount_minor: price.amount_minor,
                        currency: price.currency,
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

    pub async fn stats(&self, teacher: &Caller) -> ipb::GetDashboardStatsResponse {
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

/// The amount in `currency` of a per-currency figure (none: no entry for it).
pub fn amount_in(figure: &[ipb::Money], currency: &str) -> Option<i64> {
    figure
        .iter()
        .find(|m| m.currency == currency)
        .map(|m| m.amount_minor)
}

pub fn usd(figure: &[ipb::Money]) -> i64 {
    amount_in(figure, "USD").unwrap_or(0)
}

/// How long the events behind a dashboard may take to arrive.
pub const SETTLE: Duration = Duration::from_secs(30);

impl App {
    /// Every envelope learning has published so far, in publication order.
    pub async fn learning_events(&self) -> Vec<lyceum_proto::events::v1::EventEnvelope> {
        use prost::Message as _;
        let mut conn = self.db.admin_connection().await;
        let rows: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT envelope FROM learning.outbox ORDER BY id")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        rows.iter()
            .map(|bytes| lyceum_proto::events::v1::EventEnvelope::decode(bytes.as_slice()).unwrap())
            .collect()
    }

    /// Waits until instructor has applied every event learning published.
    pub async fn learning_events_applied(&self) {
        eventually_within("instructor to apply learning's events", SETTLE, || async {
            let mut conn = self.db.admin_connection().await;
            let missing: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM learning.outbox o WHERE NOT EXISTS (
                   SELECT 1 FROM instructor.inbox i
                   WHERE i.consumer = 'instructor-learning' AND i.event_id = o.id)",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap();
            missing == 0
        })
        .await;
    }

    /// Feeds envelopes to instructor's real handler of learning's events, one transaction
    /// each, in the given order.
    pub async fn feed_learning_events(
        &self,
        envelopes: &[lyceum_proto::events::v1::EventEnvelope],
    ) {
        use lyceum_platform::events::consumer::EventHandler as _;
        for envelope in envelopes {
            // As the consumer runs its handlers.
            let mut tx = self.instructor.begin_system("test consumer").await.unwrap();
            lyceum_instructor::events::learning::LearningEvents
                .handle(&mut tx, envelope)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    }

    pub async fn payout(
        &self,
        caller: &Caller,
        instructor: &Caller,
        request_id: &str,
        currency: &str,
    ) -> Result<ipb::Payout, Status> {
        self.revenue()
            .create_payout(authed(
                ipb::CreatePayoutRequest {
                    instructor_id: instructor.id.to_string(),
                    request_id: request_id.into(),
                    currency: currency.into(),
                },
                &caller.token,
            ))
            .await
            .map(|r| r.into_inner().payout.unwrap())
    }
}

pub fn money(amount_minor: i64, currency: &str) -> ipb::Money {
    ipb::Money {
        amount_minor,
        currency: currency.into(),
    }
}

impl App {
    pub fn admin(&self) -> Caller {
        self.user(&["user", "admin"])
    }

    pub async fn set_fee(&self, instructor: Option<Uuid>, percent: f64) {
        self.revenue()
            .set_fee_percentage(authed(
                ipb::SetFeePercentageRequest {
                    instructor_id: instructor.map(|i| i.to_string()).unwrap_or_default(),
                    fee_percentage: percent,
                },
                &self.admin().token,
            ))
            .await
            .unwrap();
    }

    /// (instructor, type, amount, fee bps, fee, earnings) of each booked transaction of a
    /// payment, sales first.
    pub async fn booked(&self, payment_id: &str) -> Vec<(Uuid, String, i64, i32, i64, i64)> {
        let mut conn = self.db.admin_connection().await;
        sqlx::query_as(
            "SELECT instructor_id, transaction_type, amount_minor, fee_bps, platform_fee_minor,
                    instructor_earnings_minor
             FROM instructor.revenue_transactions WHERE payment_id = $1::uuid
             ORDER BY amount_minor DESC",
        )
        .bind(payment_id)
        .fetch_all(&mut conn)
        .await
        .unwrap()
    }

    pub async fn activations(&self) -> Vec<lyceum_proto::events::v1::EventEnvelope> {
        self.learning_events()
            .await
            .into_iter()
            .filter(|e| e.event_type == "lyceum.learning.enrollment.activated")
            .collect()
    }
}
