//! Free-text values that cannot be invalid once constructed: every service's names,
//! titles and descriptions go through [`BoundedText`].

/// Trimmed text with a maximum length in characters; `REQUIRED` rejects blank values.
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
        // PostgreSQL text cannot hold NUL; other control characters (but line breaks and
        // tabs) have no place in names and descriptions either.
        if trimmed
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err("must not contain control characters".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_bounded_and_required_when_asked() {
        assert_eq!(
            BoundedText::<5, true>::parse("  abc ").unwrap().as_str(),
            "abc"
        );
        assert!(BoundedText::<5, true>::parse("   ").is_err());
        assert!(BoundedText::<5, false>::parse("").is_ok());
        assert!(BoundedText::<2, false>::parse("äöü").is_err());
    }
}
