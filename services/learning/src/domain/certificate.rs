//! A certificate's rules: its number, its status at a moment, and what issuing needs.

use chrono::{DateTime, Utc};
use lyceum_platform::text_enum;
use lyceum_proto::learning::v1 as pb;
use uuid::Uuid;

text_enum! {
    pub enum CertificateType: pb::CertificateType {
        Course = "course" => Course,
        Workshop = "workshop" => Workshop,
    }
}

/// Crockford's base-32 alphabet: no I, L, O or U to misread.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `CERT-{TYPE}-{YYYYMMDD}-{ID}`, the ID twelve characters of 60 random bits (from the
/// operating system's generator, through UUID v4): unique in practice, and the unique
/// constraint catches the rest; not to be guessed by someone verifying numbers at random.
pub fn certificate_number(kind: CertificateType, issued_at: DateTime<Utc>) -> String {
    number_from(kind, issued_at, Uuid::new_v4().as_u128())
}

fn number_from(kind: CertificateType, issued_at: DateTime<Utc>, random: u128) -> String {
    let mut bits = (random & ((1u128 << 60) - 1)) as u64;
    let mut id = [0u8; 12];
    for slot in id.iter_mut().rev() {
        *slot = ALPHABET[(bits & 31) as usize];
        bits >>= 5;
    }
    format!(
        "CERT-{}-{}-{}",
        kind.as_str().to_ascii_uppercase(),
        issued_at.format("%Y%m%d"),
        std::str::from_utf8(&id).expect("the alphabet is ASCII")
    )
}

/// Whether a text has the shape of a certificate number (checked before a lookup).
pub fn looks_like_number(raw: &str) -> bool {
    let parts: Vec<&str> = raw.split('-').collect();
    matches!(parts.as_slice(), ["CERT", kind, date, id]
        if matches!(*kind, "COURSE" | "WORKSHOP")
            && date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit())
            && id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateStatus {
    Valid,
    Revoked,
    Expired,
}

impl CertificateStatus {
    /// Revoked wins over expired: a revocation is what a verifier must learn.
    pub fn at(
        revoked_at: Option<DateTime<Utc>>,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        if revoked_at.is_some() {
            Self::Revoked
        } else if expires_at.is_some_and(|expiry| expiry <= now) {
            Self::Expired
        } else {
            Self::Valid
        }
    }

    pub fn to_proto(self) -> i32 {
        match self {
            Self::Valid => pb::CertificateStatus::Valid as i32,
            Self::Revoked => pb::CertificateStatus::Revoked as i32,
            Self::Expired => pb::CertificateStatus::Expired as i32,
        }
    }
}

/// Why a certificate cannot be issued or revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateRefusal {
    /// Only for a user who completed the course or attended the workshop.
    NotCompleted,
    AlreadyRevoked,
}

impl std::fmt::Display for CertificateRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotCompleted => {
                "a certificate is issued to a user who completed the course or attended the workshop"
            }
            Self::AlreadyRevoked => "the certificate is already revoked",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn numbers_have_the_documented_shape() {
        let number = number_from(CertificateType::Workshop, day(), u128::MAX);
        assert_eq!(number, "CERT-WORKSHOP-20261205-ZZZZZZZZZZZZ");
        assert_eq!(
            number_from(CertificateType::Course, day(), 0),
            "CERT-COURSE-20261205-000000000000"
        );
        let random = certificate_number(CertificateType::Course, day());
        assert!(looks_like_number(&random), "{random}");
        assert_ne!(random, certificate_number(CertificateType::Course, day()));
        assert!(!looks_like_number("CERT-COURSE-2026125-000000000000"));
        assert!(!looks_like_number("CERT-PROGRAM-20261205-000000000000"));
        assert!(!looks_like_number("cert-course-20261205-000000000000"));
    }

    #[test]
    fn a_revocation_shows_whatever_the_expiry() {
        let now = day();
        let earlier = now - chrono::Duration::days(1);
        assert_eq!(
            CertificateStatus::at(None, None, now),
            CertificateStatus::Valid
        );
        assert_eq!(
            CertificateStatus::at(None, Some(earlier), now),
            CertificateStatus::Expired
        );
        assert_eq!(
            CertificateStatus::at(Some(earlier), Some(earlier), now),
            CertificateStatus::Revoked
        );
    }
}
