//! The learning service: courses and their content, co-teaching, enrollments, lesson and
//! student progress, reviews; workshops, their facilitators, registrations (seats from the
//! kit's capacity pools), attendance and feedback; certificates and their public
//! verification; the resource library (articles, videos and templates with access levels);
//! adaptability assessments, their scores and the organizations' monthly trend.
//!
//! Rooms: `api` (gRPC handlers), `domain` (types and rules), `store` (SQL), `events`
//! (what it publishes and the payment events it consumes), `jobs` (reconciliation, the
//! expiry of payment holds).

pub mod api;
pub mod domain;
pub mod events;
pub mod jobs;
pub mod store;

use std::sync::Arc;

use async_trait::async_trait;
use lyceum_platform::db::{Database, ServiceSchema};
use lyceum_platform::events::consumer::{ConsumerSpec, EventHandler};
use lyceum_platform::server::{ServerLimits, ServiceModule};
use lyceum_platform::verify::Reconciliation;
use lyceum_proto::learning::v1::assessment_service_server::AssessmentServiceServer;
use lyceum_proto::learning::v1::certificate_service_server::CertificateServiceServer;
use lyceum_proto::learning::v1::course_service_server::CourseServiceServer;
use lyceum_proto::learning::v1::enrollment_service_server::EnrollmentServiceServer;
use lyceum_proto::learning::v1::resource_service_server::ResourceServiceServer;
use lyceum_proto::learning::v1::review_service_server::ReviewServiceServer;
use lyceum_proto::learning::v1::workshop_service_server::WorkshopServiceServer;
use tonic::service::RoutesBuilder;

pub use api::{Clock, LearningApi};

/// The learning schema and its migrations.
pub const SCHEMA: ServiceSchema = lyceum_schema::LEARNING;

pub const GRPC_SERVICES: [&str; 7] = [
    "lyceum.learning.v1.CourseService",
    "lyceum.learning.v1.EnrollmentService",
    "lyceum.learning.v1.ReviewService",
    "lyceum.learning.v1.WorkshopService",
    "lyceum.learning.v1.CertificateService",
    "lyceum.learning.v1.ResourceService",
    "lyceum.learning.v1.AssessmentService",
];

pub struct LearningModule {
    db: Database,
    api: LearningApi,
}

impl LearningModule {
    pub fn new(db: Database) -> Self {
        Self {
            api: LearningApi::new(db.clone()),
            db,
        }
    }

    /// With the time the rules read from `clock` (tests move it instead of waiting).
    pub fn with_clock(db: Database, clock: Clock) -> Self {
        Self {
            api: LearningApi::with_clock(db.clone(), clock),
            db,
        }
    }
}

#[async_trait]
impl ServiceModule for LearningModule {
    fn name(&self) -> &'static str {
        "learning"
    }

    fn grpc_service_names(&self) -> Vec<&'static str> {
        GRPC_SERVICES.to_vec()
    }

    fn add_routes(&self, routes: &mut RoutesBuilder, limits: &ServerLimits) {
        let max = limits.max_message_bytes;
        routes.add_service(
            CourseServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        routes.add_service(
            EnrollmentServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        routes.add_service(
            ReviewServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        routes.add_service(
            WorkshopServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        routes.add_service(
            CertificateServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        routes.add_service(
            ResourceServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        routes.add_service(
            AssessmentServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
    }

    fn database(&self) -> &Database {
        &self.db
    }

    fn consumers(&self) -> Vec<(ConsumerSpec, Arc<dyn EventHandler>)> {
        vec![
            (
                events::payments::consumer_spec(),
                Arc::new(events::payments::PaymentEvents),
            ),
            (
                events::certificates::consumer_spec(),
                Arc::new(events::certificates::CertificateEvents),
            ),
            (
                events::certificates::directory_spec(),
                Arc::new(events::certificates::UserEvents),
            ),
        ]
    }

    fn reconciliations(&self) -> Vec<Box<dyn Reconciliation>> {
        vec![
            Box::new(jobs::course_statistics::CourseStatistics),
            Box::new(jobs::workshop_statistics::WorkshopStatistics),
            Box::new(jobs::assessment_scores::AssessmentScores),
        ]
    }

    fn scheduled_jobs(&self) -> Vec<Arc<dyn lyceum_platform::jobs::ScheduledJob>> {
        vec![Arc::new(jobs::workshop_holds::WorkshopHolds)]
    }
}
