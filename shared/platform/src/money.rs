//! Money, defined once for every service: ISO 4217 currencies, amounts in minor units,
//! and the `lyceum.common.v1.Money` message they travel as. Amounts of different
//! currencies are never added up.

use lyceum_proto::common::v1 as pb;

/// An ISO 4217 currency code: three uppercase letters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency(String);

impl Currency {
    /// What a price in no named currency is in.
    pub const DEFAULT: &str = "USD";

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

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An amount in minor units of a currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

/// Which of a [`Money`] message's fields is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyViolation {
    /// `amount_minor` or `currency`, to append to the message's own field path.
    pub field: &'static str,
    pub description: String,
}

impl Money {
    /// A price: zero (free) or positive, in a valid currency ([`Currency::DEFAULT`] when
    /// none is named).
    pub fn price(minor: i64, currency: &str) -> Result<Self, String> {
        if minor < 0 {
            return Err("must not be negative".into());
        }
        let currency = if currency.is_empty() {
            Currency::DEFAULT
        } else {
            currency
        };
        Ok(Self {
            minor,
            currency: Currency::parse(currency)?,
        })
    }

    /// An amount that changes hands (a payment): positive, in a named currency. Every
    /// violation is reported, by field.
    pub fn payment(message: Option<&pb::Money>) -> Result<Self, Vec<MoneyViolation>> {
        let message = message.cloned().unwrap_or_default();
        let mut violations = Vec::new();
        if message.amount_minor <= 0 {
            violations.push(MoneyViolation {
                field: "amount_minor",
                description: "must be positive".into(),
            });
        }
        let currency = Currency::parse(&message.currency).map_err(|description| {
            violations.push(MoneyViolation {
                field: "currency",
                description,
            })
        });
        match currency {
            Ok(currency) if violations.is_empty() => Ok(Self {
                minor: message.amount_minor,
                currency,
            }),
            _ => Err(violations),
        }
    }

    pub fn is_free(&self) -> bool {
        self.minor == 0
    }

    pub fn to_proto(&self) -> pb::Money {
        proto(self.minor, self.currency.as_str())
    }
}

/// The wire form of an amount read from the database, whose currency a constraint
/// already checked.
pub fn proto(amount_minor: i64, currency: &str) -> pb::Money {
    pb::Money {
        amount_minor,
        currency: currency.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_non_negative_in_a_real_currency() {
        assert!(Money::price(0, "").unwrap().is_free());
        assert_eq!(Money::price(0, "").unwrap().currency.as_str(), "USD");
        assert_eq!(Money::price(4999, "EUR").unwrap().currency.as_str(), "EUR");
        assert!(Money::price(-1, "USD").is_err());
        assert!(Money::price(100, "usd").is_err());
        assert!(Money::price(100, "DOLLARS").is_err());
        for bad in ["usd", "EURO", "U$D", "US"] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn payments_are_positive_and_name_their_currency() {
        let paid = Money::payment(Some(&proto(4999, "EUR"))).unwrap();
        assert_eq!((paid.minor, paid.currency.as_str()), (4999, "EUR"));
        assert_eq!(paid.to_proto(), proto(4999, "EUR"));
        let fields = |m: Option<&pb::Money>| {
            Money::payment(m)
                .unwrap_err()
                .into_iter()
                .map(|v| v.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(None), ["amount_minor", "currency"]);
        assert_eq!(fields(Some(&proto(0, "USD"))), ["amount_minor"]);
        assert_eq!(fields(Some(&proto(5, "usd"))), ["currency"]);
    }
}
