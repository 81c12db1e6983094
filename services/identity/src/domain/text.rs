/// Free text with a maximum length in characters; `REQUIRED` rejects blank values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundedText<const MAX: usize, const REQUIRED: bool>(String);

impl<const MAX: usize, const REQUIRED: bool> BoundedText<MAX, REQUIRED> {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if REQUIRED && trimmed.is_empty() {
            return Err("is required".into());
        }
        if trimmed.chars().count() > MAX {
            return Err(format!("must be at most {MAX} characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

pub type Name = BoundedText<200, true>;
pub type OptionalName = BoundedText<200, false>;
