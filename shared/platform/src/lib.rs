//! The platform kit: everything the six services share, written once.
//!
//! - [`config`]: flags with environment fallbacks
//! - [`telemetry`]: logs, OTLP traces and metrics, W3C trace context over gRPC
//! - [`db`]: the pool bound to a service's schema and role, migrations, tenant transactions
//! - [`auth`]: Ed25519 JWT verification, the `Principal`, the tower layer
//! - [`capacity`]: seats, caps, budgets and credits taken and given back exactly once
//! - [`id`]: typed ids, so that two ids of different entities cannot be swapped
//! - [`error`]: domain errors to canonical gRPC codes with field details
//! - [`server`]: health, reflection, limits and graceful shutdown
//! - [`metrics`]: RED metrics per RPC, the Prometheus scrape endpoint
//! - [`convert`]: wire types to domain types, page tokens
//! - [`money`]: currencies and amounts, and their one wire message
//! - [`crypto`]: secrets at rest
//! - [`nats`]: the broker connection
//! - [`events`]: outbox, relay, consumers, dead letters
//! - [`verify`]: reconciliation of derived statistics
//! - [`jobs`]: scheduled jobs run beside the relays and consumers

pub mod auth;
pub mod capacity;
pub mod config;
pub mod convert;
pub mod crypto;
pub mod db;
pub mod enums;
pub mod error;
pub mod events;
pub mod failpoint;
pub mod id;
pub mod jobs;
pub mod metrics;
pub mod money;
pub mod nats;
pub mod runtime;
pub mod server;
pub mod telemetry;
pub mod text;
pub mod verify;

pub use error::{ApiError, FieldViolation, Violations};

/// For [`text_enum!`]'s and [`typed_id!`]'s expansions in the services' crates.
#[doc(hidden)]
pub use sqlx as __sqlx;
/// For [`typed_id!`]'s expansion in the services' crates.
#[doc(hidden)]
pub use uuid as __uuid;
