use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// A password that meets the policy: 12 to 128 characters, not all of one kind.
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    pub const MIN_LEN: usize = 12;
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars < Self::MIN_LEN {
            return Err(format!("must be at least {} characters", Self::MIN_LEN));
        }
        if chars > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        let classes = [
            raw.chars().any(|c| c.is_lowercase()),
            raw.chars().any(|c| c.is_uppercase()),
            raw.chars().any(|c| c.is_ascii_digit()),
            raw.chars().any(|c| !c.is_alphanumeric()),
        ];
        if classes.iter().filter(|&&present| present).count() < 3 {
            return Err("must mix at least three of: lowercase, uppercase, digits, symbols".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// Argon2id with the OWASP-recommended parameters (19 MiB, 2 passes, 1 lane).
    pub fn hash(&self) -> PasswordHash {
        let salt = SaltString::generate(&mut OsRng);
        let hash = hasher()
            .hash_password(self.0.as_bytes(), &salt)
            .expect("Argon2id hashing with valid parameters cannot fail")
            .to_string();
        PasswordHash(hash)
    }
}

fn hasher() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters"),
    )
}

/// A stored Argon2id hash in PHC string form.
#[derive(Debug, Clone)]
pub struct PasswordHash(pub String);

impl PasswordHash {
    /// Compares in constant time; an unparsable stored hash never matches.
    pub fn matches(&self, candidate: &str) -> bool {
        match argon2::PasswordHash::new(&self.0) {
            Ok(parsed) => hasher()
                .verify_password(candidate.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Hashes a high-entropy generated secret (service-account credentials).
    pub fn of_secret(secret: &str) -> PasswordHash {
        Password(secret.to_owned()).hash()
    }

    /// A hash to verify against when the account does not exist, so that an unknown email
    /// costs as much time as a wrong password.
    pub fn dummy() -> &'static PasswordHash {
        static DUMMY: std::sync::LazyLock<PasswordHash> =
            std::sync::LazyLock::new(|| Password("dummy-Password-1".into()).hash());
        &DUMMY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_rejected() {
        assert!(Password::parse("short1A!").is_err());
        assert!(Password::parse("alllowercaseletters").is_err());
        assert!(Password::parse(&"Aa1!".repeat(40)).is_err());
        assert!(Password::parse("Correct-Horse-42").is_ok());
    }

    #[test]
    fn hashes_verify_only_the_right_password() {
        let hash = Password::parse("Correct-Horse-42").unwrap().hash();
        assert!(hash.0.starts_with("$argon2id$"));
        assert!(hash.matches("Correct-Horse-42"));
        assert!(!hash.matches("correct-horse-42"));
    }
}
