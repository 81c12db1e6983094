//! The services this binary can run, chosen on the command line.

use std::fmt;
use std::str::FromStr;

/// A bounded context the binary can serve or migrate. `all` on the command line expands
/// to every variant; it is not a service of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceName {
    Identity,
    Learning,
    Instructor,
}

impl ServiceName {
    pub const ALL: &'static [ServiceName] = &[
        ServiceName::Identity,
        ServiceName::Learning,
        ServiceName::Instructor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Identity => "identity",
            ServiceName::Learning => "learning",
            ServiceName::Instructor => "instructor",
        }
    }

    /// Expands `all` and removes repetitions, keeping start order (dependencies first).
    pub fn expand(names: &[ServiceSelector]) -> Vec<ServiceName> {
        let mut selected: Vec<ServiceName> = names
            .iter()
            .flat_map(|n| match n {
                ServiceSelector::All => Self::ALL.to_vec(),
                ServiceSelector::One(s) => vec![*s],
            })
            .collect();
        selected.sort();
        selected.dedup();
        selected
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service name or `all`, parsed leniently (`Identity`, ` identity `).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceSelector {
    All,
    One(ServiceName),
}

impl FromStr for ServiceSelector {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let wanted = raw.trim().to_ascii_lowercase();
        if wanted == "all" {
            return Ok(ServiceSelector::All);
        }
        ServiceName::ALL
            .iter()
            .find(|s| s.as_str() == wanted)
            .map(|s| ServiceSelector::One(*s))
            .ok_or_else(|| {
                let valid: Vec<&str> = ServiceName::ALL.iter().map(|s| s.as_str()).collect();
                format!(
                    "unknown service '{raw}'; valid values: all, {}",
                    valid.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_is_lenient_and_names_the_valid_values() {
        assert_eq!(
            "Identity".parse(),
            Ok(ServiceSelector::One(ServiceName::Identity))
        );
        assert_eq!("ALL".parse(), Ok(ServiceSelector::All));
        let error = "billing".parse::<ServiceSelector>().unwrap_err();
        assert!(error.contains("identity"), "{error}");
    }

    #[test]
    fn all_expands_to_every_service_once() {
        let expanded = ServiceName::expand(&[
            ServiceSelector::All,
            ServiceSelector::One(ServiceName::Identity),
        ]);
        assert_eq!(expanded, ServiceName::ALL.to_vec());
    }
}
