//! Per-source rate limit of authentication failures: a token bucket per IP address in
//! memory. Each failed login or bad token takes one token; when the bucket is empty every
//! authentication attempt from that address is answered 429 with `Retry-After` until it
//! refills. Successful requests cost nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed in a burst.
pub const BURST: f64 = 10.0;
/// Failures regained per second (10 a minute).
pub const REFILL_PER_SEC: f64 = 10.0 / 60.0;
/// Above this many tracked addresses, full buckets are dropped.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refilled(self, now: Instant, burst: f64, rate: f64) -> Bucket {
        let gained = now.saturating_duration_since(self.at).as_secs_f64() * rate;
        Bucket {
            tokens: (self.tokens + gained).min(burst),
            at: now,
        }
    }
}

/// The failure buckets of all sources.
#[derive(Debug)]
pub struct FailureLimiter {
    burst: f64,
    rate: f64,
    buckets: Mutex<HashMap<Option<IpAddr>, Bucket>>,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        FailureLimiter::new(BURST, REFILL_PER_SEC)
    }
}

impl FailureLimiter {
    pub fn new(burst: f64, rate_per_sec: f64) -> FailureLimiter {
        FailureLimiter {
            burst,
            rate: rate_per_sec,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while `source` has used up its failures.
    pub fn check(&self, source: Option<IpAddr>) -> Result<(), Duration> {
        self.check_at(source, Instant::now())
    }

    /// Records one failure of `source`.
    pub fn fail(&self, source: Option<IpAddr>) {
        self.fail_at(source, Instant::now())
    }

    fn check_at(&self, source: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let Some(b) = buckets.get(&source) else {
            return Ok(());
        };
        let b = b.refilled(now, self.burst, self.rate);
        if b.tokens >= 1.0 {
            Ok(())
        } else {
            let secs = (1.0 - b.tokens) / self.rate;
            Err(Duration::from_secs_f64(secs.max(1.0)))
        }
    }

    fn fail_at(&self, source: Option<IpAddr>, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED {
            let (burst, rate) = (self.burst, self.rate);
            buckets.retain(|_, b| b.refilled(now, burst, rate).tokens < burst);
        }
        let b = buckets.entry(source).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let mut refilled = b.refilled(now, self.burst, self.rate);
        refilled.tokens = (refilled.tokens - 1.0).max(0.0);
        *b = refilled;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_block_the_source_until_it_refills() {
        let l = FailureLimiter::default();
        let ip: Option<IpAddr> = Some("10.200.61.7".parse().unwrap());
        let other: Option<IpAddr> = Some("10.200.61.8".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..9 {
            l.fail_at(ip, t0);
            assert!(l.check_at(ip, t0).is_ok());
        }
        l.fail_at(ip, t0);
        let wait = l.check_at(ip, t0).unwrap_err();
        assert!(
            wait >= Duration::from_secs(5) && wait <= Duration::from_secs(7),
            "{wait:?}"
        );
        // Other sources are not affected.
        assert!(l.check_at(other, t0).is_ok());
        // Six seconds later one failure is allowed again.
        assert!(l.check_at(ip, t0 + Duration::from_secs(7)).is_ok());
        assert!(l.check_at(ip, t0 + Duration::from_secs(3)).is_err());
    }
}
