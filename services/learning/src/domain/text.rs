pub use lyceum_platform::text::BoundedText;

/// A list of short texts (tags, outcomes): at most `MAX_ITEMS`, each 1–100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextList<const MAX_ITEMS: usize>(Vec<String>);

impl<const MAX_ITEMS: usize> TextList<MAX_ITEMS> {
    pub fn parse(raw: &[String]) -> Result<Self, String> {
        if raw.len() > MAX_ITEMS {
            return Err(format!("must have at most {MAX_ITEMS} items"));
        }
        let mut items = Vec::with_capacity(raw.len());
        for item in raw {
            let item = item.trim();
            if item.is_empty() || item.chars().count() > 100 {
                return Err("items must be 1 to 100 characters".into());
            }
            if !items.iter().any(|existing: &String| existing == item) {
                items.push(item.to_owned());
            }
        }
        Ok(Self(items))
    }

    pub fn into_inner(self) -> Vec<String> {
        self.0
    }
}

/// A rating from 1 to 5 stars.
pub type Rating = i32;

pub fn parse_rating(raw: i32) -> Result<Rating, String> {
    if (1..=5).contains(&raw) {
        Ok(raw)
    } else {
        Err("must be from 1 to 5".into())
    }
}

/// A breakdown rating: 0 means not given.
pub fn parse_optional_rating(raw: i32) -> Result<Option<Rating>, String> {
    match raw {
        0 => Ok(None),
        n => parse_rating(n).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_are_one_to_five() {
        assert!(parse_rating(6).is_err());
        assert!(parse_rating(0).is_err());
        assert_eq!(parse_optional_rating(0), Ok(None));
        assert_eq!(parse_optional_rating(4), Ok(Some(4)));
    }

    #[test]
    fn text_lists_are_bounded_and_deduplicated() {
        let tags = TextList::<3>::parse(&["rust".into(), " rust ".into(), "sql".into()]).unwrap();
        assert_eq!(tags.into_inner(), vec!["rust", "sql"]);
        assert!(TextList::<1>::parse(&["a".into(), "b".into()]).is_err());
        assert!(TextList::<3>::parse(&["".into()]).is_err());
    }
}
