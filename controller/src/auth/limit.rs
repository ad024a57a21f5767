//! Rate limits on authentication failures, built so they cannot be turned against valid
//! callers (issue 14, "Locking everyone out"). In memory, per controller.
//!
//! * **Valid credentials are never limited.** Tokens (API, node, agent, the shared admin
//!   and node tokens) carry 256 random bits and are checked cheaply (a constant-time
//!   compare or one sha256 lookup) *before* any limit is consulted, so a caller with a
//!   good token is served however many failures came from its address. Only a bad token is
//!   answered 429 once its source is over budget. Dashboard sessions are signed cookies and
//!   never reach this module.
//! * **Per source, in two budgets.** Failures are counted per source address (IPv6 by its
//!   /64, which one host usually holds whole) in [`Budget::People`] (API and git tokens,
//!   passwords) or [`Budget::Nodes`] (node-token shaped credentials, heartbeats,
//!   `/internal/`), so a misconfigured agent hammering heartbeats does not lock people out
//!   of logging in from its address, and the other way round. Each budget is a token
//!   bucket: [`SOURCE_BURST`] failures, refilled at [`SOURCE_REFILL_PER_SEC`].
//! * **Per user name for passwords.** Passwords cost argon2, so guessing must stay slow
//!   even from many addresses: every wrong password also takes a token from the user
//!   name's bucket ([`USER_BURST`], refilled at [`USER_REFILL_PER_SEC`]). While that bucket
//!   is empty (the user is being guessed) a password for that user is verified only from
//!   a source without a failure in the last [`QUIET`]: every attacking address gets one
//!   guess per [`QUIET`], and the real user, from an address that has not been failing,
//!   still logs in. A good password never resets a source's failures (else an attacker
//!   with one account of their own could clear their address between guesses).
//!
//! Entries are dropped once they are full and quiet; past [`MAX_TRACKED`] entries the
//! oldest half is forgotten, so memory stays bounded under an attack from many addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures one source may make in a burst (per budget).
pub const SOURCE_BURST: f64 = 10.0;
/// Failures a source regains per second (10 a minute).
pub const SOURCE_REFILL_PER_SEC: f64 = 10.0 / 60.0;
/// Wrong passwords for one user name, from anywhere, before the user counts as guessed.
pub const USER_BURST: f64 = 20.0;
/// Wrong passwords a user name regains per second (20 an hour).
pub const USER_REFILL_PER_SEC: f64 = 20.0 / 3600.0;
/// While a user is being guessed, only sources without a failure this long are verified.
pub const QUIET: Duration = Duration::from_secs(600);
/// Above this many tracked entries (per map), idle ones are dropped, then the oldest half.
pub const MAX_TRACKED: usize = 50_000;

/// Whose failures a source spends: people's or nodes'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// API tokens, git and registry credentials, passwords (API and dashboard logins).
    People,
    /// Node and agent traffic: node-token shaped credentials, heartbeats, `/internal/`.
    Nodes,
}

/// Where failures are counted: the address, IPv6 cut to its /64 (None when the server
/// has no connect info: all such requests share one entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceKey(Option<IpAddr>);

impl SourceKey {
    pub fn of(source: Option<IpAddr>) -> SourceKey {
        SourceKey(source.map(|ip| match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
        }))
    }
}

/// The shape of one limit: a burst and a refill rate.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub burst: f64,
    pub per_sec: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    last_failure: Instant,
}

impl Bucket {
    fn full(rule: Rule, now: Instant) -> Bucket {
        Bucket {
            tokens: rule.burst,
            at: now,
            last_failure: now,
        }
    }

    fn refilled(self, rule: Rule, now: Instant) -> Bucket {
        let gained = now.saturating_duration_since(self.at).as_secs_f64() * rule.per_sec;
        Bucket {
            tokens: (self.tokens + gained).min(rule.burst),
            at: now,
            last_failure: self.last_failure,
        }
    }

    /// `Err(wait)` when empty: the time until one failure is allowed again.
    fn check(self, rule: Rule, now: Instant) -> Result<(), Duration> {
        let b = self.refilled(rule, now);
        if b.tokens >= 1.0 {
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rule.per_sec))
        }
    }

    fn idle(self, rule: Rule, now: Instant) -> bool {
        self.refilled(rule, now).tokens >= rule.burst
            && now.saturating_duration_since(self.last_failure) >= QUIET
    }
}

/// Buckets by key, bounded in number.
#[derive(Debug)]
struct Buckets<K> {
    rule: Rule,
    map: Mutex<HashMap<K, Bucket>>,
}

impl<K: std::hash::Hash + Eq + Clone> Buckets<K> {
    fn new(rule: Rule) -> Self {
        Buckets {
            rule,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K) -> Option<Bucket> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).copied()
    }

    fn fail(&self, key: K, now: Instant) {
        let rule = self.rule;
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
            map.retain(|_, b| !b.idle(rule, now));
            if map.len() >= MAX_TRACKED {
                let mut ages: Vec<Instant> = map.values().map(|b| b.last_failure).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                map.retain(|_, b| b.last_failure > cut);
            }
        }
        let b = map.entry(key).or_insert_with(|| Bucket::full(rule, now));
        let mut next = b.refilled(rule, now);
        next.tokens = (next.tokens - 1.0).max(0.0);
        next.last_failure = now;
        *b = next;
    }
}

/// The controller's failure limits (see the module doc).
#[derive(Debug)]
pub struct FailureLimiter {
    sources: Buckets<(Budget, SourceKey)>,
    users: Buckets<String>,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        FailureLimiter::new(
            Rule {
                burst: SOURCE_BURST,
                per_sec: SOURCE_REFILL_PER_SEC,
            },
            Rule {
                burst: USER_BURST,
                per_sec: USER_REFILL_PER_SEC,
            },
        )
    }
}

impl FailureLimiter {
    pub fn new(source: Rule, user: Rule) -> FailureLimiter {
        FailureLimiter {
            sources: Buckets::new(source),
            users: Buckets::new(user),
        }
    }

    /// `Err(wait)` while `source` has used up its failures in `budget`: bad tokens are
    /// answered 429 (good ones never ask).
    pub fn check(&self, budget: Budget, source: Option<IpAddr>) -> Result<(), Duration> {
        self.check_at(budget, source, Instant::now())
    }

    /// Records one bad token (or other failed credential) of `source`.
    pub fn fail(&self, budget: Budget, source: Option<IpAddr>) {
        self.sources
            .fail((budget, SourceKey::of(source)), Instant::now())
    }

    /// `Err(wait)` when a password for `user` from `source` must not be verified now: the
    /// source is over its budget, or the user is being guessed and the source has failed
    /// within [`QUIET`].
    pub fn check_password(&self, source: Option<IpAddr>, user: &str) -> Result<(), Duration> {
        self.check_password_at(source, user, Instant::now())
    }

    /// Records one wrong password for `user` from `source`.
    pub fn password_failed(&self, source: Option<IpAddr>, user: &str) {
        self.password_failed_at(source, user, Instant::now())
    }

    fn check_at(
        &self,
        budget: Budget,
        source: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), Duration> {
        match self.sources.get(&(budget, SourceKey::of(source))) {
            Some(b) => b.check(self.sources.rule, now).map_err(at_least_a_second),
            None => Ok(()),
        }
    }

    fn check_password_at(
        &self,
        source: Option<IpAddr>,
        user: &str,
        now: Instant,
    ) -> Result<(), Duration> {
        let key = (Budget::People, SourceKey::of(source));
        let Some(src) = self.sources.get(&key) else {
            // No failure from this source that is still remembered: always verified.
            return Ok(());
        };
        src.check(self.sources.rule, now)
            .map_err(at_least_a_second)?;
        let Some(u) = self.users.get(&user_key(user)) else {
            return Ok(());
        };
        let Err(user_wait) = u.check(self.users.rule, now) else {
            return Ok(());
        };
        let since = now.saturating_duration_since(src.last_failure);
        if since >= QUIET {
            return Ok(());
        }
        // Either the source turns quiet or the user's bucket gains a token.
        Err(at_least_a_second(user_wait.min(QUIET - since)))
    }

    fn password_failed_at(&self, source: Option<IpAddr>, user: &str, now: Instant) {
        self.sources
            .fail((Budget::People, SourceKey::of(source)), now);
        self.users.fail(user_key(user), now);
    }
}

/// User names are compared as stored (lower case); long garbage is cut so it costs little.
fn user_key(user: &str) -> String {
    user.chars().take(64).collect::<String>().to_lowercase()
}

fn at_least_a_second(d: Duration) -> Duration {
    d.max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn ten_bad_tokens_block_the_source_in_its_budget_only() {
        let l = FailureLimiter::default();
        let (a, b) = (ip("10.200.61.7"), ip("10.200.61.8"));
        let t0 = Instant::now();
        for _ in 0..9 {
            l.sources.fail((Budget::People, SourceKey::of(a)), t0);
            assert!(l.check_at(Budget::People, a, t0).is_ok());
        }
        l.sources.fail((Budget::People, SourceKey::of(a)), t0);
        let wait = l.check_at(Budget::People, a, t0).unwrap_err();
        assert!(
            wait >= Duration::from_secs(5) && wait <= Duration::from_secs(7),
            "{wait:?}"
        );
        // Other sources and the node budget of the same source are not affected.
        assert!(l.check_at(Budget::People, b, t0).is_ok());
        assert!(l.check_at(Budget::Nodes, a, t0).is_ok());
        // Six seconds later one failure is allowed again.
        assert!(l
            .check_at(Budget::People, a, t0 + Duration::from_secs(7))
            .is_ok());
        assert!(l
            .check_at(Budget::People, a, t0 + Duration::from_secs(3))
            .is_err());
    }

    #[test]
    fn ipv6_sources_count_by_their_64() {
        assert_eq!(
            SourceKey::of(ip("2001:db8:1:2:aaaa::1")),
            SourceKey::of(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            SourceKey::of(ip("2001:db8:1:2::1")),
            SourceKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            SourceKey::of(ip("::ffff:10.0.0.1")),
            SourceKey::of(ip("10.0.0.1"))
        );
    }

    #[test]
    fn a_guessed_user_is_verified_only_from_quiet_sources() {
        let l = FailureLimiter::default();
        let t0 = Instant::now();
        // Twenty addresses, one wrong password each: the user's budget is used up.
        for i in 0..20 {
            let s = ip(&format!("10.1.0.{i}"));
            assert!(l.check_password_at(s, "ann", t0).is_ok());
            l.password_failed_at(s, "ann", t0);
        }
        // A failing address gets no second guess at ann (but may still try others)...
        let s0 = ip("10.1.0.0");
        let wait = l.check_password_at(s0, "ann", t0).unwrap_err();
        assert!(wait >= Duration::from_secs(1), "{wait:?}");
        assert!(l.check_password_at(s0, "bob", t0).is_ok());
        // ...a new address gets one...
        let fresh = ip("10.2.0.1");
        assert!(l.check_password_at(fresh, "ann", t0).is_ok());
        l.password_failed_at(fresh, "ann", t0);
        assert!(l.check_password_at(fresh, "ann", t0).is_err());
        // ...and the real user, from an address that was not failing, is verified.
        assert!(l.check_password_at(ip("10.3.0.1"), "ANN", t0).is_ok());
        // Once the source is quiet again, it is verified again.
        assert!(l.check_password_at(s0, "ann", t0 + QUIET).is_ok());
    }

    #[test]
    fn memory_stays_bounded() {
        let l = FailureLimiter::default();
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 10) {
            let s = Some(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
            l.sources.fail(
                (Budget::People, SourceKey::of(s)),
                t0 + Duration::from_millis(i.into()),
            );
        }
        let n = l.sources.map.lock().unwrap().len();
        assert!(n <= MAX_TRACKED, "{n}");
    }
}
