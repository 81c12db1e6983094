//! Operator-run work: reconciliation of the totals this service keeps.

pub mod payment_totals;
