//! Instructor revenue: payments and refunds, revenue transactions, and the projections
//! of learning's and identity's events that the instructor dashboards read.
//!
//! Rooms: `api` (gRPC handlers), `domain` (statuses, fee arithmetic), `store` (SQL),
//! `events` (payment events published; learning and identity events consumed).

pub mod api;
pub mod domain;
pub mod events;
pub mod jobs;
pub mod store;

use std::sync::Arc;

use async_trait::async_trait;
use lyceum_platform::crypto::SecretBox;
use lyceum_platform::db::{Database, ServiceSchema};
use lyceum_platform::events::consumer::{ConsumerSpec, EventHandler};
use lyceum_platform::server::{ServerLimits, ServiceModule};
use lyceum_platform::verify::Reconciliation;
use lyceum_proto::instructor::v1::dashboard_service_server::DashboardServiceServer;
use lyceum_proto::instructor::v1::payment_service_server::PaymentServiceServer;
use lyceum_proto::instructor::v1::profile_service_server::ProfileServiceServer;
use lyceum_proto::instructor::v1::revenue_service_server::RevenueServiceServer;
use lyceum_proto::instructor::v1::settings_service_server::SettingsServiceServer;
use tonic::service::RoutesBuilder;

pub use api::InstructorApi;

pub const SCHEMA: ServiceSchema = lyceum_schema::INSTRUCTOR;

pub const GRPC_SERVICES: [&str; 5] = [
    "lyceum.instructor.v1.PaymentService",
    "lyceum.instructor.v1.RevenueService",
    "lyceum.instructor.v1.DashboardService",
    "lyceum.instructor.v1.ProfileService",
    "lyceum.instructor.v1.SettingsService",
];

pub struct InstructorModule {
    db: Database,
    api: InstructorApi,
}

impl InstructorModule {
    pub fn new(db: Database, sealer: SecretBox) -> Self {
        Self {
            api: InstructorApi::new(db.clone(), sealer),
            db,
        }
    }
}

#[async_trait]
impl ServiceModule for InstructorModule {
    fn name(&self) -> &'static str {
        "instructor"
    }

    fn grpc_service_names(&self) -> Vec<&'static str> {
        GRPC_SERVICES.to_vec()
    }

    fn add_routes(&self, routes: &mut RoutesBuilder, limits: &ServerLimits) {
        let max = limits.max_message_bytes;
        routes.add_service(
            PaymentServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        routes.add_service(
            RevenueServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        routes.add_service(
            DashboardServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        routes.add_service(
            ProfileServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        routes.add_service(
            SettingsServiceServer::new(self.api.clone())
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
                events::learning::consumer_spec(),
                Arc::new(events::learning::LearningEvents),
            ),
            (
                events::identity::consumer_spec(),
                Arc::new(events::identity::UserEvents),
            ),
        ]
    }

    fn reconciliations(&self) -> Vec<Box<dyn Reconciliation>> {
        vec![
            Box::new(jobs::payment_totals::PaymentTotals),
            Box::new(jobs::instructor_stats::InstructorStats),
        ]
    }
}
