//! Identity and learning served in one process against a fresh database; tokens minted
//! with identity's real signing key for as many users as a test needs.

#![allow(dead_code)]

use std::sync::Arc;

use lyceum_identity::{IdentityModule, TokenLifetimes};
use lyceum_learning::LearningModule;
use lyceum_platform::auth::{GrantedRole, PrincipalKind, TokenSigner, TokenVerifier};
use lyceum_platform::config::DEVELOPMENT_DATA_KEY;
use lyceum_platform::crypto::SecretBox;
use lyceum_platform::db::Database;
use lyceum_platform::events::EventBus;
use lyceum_proto::learning::v1 as pb;
use lyceum_proto::learning::v1::assessment_service_client::AssessmentServiceClient;
use lyceum_proto::learning::v1::course_service_client::CourseServiceClient;
use lyceum_proto::learning::v1::enrollment_service_client::EnrollmentServiceClient;
use lyceum_proto::learning::v1::review_service_client::ReviewServiceClient;
use lyceum_proto::learning::v1::workshop_service_client::WorkshopServiceClient;
use lyceum_testkit::{RunningServer, TestDatabase, authed, fresh_claims, test_bus};
use prost::Message;
use tonic::Status;
use tonic::transport::Channel;
use uuid::Uuid;

pub struct TestApp {
    pub db: TestDatabase,
    pub learning: Database,
    pub bus: EventBus,
    pub server: RunningServer,
    signer: TokenSigner,
}

/// A caller: a user id, their organization and a token carrying their roles.
#[derive(Clone)]
pub struct User {
    pub id: Uuid,
    pub org: Option<Uuid>,
    pub token: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with_clock(Arc::new(chrono::Utc::now)).await
    }

    /// With learning reading the time from `clock`, which the test moves.
    pub async fn spawn_with_clock(clock: lyceum_learning::Clock) -> Self {
        let db = TestDatabase::create().await;
        db.migrate(&lyceum_identity::SCHEMA).await;
        db.migrate(&lyceum_learning::SCHEMA).await;
        let identity_db = db.service_database(&lyceum_identity::SCHEMA).await;
        let learning = db.service_database(&lyceum_learning::SCHEMA).await;
        let sealer = SecretBox::from_base64(DEVELOPMENT_DATA_KEY).unwrap();
        let identity = IdentityModule::start(
            identity_db.clone(),
            sealer.clone(),
            TokenLifetimes::default(),
        )
        .await
        .unwrap();
        // Learning verifies signatures only, as it does when it runs apart from identity.
        let verifier = Arc::new(TokenVerifier::new(Arc::new(
            lyceum_identity::store::signing_keys::DbKeySource::new(identity_db),
        )));
        let bus = test_bus().await;
        let server = RunningServer::start(
            vec![
                Arc::new(identity),
                Arc::new(LearningModule::with_clock(learning.clone(), clock)),
            ],
            verifier,
            bus.clone(),
        )
        .await;
        let signer = db.identity_signer(&sealer).await;
        Self {
            db,
            learning,
            bus,
            server,
            signer,
        }
    }

    /// A user with the given roles (each `(role, scoped to their org?)`).
    pub fn user(&self, org: Option<Uuid>, roles: &[(&str, bool)]) -> User {
        let roles = roles
            .iter()
            .map(|(role, scoped)| GrantedRole {
                role: (*role).into(),
                org: if *scoped { org } else { None },
            })
            .collect();
        let claims = fresh_claims(PrincipalKind::User, org, roles, vec![]);
        User {
            id: claims.sub,
            org,
            token: self.signer.sign(&claims),
        }
    }

    pub fn instructor(&self, org: Option<Uuid>) -> User {
        self.user(org, &[("user", false), ("instructor", false)])
    }

    pub fn student(&self, org: Option<Uuid>) -> User {
        self.user(org, &[("user", false)])
    }

    pub fn org_admin(&self, org: Uuid) -> User {
        self.user(Some(org), &[("user", false), ("org_admin", true)])
    }

    pub fn courses(&self) -> CourseServiceClient<Channel> {
        CourseServiceClient::new(self.server.channel.clone())
    }

    pub fn enrollments(&self) -> EnrollmentServiceClient<Channel> {
        EnrollmentServiceClient::new(self.server.channel.clone())
    }

    pub fn reviews(&self) -> ReviewServiceClient<Channel> {
        ReviewServiceClient::new(self.server.channel.clone())
    }

    pub fn workshops(&self) -> WorkshopServiceClient<Channel> {
        WorkshopServiceClient::new(self.server.channel.clone())
    }

    pub fn assessments(&self) -> AssessmentServiceClient<Channel> {
        AssessmentServiceClient::new(self.server.channel.clone())
    }

    pub fn platform_admin(&self) -> User {
        self.user(None, &[("user", false), ("admin", false)])
    }

    /// A draft workshop of `owner` with the given capacity and price (USD), starting in
    /// `starts_in` and lasting two hours.
    pub async fn create_workshop(
        &self,
        owner: &User,
        capacity: i32,
        price_minor: i64,
        starts_in: chrono::Duration,
    ) -> pb::Workshop {
        let spec = workshop_spec(owner, capacity, price_minor, starts_in);
        self.workshops()
            .create_workshop(authed(
                pb::CreateWorkshopRequest {
                    workshop: Some(spec),
                },
                &owner.token,
            ))
            .await
            .expect("create workshop")
            .into_inner()
            .workshop
            .unwrap()
    }

    /// A published workshop starting in a week.
    pub async fn published_workshop(
        &self,
        owner: &User,
        capacity: i32,
        price_minor: i64,
    ) -> pb::Workshop {
        self.published_workshop_starting(owner, capacity, price_minor, chrono::Duration::days(7))
            .await
    }

    pub async fn published_workshop_starting(
        &self,
        owner: &User,
        capacity: i32,
        price_minor: i64,
        starts_in: chrono::Duration,
    ) -> pb::Workshop {
        let draft = self
            .create_workshop(owner, capacity, price_minor, starts_in)
            .await;
        self.workshops()
            .publish_workshop(authed(
                pb::PublishWorkshopRequest { id: draft.id },
                &owner.token,
            ))
            .await
            .expect("publish workshop")
            .into_inner()
            .workshop
            .unwrap()
    }

    pub async fn register(
        &self,
        user: &User,
        workshop_id: &str,
        request_id: &str,
    ) -> Result<pb::Registration, Status> {
        self.workshops()
            .register(authed(
                pb::RegisterRequest {
                    workshop_id: workshop_id.into(),
                    request_id: request_id.into(),
                },
                &user.token,
            ))
            .await
            .map(|r| r.into_inner().registration.unwrap())
    }

    pub async fn cancel_registration(
        &self,
        user: &User,
        registration_id: &str,
    ) -> Result<pb::Registration, Status> {
        self.workshops()
            .cancel_registration(authed(
                pb::CancelRegistrationRequest {
                    id: registration_id.into(),
                },
                &user.token,
            ))
            .await
            .map(|r| r.into_inner().registration.unwrap())
    }

    pub async fn workshop(&self, viewer: &User, id: &str) -> pb::Workshop {
        self.workshops()
            .get_workshop(authed(
                pb::GetWorkshopRequest { id: id.into() },
                &viewer.token,
            ))
            .await
            .expect("get workshop")
            .into_inner()
            .workshop
            .unwrap()
    }

    pub async fn registration(&self, viewer: &User, id: &str) -> pb::Registration {
        self.workshops()
            .get_registration(authed(
                pb::GetRegistrationRequest { id: id.into() },
                &viewer.token,
            ))
            .await
            .expect("get registration")
            .into_inner()
            .registration
            .unwrap()
    }

    /// The workshop registration events learning has written to its outbox, in order.
    pub async fn registration_events(
        &self,
    ) -> Vec<(
        String,
        lyceum_proto::events::v1::WorkshopRegistrationChanged,
    )> {
        use lyceum_proto::events::v1::EventEnvelope;
        let mut conn = self.db.admin_connection().await;
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT subject, envelope FROM learning.outbox
             WHERE subject LIKE 'learning.workshop_registration.%' ORDER BY id",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        rows.into_iter()
            .map(|(subject, bytes)| {
                let envelope = EventEnvelope::decode(bytes.as_slice()).unwrap();
                let payload = envelope.payload.unwrap().to_msg().unwrap();
                (subject, payload)
            })
            .collect()
    }

    /// A published course with `lessons` lessons in one module; returns it and the lesson ids.
    pub async fn published_course(
        &self,
        owner: &User,
        price_minor: i64,
        lessons: usize,
    ) -> (pb::Course, Vec<String>) {
        let course = self
            .draft_course(owner, "Rust for services", price_minor)
            .await;
        let lesson_ids = self.add_lessons(owner, &course.id, lessons).await;
        let course = self
            .courses()
            .publish_course(authed(
                pb::PublishCourseRequest {
                    id: course.id.clone(),
                },
                &owner.token,
            ))
            .await
            .expect("publish")
            .into_inner()
            .course
            .unwrap();
        (course, lesson_ids)
    }

    pub async fn draft_course(&self, owner: &User, title: &str, price_minor: i64) -> pb::Course {
        let course = pb::Course {
            title: title.into(),
            description: "Build production services with tonic and sqlx".into(),
            category: "engineering".into(),
            tags: vec!["rust".into(), "backend".into()],
            price: Some(pb::Money {
                amount_minor: price_minor,
                currency: "USD".into(),
            }),
            organization_id: owner.org.map(|o| o.to_string()).unwrap_or_default(),
            ..Default::default()
        };
        self.courses()
            .create_course(authed(
                pb::CreateCourseRequest {
                    course: Some(course),
                },
                &owner.token,
            ))
            .await
            .expect("create course")
            .into_inner()
            .course
            .unwrap()
    }

    pub async fn add_lessons(&self, owner: &User, course_id: &str, count: usize) -> Vec<String> {
        let module = self
            .courses()
            .create_module(authed(
                pb::CreateModuleRequest {
                    course_id: course_id.into(),
                    title: "Basics".into(),
                    description: String::new(),
                },
                &owner.token,
            ))
            .await
            .expect("create module")
            .into_inner()
            .module
            .unwrap();
        let mut ids = Vec::new();
        for i in 0..count {
            let lesson = self
                .courses()
                .create_lesson(authed(
                    pb::CreateLessonRequest {
                        course_id: course_id.into(),
                        module_id: module.id.clone(),
                        title: format!("Lesson {i}"),
                        r#type: if i == 0 {
                            pb::LessonType::Quiz as i32
                        } else {
                            pb::LessonType::Video as i32
                        },
                        duration_seconds: 600,
                        body: format!("The body of lesson {i}"),
                        ..Default::default()
                    },
                    &owner.token,
                ))
                .await
                .expect("create lesson")
                .into_inner()
                .lesson
                .unwrap();
            ids.push(lesson.id);
        }
        ids
    }

    pub async fn enroll(&self, student: &User, course_id: &str) -> pb::Enrollment {
        self.enrollments()
            .enroll(authed(
                pb::EnrollRequest {
                    course_id: course_id.into(),
                },
                &student.token,
            ))
            .await
            .expect("enroll")
            .into_inner()
            .enrollment
            .unwrap()
    }

    /// Completes every lesson of the course for the enrollment.
    pub async fn complete(
        &self,
        student: &User,
        enrollment_id: &str,
        lessons: &[String],
    ) -> pb::RecordLessonProgressResponse {
        let mut last = None;
        for lesson in lessons {
            last = Some(
                self.enrollments()
                    .record_lesson_progress(authed(
                        pb::RecordLessonProgressRequest {
                            enrollment_id: enrollment_id.into(),
                            lesson_id: lesson.clone(),
                            status: pb::LessonProgressStatus::Completed as i32,
                            progress_percent: 100,
                            watch_time_seconds: 600,
                            quiz_score: None,
                        },
                        &student.token,
                    ))
                    .await
                    .expect("record progress")
                    .into_inner(),
            );
        }
        last.expect("at least one lesson")
    }

    pub async fn course(&self, viewer: &User, id: &str) -> Result<pb::Course, Status> {
        self.courses()
            .get_course(authed(
                pb::GetCourseRequest { id: id.into() },
                &viewer.token,
            ))
            .await
            .map(|r| r.into_inner().course.unwrap())
    }

    /// Events learning has written to its outbox, by subject.
    pub async fn outbox_subjects(&self) -> Vec<String> {
        let mut conn = self.db.admin_connection().await;
        sqlx::query_scalar("SELECT subject FROM learning.outbox ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap()
    }

    /// Publishes an instructor-service payment event the way that service's relay would.
    pub async fn publish_payment_event<M: prost::Name>(&self, verb: &str, payload: &M) {
        use lyceum_proto::events::v1::EventEnvelope;
        self.bus.ensure_stream("instructor").await.unwrap();
        let id = Uuid::now_v7();
        let envelope = EventEnvelope {
            event_id: id.to_string(),
            event_type: format!("lyceum.instructor.payment.{verb}"),
            source_service: "instructor".into(),
            payload: Some(prost_types::Any::from_msg(payload).unwrap()),
            ..Default::default()
        };
        let message = async_nats::jetstream::message::PublishMessage::build()
            .message_id(id.to_string())
            .payload(envelope.encode_to_vec().into());
        self.bus
            .jetstream()
            .send_publish(
                self.bus.subject(&format!("instructor.payment.{verb}")),
                message,
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

/// A workshop's fields for CreateWorkshop: capacity and price (USD) as given.
pub fn workshop_spec(
    owner: &User,
    capacity: i32,
    price_minor: i64,
    starts_in: chrono::Duration,
) -> pb::Workshop {
    let start = chrono::Utc::now() + starts_in;
    pb::Workshop {
        title: "Leading through change".into(),
        description: "A hands-on workshop on adaptability for team leads".into(),
        pillar: pb::Pillar::Adaptability as i32,
        level: pb::WorkshopLevel::Intermediate as i32,
        format: pb::WorkshopFormat::Online as i32,
        start_time: Some(lyceum_platform::convert::timestamp(start)),
        end_time: Some(lyceum_platform::convert::timestamp(
            start + chrono::Duration::hours(2),
        )),
        time_zone: "Europe/Berlin".into(),
        meeting_url: "https://meet.example.com/change".into(),
        capacity,
        price: Some(pb::Money {
            amount_minor: price_minor,
            currency: "USD".into(),
        }),
        outcomes: vec!["Lead a team through a reorganisation".into()],
        tags: vec!["leadership".into(), "change".into()],
        organization_id: owner.org.map(|o| o.to_string()).unwrap_or_default(),
        ..Default::default()
    }
}
