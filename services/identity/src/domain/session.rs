//! A session's refresh tokens: when one is rotated, when a rotated one replays the pair
//! its rotation produced (a client refreshing twice at once), when it betrays a copy and
//! ends the session, and why sessions end.
//!
//! Refreshing decides in up to two steps, as the store answers: [`decide_refresh`] from
//! the presented token, then [`decide_replay`] once the successor named in the sealed
//! pair was looked up, or [`decide_refresh_account`] once the user was loaded. The
//! handler saves what a refusal's [`RefreshRefusal::revocation`] asks before answering.

use chrono::{DateTime, TimeDelta, Utc};

use super::{NotActive, UserStatus, may_sign_in};

/// Why a session ended, as recorded in `sessions.revoked_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Logout,
    /// A rotated refresh token came back: someone holds a copy.
    ReuseDetected,
    /// The user left the active status (suspended or made inactive).
    UserSuspended,
    PasswordChanged,
    /// A role the session's tokens carry was revoked.
    RolesRevoked,
}

impl SessionEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::ReuseDetected => "reuse_detected",
            Self::UserSuspended => "user_suspended",
            Self::PasswordChanged => "password_changed",
            Self::RolesRevoked => "roles_revoked",
        }
    }
}

/// What refreshing reads of a presented refresh token and its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshState<'a> {
    pub rotated_at: Option<DateTime<Utc>>,
    /// The token pair the rotation produced, sealed.
    pub successor_sealed: Option<&'a [u8]>,
    pub session_expires_at: DateTime<Utc>,
    pub session_revoked: bool,
}

impl RefreshState<'_> {
    /// Neither revoked nor expired at `now`.
    pub fn session_live(&self, now: DateTime<Utc>) -> bool {
        !self.session_revoked && self.session_expires_at > now
    }
}

/// What refreshing does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshStep<'a> {
    /// An unrotated token of a live session: check the account
    /// ([`decide_refresh_account`]), then rotate.
    Rotate,
    /// A token rotated within the grace window: answer with this sealed pair, provided its
    /// refresh token has not been rotated in turn ([`decide_replay`]).
    Replay(&'a [u8]),
}

/// Why a refresh is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRefusal {
    /// Unknown, or its session was revoked or expired, or its user is gone.
    Invalid,
    /// A rotated token came back late, or after its successor moved on: someone holds a
    /// copy. The session ends unless it already had.
    Reused { session_revoked: bool },
    /// The user is no longer active: the session ends.
    Account(NotActive),
}

impl RefreshRefusal {
    /// The session ends for this reason before the refusal is answered.
    pub fn revocation(&self) -> Option<SessionEnd> {
        match self {
            Self::Invalid => None,
            Self::Reused { session_revoked } => {
                (!session_revoked).then_some(SessionEnd::ReuseDetected)
            }
            Self::Account(_) => Some(SessionEnd::UserSuspended),
        }
    }
}

impl std::fmt::Display for RefreshRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid | Self::Reused { .. } => {
                f.write_str("the refresh token is invalid, expired or revoked")
            }
            Self::Account(not_active) => not_active.fmt(f),
        }
    }
}

/// The first step of a refresh, at `now` (the database's clock, which also stamped
/// `rotated_at`). A rotated token replays its successor pair while within `grace` of the
/// rotation and its session is live; any other rotated token is a reused copy. An
/// unrotated token rotates while its session is live.
pub fn decide_refresh<'a>(
    token: &RefreshState<'a>,
    now: DateTime<Utc>,
    grace: TimeDelta,
) -> Result<RefreshStep<'a>, RefreshRefusal> {
    let live = token.session_live(now);
    match token.rotated_at {
        Some(rotated_at) => match token.successor_sealed {
            Some(sealed) if now - rotated_at < grace && live => Ok(RefreshStep::Replay(sealed)),
            _ => Err(reused(token)),
        },
        None if live => Ok(RefreshStep::Rotate),
        None => Err(RefreshRefusal::Invalid),
    }
}

/// The second step of a replay: only while the successor has not moved on. Once it was
/// rotated, the client that asked twice has already used the pair, so whoever presents
/// the old token now holds a copy.
pub fn decide_replay(
    token: &RefreshState<'_>,
    successor_unrotated: bool,
) -> Result<(), RefreshRefusal> {
    if successor_unrotated {
        Ok(())
    } else {
        Err(reused(token))
    }
}

/// The second step of a rotation: the token's user must be active. (A token whose user
/// is gone is [`RefreshRefusal::Invalid`].)
pub fn decide_refresh_account(status: UserStatus) -> Result<(), RefreshRefusal> {
    may_sign_in(status).map_err(RefreshRefusal::Account)
}

fn reused(token: &RefreshState<'_>) -> RefreshRefusal {
    RefreshRefusal::Reused {
        session_revoked: token.session_revoked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEALED: &[u8] = b"sealed pair";

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn grace() -> TimeDelta {
        TimeDelta::seconds(5)
    }

    fn fresh() -> RefreshState<'static> {
        RefreshState {
            rotated_at: None,
            successor_sealed: None,
            session_expires_at: at(1000),
            session_revoked: false,
        }
    }

    fn rotated(seconds: i64) -> RefreshState<'static> {
        RefreshState {
            rotated_at: Some(at(seconds)),
            successor_sealed: Some(SEALED),
            ..fresh()
        }
    }

    #[test]
    fn an_unrotated_token_of_a_live_session_rotates() {
        assert_eq!(
            decide_refresh(&fresh(), at(0), grace()),
            Ok(RefreshStep::Rotate)
        );
        let revoked = RefreshState {
            session_revoked: true,
            ..fresh()
        };
        assert_eq!(
            decide_refresh(&revoked, at(0), grace()),
            Err(RefreshRefusal::Invalid)
        );
        assert_eq!(RefreshRefusal::Invalid.revocation(), None);
    }

    #[test]
    fn both_paths_compare_the_session_expiry_with_the_one_now_given() {
        // The session expires at 1000: at that very instant it is over, on either path.
        assert_eq!(
            decide_refresh(&fresh(), at(999), grace()),
            Ok(RefreshStep::Rotate)
        );
        assert_eq!(
            decide_refresh(&fresh(), at(1000), grace()),
            Err(RefreshRefusal::Invalid)
        );
        assert_eq!(
            decide_refresh(&rotated(998), at(999), grace()),
            Ok(RefreshStep::Replay(SEALED))
        );
        assert_eq!(
            decide_refresh(&rotated(998), at(1000), grace()),
            Err(RefreshRefusal::Reused {
                session_revoked: false
            })
        );
    }

    #[test]
    fn a_rotated_token_replays_its_successor_within_the_grace_window() {
        assert_eq!(
            decide_refresh(&rotated(0), at(4), grace()),
            Ok(RefreshStep::Replay(SEALED))
        );
        assert_eq!(decide_replay(&rotated(0), true), Ok(()));
        // The successor moved on: a copy is being replayed, and the session ends.
        let refusal = decide_replay(&rotated(0), false).unwrap_err();
        assert_eq!(
            refusal,
            RefreshRefusal::Reused {
                session_revoked: false
            }
        );
        assert_eq!(refusal.revocation(), Some(SessionEnd::ReuseDetected));
    }

    #[test]
    fn a_rotated_token_outside_the_window_or_its_live_session_is_reuse() {
        let reuse = Err(RefreshRefusal::Reused {
            session_revoked: false,
        });
        assert_eq!(decide_refresh(&rotated(0), at(5), grace()), reuse);
        let unsealed = RefreshState {
            successor_sealed: None,
            ..rotated(0)
        };
        assert_eq!(decide_refresh(&unsealed, at(1), grace()), reuse);
        // Its session already ended: refused, and nothing more to revoke.
        let revoked = RefreshState {
            session_revoked: true,
            ..rotated(0)
        };
        let refusal = decide_refresh(&revoked, at(1), grace()).unwrap_err();
        assert_eq!(
            refusal,
            RefreshRefusal::Reused {
                session_revoked: true
            }
        );
        assert_eq!(refusal.revocation(), None);
    }

    #[test]
    fn only_an_active_user_refreshes() {
        assert_eq!(decide_refresh_account(UserStatus::Active), Ok(()));
        let refusal = decide_refresh_account(UserStatus::Suspended).unwrap_err();
        assert_eq!(
            refusal,
            RefreshRefusal::Account(NotActive(UserStatus::Suspended))
        );
        assert_eq!(refusal.revocation(), Some(SessionEnd::UserSuspended));
        assert_eq!(refusal.to_string(), "the account is suspended");
        let inactive = decide_refresh_account(UserStatus::Inactive).unwrap_err();
        assert_eq!(inactive.revocation(), Some(SessionEnd::UserSuspended));
    }

    #[test]
    fn every_token_refusal_reads_the_same() {
        let message = "the refresh token is invalid, expired or revoked";
        assert_eq!(RefreshRefusal::Invalid.to_string(), message);
        for session_revoked in [false, true] {
            assert_eq!(
                RefreshRefusal::Reused { session_revoked }.to_string(),
                message
            );
        }
        assert_eq!(SessionEnd::ReuseDetected.as_str(), "reuse_detected");
        assert_eq!(SessionEnd::UserSuspended.as_str(), "user_suspended");
        assert_eq!(SessionEnd::Logout.as_str(), "logout");
        assert_eq!(SessionEnd::PasswordChanged.as_str(), "password_changed");
        assert_eq!(SessionEnd::RolesRevoked.as_str(), "roles_revoked");
    }
}
