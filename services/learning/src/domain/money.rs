/// An ISO 4217 currency code: three uppercase letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency(String);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() == 3 && raw.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be an ISO 4217 code such as USD".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A non-negative amount in minor units of a currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    /// A price: zero (free) or positive, in a valid currency (USD when omitted).
    pub fn price(minor: i64, currency: &str) -> Result<Self, String> {
        if minor < 0 {
            return Err("must not be negative".into());
        }
        let currency = if currency.is_empty() { "USD" } else { currency };
        Ok(Self {
            minor,
            currency: Currency::parse(currency)?,
        })
    }

    pub fn is_free(&self) -> bool {
        self.minor == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_non_negative_in_a_real_currency() {
        assert!(Money::price(0, "").unwrap().is_free());
        assert_eq!(Money::price(4999, "EUR").unwrap().currency.as_str(), "EUR");
        assert!(Money::price(-1, "USD").is_err());
        assert!(Money::price(100, "usd").is_err());
        assert!(Money::price(100, "DOLLARS").is_err());
    }
}
