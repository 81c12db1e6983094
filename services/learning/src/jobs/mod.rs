//! Work that runs beside the RPCs: reconciliation of the statistics learning keeps, and
//! the expiry of seats held for payments that did not come.

pub mod assessment_scores;
pub mod course_statistics;
pub mod workshop_holds;
pub mod workshop_statistics;
