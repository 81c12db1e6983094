//! When an access token expires.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// An access token lives for `lifetime` from `now`, and ends no later than the first of
/// the grants it carries does (`None`: a grant that never expires).
pub fn access_token_expiry(
    now: DateTime<Utc>,
    lifetime: Duration,
    grant_expiries: impl IntoIterator<Item = Option<DateTime<Utc>>>,
) -> DateTime<Utc> {
    let lifetime_end = now + lifetime;
    grant_expiries
        .into_iter()
        .flatten()
        .min()
        .map_or(lifetime_end, |first| first.min(lifetime_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_ends_with_its_lifetime_or_its_first_expiring_grant() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let ten_minutes = Duration::from_secs(600);
        let end = now + ten_minutes;
        let soon = now + Duration::from_secs(60);
        let later = now + Duration::from_secs(3600);
        assert_eq!(access_token_expiry(now, ten_minutes, []), end);
        assert_eq!(access_token_expiry(now, ten_minutes, [None, None]), end);
        assert_eq!(
            access_token_expiry(now, ten_minutes, [None, Some(later)]),
            end
        );
        assert_eq!(
            access_token_expiry(now, ten_minutes, [Some(later), None, Some(soon)]),
            soon
        );
    }
}
