//! SQL of the instructor schema, one module per aggregate.

pub mod dashboard;
pub mod payments;
pub mod payouts;
pub mod profiles;
pub mod projections;
pub mod revenue;
pub mod statistics;
pub mod workshops;

pub type Tx = lyceum_platform::db::Tx;
