//! Throttling of failed sign-ins, per account and per client address.
//!
//! Each key (an email, a client address) has a token bucket: a failed attempt takes a
//! token, tokens come back one per `refill_every`, and while a bucket is empty further
//! attempts are refused with RESOURCE_EXHAUSTED and the delay until the next token,
//! before any password hashing happens. Every attempt holds its token while its password
//! is checked, so a burst of concurrent guesses gets no more checks than the bucket
//! holds; a successful sign-in gives its token back, so people behind one NAT who know
//! their passwords are not locked out by each other.
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

/// Keys remembered at most; past it, the buckets nearest to full are forgotten first.
const MAX_KEYS: usize = 100_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Buckets {
    limit: Limit,
    capacity: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    fn new(limit: Limit) -> Self {
        Self::with_capacity(limit, MAX_KEYS)
    }

    fn with_capacity(limit: Limit, capacity: usize) -> Self {
        Self {
            limit,
            capacity,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bucket>> {
        // A panic while holding the lock leaves whole buckets behind: keep using them.
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let regained = now.duration_since(bucket.at).as_secs_f64()
            / self.limit.refill_every.as_secs_f64().max(f64::EPSILON);
        (bucket.tokens + regained).min(f64::from(self.limit.burst))
    }

    fn tokens(&self, buckets: &HashMap<String, Bucket>, key: &str, now: Instant) -> f64 {
        buckets
            .get(key)
            .map_or(f64::from(self.limit.burst), |b| self.refilled(b, now))
    }

    /// The wait before `key` may try again, or `None` when it may now.
    fn wait(&self, buckets: &HashMap<String, Bucket>, key: &str, now: Instant) -> Option<Duration> {
        let tokens = self.tokens(buckets, key, now);
        (tokens < 1.0).then(|| self.limit.refill_every.mul_f64(1.0 - tokens))
    }

    #[cfg(test)]
    fn retry_after(&self, key: &str, now: Instant) -> Option<Duration> {
        self.wait(&self.lock(), key, now)
    }

    /// Adds `delta` tokens to `key` (negative to take), within 0 and the burst.
    fn adjust(&self, buckets: &mut HashMap<String, Bucket>, key: &str, delta: f64, now: Instant) {
        if buckets.len() >= self.capacity && !buckets.contains_key(key) {
            self.make_room(buckets, now);
        }
        let tokens = self.tokens(buckets, key, now);
        buckets.insert(
            key.to_owned(),
            Bucket {
                tokens: (tokens + delta).clamp(0.0, f64::from(self.limit.burst)),
                at: now,
            },
        );
    }

    /// Forgets the buckets that have recovered, then, if that is not enough, the tenth
    /// nearest to full. Forgetting a bucket refills it, so the emptiest ones (accounts under
    /// attack) go last, and many fresh keys cannot wipe them; a tenth at a time keeps the
    /// cost of the scan spread over many insertions.
    fn make_room(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        let burst = f64::from(self.limit.burst);
        buckets.retain(|_, b| self.refilled(b, now) < burst);
        if buckets.len() < self.capacity {
            return;
        }
        let mut levels: Vec<f64> = buckets.values().map(|b| self.refilled(b, now)).collect();
        let evict = (self.capacity / 10).max(1).min(levels.len());
        let cut = levels.len() - evict;
        levels.select_nth_unstable_by(cut, f64::total_cmp);
        let threshold = levels[cut];
        let mut evicted = 0;
        buckets.retain(|_, b| {
            if evicted < evict && self.refilled(b, now) >= threshold {
                evicted += 1;
                false
            } else {
                true
            }
        });
    }
}

/// The failed sign-ins of one identity replica.
pub struct SignInThrottle {
    per_account: Buckets,
    per_address: Buckets,
}

/// An attempt that holds one token of its account and one of its address while the
/// password is checked, so that concurrent guesses cannot all pass before the first
/// failure is counted. Dropped, it gives them back: only [`Attempt::failed`] keeps them.
pub struct Attempt<'a> {
    throttle: &'a SignInThrottle,
    account: String,
    address: String,
    failed: bool,
}

impl Attempt<'_> {
    /// The password was wrong (or the account unknown): the tokens stay spent.
    pub fn failed(mut self) {
        self.failed = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.failed {
            self.throttle.give_back(&self.account, &self.address);
        }
    }
}

impl SignInThrottle {
    pub fn new(limits: SignInLimits) -> Self {
        Self {
            per_account: Buckets::new(limits.per_account),
            per_address: Buckets::new(limits.per_address),
        }
    }

    /// Takes a token from both keys, or, when either is empty, takes nothing and returns
    /// the longer wait. Checking and taking happen under the same locks.
    pub fn reserve(&self, account: &str, address: &str) -> Result<Attempt<'_>, Duration> {
        let now = Instant::now();
        // Always account first, then address: one order, no deadlock.
        let mut accounts = self.per_account.lock();
        let mut addresses = self.per_address.lock();
        let account_wait = self.per_account.wait(&accounts, account, now);
        let address_wait = self.per_address.wait(&addresses, address, now);
        if let Some(wait) = account_wait.max(address_wait) {
            return Err(wait);
        }
        self.per_account.adjust(&mut accounts, account, -1.0, now);
        self.per_address.adjust(&mut addresses, address, -1.0, now);
        Ok(Attempt {
            throttle: self,
            account: account.to_owned(),
            address: address.to_owned(),
            failed: false,
        })
    }

    fn give_back(&self, account: &str, address: &str) {
        let now = Instant::now();
        let mut accounts = self.per_account.lock();
        let mut addresses = self.per_address.lock();
        self.per_account.adjust(&mut accounts, account, 1.0, now);
        self.per_address.adjust(&mut addresses, address, 1.0, now);
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
            buckets.adjust(&mut buckets.lock(), "k", -1.0, start);
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
    fn a_full_map_forgets_the_buckets_nearest_to_full_not_the_emptiest() {
        let buckets = Buckets::with_capacity(limit(5, 60), 10);
        let start = Instant::now();
        let mut map = buckets.lock();
        for _ in 0..5 {
            buckets.adjust(&mut map, "victim", -1.0, start);
        }
        // Many fresh keys, each with one failure, fill the map over and over.
        for i in 0..100 {
            buckets.adjust(&mut map, &format!("attacker-{i}"), -1.0, start);
            assert!(map.len() <= 10);
        }
        assert!(
            buckets.wait(&map, "victim", start).is_some(),
            "still exhausted"
        );
    }

    #[test]
    fn a_reservation_is_given_back_unless_the_attempt_failed() {
        let throttle = SignInThrottle::new(SignInLimits {
            per_account: limit(2, 60),
            per_address: limit(10, 60),
        });
        let held = throttle.reserve("a", "ip").expect("first");
        let _second = throttle.reserve("a", "ip").expect("second");
        assert!(throttle.reserve("a", "ip").is_err(), "both tokens held");
        drop(held);
        throttle.reserve("a", "ip").expect("given back").failed();
        assert!(
            throttle.reserve("a", "ip").is_err(),
            "a failure keeps its token"
        );
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
