//! The restart policy: a process type whose jobs keep crashing is restarted with an
//! exponential delay (1 s, 2 s, 4 s, … capped at 5 minutes); one healthy job resets it.
//! Pure functions of the crash count and the time since the last crash.

use std::time::Duration;

/// The longest wait between two restarts of a crash-looping process type.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// After this many crashes in a row a process type counts as crash-looping.
pub const CRASH_LOOP: u32 = 3;

/// How long to wait after the `crashes`-th crash in a row before starting again.
pub fn backoff(crashes: u32) -> Duration {
    if crashes == 0 {
        return Duration::ZERO;
    }
    let shift = (crashes - 1).min(16);
    Duration::from_secs(1u64 << shift).min(MAX_BACKOFF)
}

/// True while a restart must wait: `since` is the time since the last crash.
pub fn must_wait(crashes: u32, since: Duration) -> bool {
    since < backoff(crashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_and_caps_at_five_minutes() {
        let secs: Vec<u64> = (0..12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn a_restart_waits_until_the_backoff_has_passed() {
        assert!(!must_wait(0, Duration::ZERO));
        assert!(must_wait(3, Duration::from_secs(3)));
        assert!(!must_wait(3, Duration::from_secs(4)));
        assert!(must_wait(20, Duration::from_secs(299)));
        assert!(!must_wait(20, Duration::from_secs(300)));
    }
}
