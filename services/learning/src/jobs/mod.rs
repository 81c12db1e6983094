//! Scheduled and operator-run work: the reconciliation of course statistics.

pub mod course_statistics;
