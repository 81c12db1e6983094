//! Learning's types and pure rules, one module per aggregate: course, access, enrollment,
//! progress, review, workshop and assessment, with the statuses and text they are made of
//! (money is the kit's). Nothing here touches the database; the API loads, calls these to
//! decide, then saves.

pub mod access;
pub mod assessment;
pub mod certificate;
pub mod course;
pub mod drip;
pub mod enrollment;
mod ids;
mod kinds;
pub mod progress;
pub mod resource;
pub mod review;
mod text;
pub mod workshop;

pub use ids::{
    CertificateId, CourseId, EnrollmentId, LessonId, ModuleId, OrganizationId, PaymentId,
    RegistrationId, ResourceId, ReviewId, UserId, WorkshopId,
};
pub use kinds::*;
pub use lyceum_platform::money::{Currency, Money};
pub use progress::{ProgressTotals, QUIZ_PASS_MARK, engagement_score, progress_percentage};
pub use text::{BoundedText, Rating, TextList, parse_optional_rating, parse_rating};
