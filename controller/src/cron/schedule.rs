//! Cron schedules: the standard five fields `minute hour day-of-month month day-of-week`,
//! each `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of these;
//! months and weekdays also by their English three-letter names (`jan`, `mon`); weekday 0
//! and 7 are Sunday. The shorthands `@yearly` (`@annually`), `@monthly`, `@weekly`,
//! `@daily` (`@midnight`) and `@hourly` are accepted. As in Vixie cron, when both the day
//! of the month and the day of the week are restricted, a day matching either runs. Times
//! are UTC.

/// What is wrong with a schedule. Each message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "schedule {0:?} must have 5 fields (minute hour day-of-month month day-of-week, \
         e.g. \"*/10 * * * *\") or be @hourly, @daily, @weekly, @monthly or @yearly"
    )]
    Fields(String),
    #[error("schedule {schedule:?}: the {field} field {value:?} {why}")]
    Field {
        schedule: String,
        field: &'static str,
        value: String,
        why: String,
    },
}

/// A parsed schedule: the set of each field's allowed values as bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// The day-of-month field was not `*` (for the either-day rule).
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
    },
    Field {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: &WEEKDAYS,
    },
];

impl Field {
    fn value(&self, text: &str) -> Result<u32, String> {
        let lower = text.to_ascii_lowercase();
        if let Some(i) = self.names.iter().position(|n| *n == lower) {
            // Months are 1-based, weekdays 0-based.
            return Ok(i as u32 + self.min);
        }
        let n: u32 = text
            .parse()
            .map_err(|_| format!("has {text:?}, which is not a number"))?;
        if n < self.min || n > self.max {
            return Err(format!("has {n}, outside {}-{}", self.min, self.max));
        }
        Ok(n)
    }

    /// The field's values as bits (bit `n` = value `n`).
    fn parse(&self, text: &str) -> Result<u64, String> {
        let mut bits = 0u64;
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = s
                        .parse()
                        .map_err(|_| format!("has the step {s:?}, which is not a number"))?;
                    if step == 0 || step > self.max {
                        return Err(format!("has the step {step}, outside 1-{}", self.max));
                    }
                    (r, step)
                }
                None => (part, 1),
            };
            let (lo, hi) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(format!("has the range {a}-{b}, which runs backwards"));
                }
                (a, b)
            } else if range.is_empty() {
                return Err("has an empty item (two commas in a row?)".into());
            } else {
                let a = self.value(range)?;
                // `5/15` means from 5 to the end, every 15.
                (a, if part.contains('/') { self.max } else { a })
            };
            let mut v = lo;
            while v <= hi {
                bits |= 1 << v;
                v += step;
            }
        }
        Ok(bits)
    }
}

impl Schedule {
    /// Parses a schedule (see the module's documentation).
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let trimmed = text.trim();
        let expanded = match trimmed.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            _ => trimmed,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(ScheduleError::Fields(text.to_string()));
        }
        let mut bits = [0u64; 5];
        for (i, field) in FIELDS.iter().enumerate() {
            bits[i] = field.parse(parts[i]).map_err(|why| ScheduleError::Field {
                schedule: text.to_string(),
                field: field.name,
                value: parts[i].to_string(),
                why,
            })?;
        }
        // Sunday is 0 and 7.
        let weekdays = ((bits[4] | (bits[4] >> 7)) & 0x7f) as u8;
        Ok(Schedule {
            minutes: bits[0],
            hours: bits[1] as u32,
            days: bits[2] as u32,
            months: bits[3] as u16,
            weekdays,
            days_restricted: !parts[2].starts_with('*'),
            weekdays_restricted: !parts[4].starts_with('*'),
        })
    }

    fn day_matches(&self, day: u32, weekday: u32) -> bool {
        let by_day = self.days & (1 << day) != 0;
        let by_weekday = self.weekdays & (1 << weekday) != 0;
        if self.days_restricted && self.weekdays_restricted {
            by_day || by_weekday
        } else {
            by_day && by_weekday
        }
    }

    /// The first time this schedule runs strictly after `after` (seconds since the Unix
    /// epoch, UTC), at the start of its minute; None when it never runs in the next 8 years
    /// (`0 0 30 2 *`, February 30th).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let start = after.div_euclid(60) + 1; // the next whole minute
        let first_day = start.div_euclid(1440);
        let first_minute = start.rem_euclid(1440) as u32;
        for day in first_day..first_day + 366 * 8 {
            let (_, month, dom) = civil_from_days(day);
            // 1970-01-01 was a Thursday (4).
            let weekday = (day + 4).rem_euclid(7) as u32;
            if self.months & (1 << month) == 0 || !self.day_matches(dom, weekday) {
                continue;
            }
            let from = if day == first_day { first_minute } else { 0 };
            for m in from..1440 {
                if self.hours & (1 << (m / 60)) != 0 && self.minutes & (1 << (m % 60)) != 0 {
                    return Some((day * 1440 + i64::from(m)) * 60);
                }
            }
        }
        None
    }
}

/// (year, month 1-12, day 1-31) of a count of days since 1970-01-01 (the proleptic
/// Gregorian calendar, after Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-12-07T08:00:00Z` for seconds since the epoch.
pub fn rfc3339(secs: i64) -> String {
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07T08:13:20Z, a Monday.
    const NOW: i64 = 1_796_631_200;

    fn next(s: &str) -> String {
        rfc3339(Schedule::parse(s).unwrap().next_after(NOW).unwrap())
    }

    #[test]
    fn the_calendar_is_right() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(NOW), "2026-12-07T08:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn schedules_run_at_their_next_minute() {
        assert_eq!(next("* * * * *"), "2026-12-07T08:14:00Z");
        assert_eq!(next("*/10 * * * *"), "2026-12-07T08:20:00Z");
        assert_eq!(next("0 * * * *"), "2026-12-07T09:00:00Z");
        assert_eq!(next("@hourly"), "2026-12-07T09:00:00Z");
        assert_eq!(next("30 2 * * *"), "2026-12-08T02:30:00Z");
        assert_eq!(next("@daily"), "2026-12-08T00:00:00Z");
        assert_eq!(next("0 9-17/4 * * mon-fri"), "2026-12-07T09:00:00Z");
        assert_eq!(next("0 0 * * 0"), "2026-12-13T00:00:00Z", "Sunday");
        assert_eq!(next("0 0 * * 7"), "2026-12-13T00:00:00Z", "7 is Sunday too");
        assert_eq!(next("15,45 8 * * *"), "2026-12-07T08:15:00Z");
        assert_eq!(next("0 0 1 jan *"), "2027-01-01T00:00:00Z");
        assert_eq!(next("@monthly"), "2027-01-01T00:00:00Z");
        assert_eq!(next("0 0 29 2 *"), "2028-02-29T00:00:00Z", "leap day");
        assert_eq!(next("5/20 * * * *"), "2026-12-07T08:25:00Z");
        // Either day rule: the 1st of a month or any Friday.
        assert_eq!(next("0 0 1 * fri"), "2026-12-11T00:00:00Z");
        assert!(Schedule::parse("0 0 30 2 *")
            .unwrap()
            .next_after(NOW)
            .is_none());
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        let e = Schedule::parse("* * * *").unwrap_err().to_string();
        assert!(e.contains("5 fields"), "{e}");
        for (bad, says) in [
            ("60 * * * *", "minute field \"60\" has 60, outside 0-59"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day-of-month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day-of-week"),
            ("*/0 * * * *", "step 0"),
            ("5-1 * * * *", "backwards"),
            ("1,,2 * * * *", "empty item"),
            ("x * * * *", "not a number"),
        ] {
            let e = Schedule::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
