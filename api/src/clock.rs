//! Wall-clock stamps and their RFC 3339 form: one copy for the controller, the router and
//! the registry (access lines, certificate dates, token and trash times), kept here because
//! `paas-api` is the one crate all of them depend on and it depends on none of them. Only
//! `std`: reading the clock is the one thing here that is not plain data.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Microseconds since the Unix epoch.
pub fn unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Formats Unix microseconds as RFC 3339 UTC with six fraction digits, e.g.
/// `2024-05-01T12:00:00.000123Z`.
pub fn rfc3339_from_micros(us: i64) -> String {
    let whole = rfc3339_from_ms(us.div_euclid(1_000_000) * 1000);
    format!(
        "{}.{:06}Z",
        whole.trim_end_matches('Z'),
        us.rem_euclid(1_000_000)
    )
}

/// Formats Unix milliseconds as RFC 3339 UTC (second precision).
pub fn rfc3339_from_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_epoch_and_a_leap_day() {
        assert_eq!(rfc3339_from_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_from_micros(951_782_400_000_123),
            "2000-02-29T00:00:00.000123Z"
        );
    }
}
