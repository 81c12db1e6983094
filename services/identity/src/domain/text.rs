pub use lyceum_platform::text::BoundedText;

pub type Name = BoundedText<200, true>;
pub type OptionalName = BoundedText<200, false>;
