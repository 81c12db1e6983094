//! Waiting for what happens asynchronously (events, relays, restarts).

use std::future::Future;
use std::time::{Duration, Instant};

/// How long [`eventually`] waits.
pub const EVENTUALLY_TIMEOUT: Duration = Duration::from_secs(20);

/// Polls `check` until it holds, failing the test with `what` after
/// [`EVENTUALLY_TIMEOUT`].
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(what, EVENTUALLY_TIMEOUT, check).await;
}

/// Polls `check` every 50 ms until it holds, failing the test with `what` after `timeout`.
pub async fn eventually_within<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
