//! Operator-run work: reconciliation of the totals this service keeps.

pub mod instructor_stats;
pub mod payment_totals;
