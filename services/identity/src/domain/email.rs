use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// An email address as users typed it (case preserved); uniqueness ignores case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
        .expect("valid regex")
});

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("is required".into());
        }
        if trimmed.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        if !EMAIL.is_match(trimmed) {
            return Err("is not a valid email address".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_rejects_the_rest() {
        assert!(Email::parse("Ada.Lovelace+test@Example.org").is_ok());
        for bad in [
            "",
            "plain",
            "a@b",
            "@example.org",
            "a b@example.org",
            "a@-x.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(Email::parse(&format!("{}@example.org", "a".repeat(250))).is_err());
    }
}
