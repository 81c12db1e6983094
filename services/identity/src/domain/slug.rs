/// A URL-friendly identifier: lowercase letters and digits in dash-separated words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub const MAX_LEN: usize = 63;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("is required".into());
        }
        if raw.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        let well_formed = raw.split('-').all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
        if !well_formed {
            return Err("must be lowercase letters and digits separated by single dashes".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_dashed_words() {
        assert!(Slug::parse("acme-corp-2").is_ok());
        for bad in [
            "",
            "Acme",
            "acme--corp",
            "-acme",
            "acme_corp",
            &"a".repeat(64),
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
