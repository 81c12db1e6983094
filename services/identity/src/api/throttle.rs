//! Throttling of failed sign-ins, per account and per client address.
//!
//! Each key (an email, a client address) has a token bucket: a failed attempt takes a
//! token, tokens come back one per `refill_every`, and while a bucket is empty further
//! attempts are refused with RESOURCE_EXHAUSTED and the delay until the next token,
//! before any password hashing happens. Successful sign-ins take nothing, so people behind
//! one NAT who know their passwords are not locked out by each other.
//!
//! The buckets live in the memory of each identity replica: checking them costs no
//! database round trip on an endpoint that anyone can call, at the price of a limit
//! that is per replica (N replicas allow N times the attempts).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failures a key may have in a burst, and how fast it recovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub burst: u32,
    pub refill_every: Duration,
}

/// The limits of failed sign-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimits {
    /// Per account (the email as normalized), whether or not it exists.
    pub per_account: Limit,
    /// Per client address.
    pub per_address: Limit,
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self {
            // Five guesses, then one a minute: a person who mistypes a few times is not
            // stopped; a guesser gets about 1,400 tries a day.
            per_account: Limit {
                burst: 5,
                refill_every: Duration::from_secs(60),
            },
            // Enough for an office behind one address; a stuffing run from one address
            // gets ten tries a minute.
            per_address: Limit {
                burst: 20,
                refill_every: Duration::from_secs(6),
            },
        }
    }
}

/// Keys remembered at most; past it, recovered buckets are forgotten first.
const MAX_KEYS: usize = 100_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Buckets {
    limit: Limit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    fn new(limit: Limit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let regained = now.duration_since(bucket.at).as_secs_f64()
            / self.limit.refill_every.as_secs_f64().max(f64::EPSILON);
        (bucket.tokens + regained).min(f64::from(self.limit.burst))
    }

    /// The wait before `key` may try again, or `None` when it may now.
    fn retry_after(&self, key: &str, now: Instant) -> Option<Duration> {
        let buckets = self.buckets.lock().expect("throttle buckets");
        let tokens = buckets.get(key).map(|b| self.refilled(b, now))?;
        (tokens < 1.0).then(|| self.limit.refill_every.mul_f64(1.0 - tokens))
    }

    fn charge(&self, key: &str, now: Instant) {
        let mut buckets = self.buckets.lock().expect("throttle buckets");
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let burst = f64::from(self.limit.burst);
            buckets.retain(|_, b| self.refilled(b, now) < burst);
            if buckets.len() >= MAX_KEYS {
                buckets.clear();
            }
        }
        let tokens = buckets
            .get(key)
            .map_or(f64::from(self.limit.burst), |b| self.refilled(b, now));
        buckets.insert(
            key.to_owned(),
            Bucket {
                tokens: (tokens - 1.0).max(0.0),
                at: now,
            },
        );
    }
}

/// The failed sign-ins of one identity replica.
pub struct SignInThrottle {
    per_account: Buckets,
    per_address: Buckets,
}

impl SignInThrottle {
    pub fn new(limits: SignInLimits) -> Self {
        Self {
            per_account: Buckets::new(limits.per_account),
            per_address: Buckets::new(limits.per_address),
        }
    }

    /// The longer of the two waits, when either key must wait.
    pub fn retry_after(&self, account: &str, address: &str) -> Option<Duration> {
        let now = Instant::now();
        let account = self.per_account.retry_after(account, now);
        let address = self.per_address.retry_after(address, now);
        account.max(address)
    }

    pub fn record_failure(&self, account: &str, address: &str) {
        let now = Instant::now();
        self.per_account.charge(account, now);
        self.per_address.charge(address, now);
    }
}

/// The client's address for throttling: with `trusted_proxy_hops` proxies in front, the
/// address the outermost of them saw, which is that many entries from the right of
/// `x-forwarded-for` (each proxy appends the address it received from). Entries further
/// left are whatever the client wrote and are never used. Without trusted proxies, or
/// when the header is shorter than promised, the connection's peer address.
pub fn client_address<T>(request: &tonic::Request<T>, trusted_proxy_hops: usize) -> String {
    if trusted_proxy_hops > 0
        && let Some(forwarded) = request
            .metadata()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
    {
        let entries: Vec<&str> = forwarded
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.len() >= trusted_proxy_hops {
            return entries[entries.len() - trusted_proxy_hops].to_owned();
        }
    }
    request
        .remote_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(burst: u32, secs: u64) -> Limit {
        Limit {
            burst,
            refill_every: Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_bucket_empties_after_its_burst_and_refills_over_time() {
        let buckets = Buckets::new(limit(3, 60));
        let start = Instant::now();
        assert_eq!(buckets.retry_after("k", start), None);
        for _ in 0..3 {
            buckets.charge("k", start);
        }
        let wait = buckets.retry_after("k", start).expect("exhausted");
        assert_eq!(wait, Duration::from_secs(60));
        let later = start + Duration::from_secs(45);
        let wait = buckets.retry_after("k", later).expect("still exhausted");
        assert!(wait <= Duration::from_secs(15) && wait > Duration::from_secs(14));
        assert_eq!(
            buckets.retry_after("k", start + Duration::from_secs(60)),
            None
        );
        assert_eq!(buckets.retry_after("other", start), None);
    }

    #[test]
    fn forwarded_addresses_are_read_only_as_far_as_proxies_are_trusted() {
        let mut request = tonic::Request::new(());
        request.metadata_mut().insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.7, 10.0.0.2".parse().unwrap(),
        );
        assert_eq!(client_address(&request, 1), "10.0.0.2");
        assert_eq!(client_address(&request, 2), "203.0.113.7");
        // No trusted proxy: the header is the client's own words and is ignored.
        assert_eq!(client_address(&request, 0), "unknown");
        assert_eq!(client_address(&request, 5), "unknown");
    }
}
