//! What one build may use: the unpacked source size (`--max-source-bytes`), the wall-clock
//! time of the build job (`--build-timeout`), its CPU (`--build-cpu`) and the app's build
//! cache after it (`--max-cache-bytes`). The flags are parsed here into [`BuildLimits`],
//! which the controller's `Settings` carries.

use std::time::Duration;

use clap::Args;

/// Default `--max-source-bytes`: 1 GiB.
pub const DEFAULT_MAX_SOURCE_BYTES: u64 = 1 << 30;
/// Default `--build-timeout`: 15 minutes, as Heroku.
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Default `--build-cpu`: one core (1000 millicores).
pub const DEFAULT_BUILD_CPU: &str = "1";
/// Default `--max-cache-bytes`: 2 GiB.
pub const DEFAULT_MAX_CACHE_BYTES: u64 = 2 << 30;

/// The build flags of the serving controller.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Largest source a push may unpack to, in bytes (the `git archive` tar: file
    /// contents plus 512-byte headers), counted while it streams (1 GiB).
    #[arg(long, default_value_t = DEFAULT_MAX_SOURCE_BYTES)]
    pub max_source_bytes: u64,
    /// Longest a build job may run, wall clock: `900`, `900s`, `15m`, `1h` (15m). The job
    /// is stopped and the push fails when it passes.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub build_timeout: Duration,
    /// CPU a build job may use: cores (`1`, `0.5`) or millicores (`500m`); `0` for no
    /// limit (1 core).
    #[arg(long, default_value = DEFAULT_BUILD_CPU, value_parser = parse_cpu)]
    pub build_cpu: u32,
    /// Largest an app's build cache may be after a build, in bytes; a bigger one is
    /// emptied and the next build starts cold (2 GiB). 0: no limit.
    #[arg(long, default_value_t = DEFAULT_MAX_CACHE_BYTES)]
    pub max_cache_bytes: u64,
}

/// What a build may use (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildLimits {
    /// Most bytes of the pushed source's tar.
    pub max_source_bytes: u64,
    /// Most wall-clock time of the build job.
    pub timeout: Duration,
    /// The build job's CPU quota in millicores; None: no quota.
    pub cpu_millicores: Option<u32>,
    /// Most bytes of the app's cache volume after a build; None: no limit.
    pub max_cache_bytes: Option<u64>,
}

impl Default for BuildLimits {
    fn default() -> Self {
        BuildLimits {
            max_source_bytes: DEFAULT_MAX_SOURCE_BYTES,
            timeout: DEFAULT_BUILD_TIMEOUT,
            cpu_millicores: Some(1000),
            max_cache_bytes: Some(DEFAULT_MAX_CACHE_BYTES),
        }
    }
}

impl From<&LimitArgs> for BuildLimits {
    fn from(args: &LimitArgs) -> Self {
        BuildLimits {
            max_source_bytes: args.max_source_bytes,
            timeout: args.build_timeout,
            cpu_millicores: (args.build_cpu > 0).then_some(args.build_cpu),
            max_cache_bytes: (args.max_cache_bytes > 0).then_some(args.max_cache_bytes),
        }
    }
}

/// `900`, `900s`, `15m`, `1h`, `1h30m` → a duration of at least one second.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {text:?}: give seconds (`900`) or a number with s, m or h \
             (`15m`, `1h30m`)"
        )
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() {
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = total.checked_add(n).ok_or_else(bad)?;
    }
    if total == 0 {
        return Err(format!(
            "invalid duration {text:?}: it must be at least 1 s"
        ));
    }
    Ok(Duration::from_secs(total))
}

/// `1`, `0.5`, `1.25`, `500m` → millicores (`0` is no limit).
pub fn parse_cpu(text: &str) -> Result<u32, String> {
    let bad = || {
        format!(
            "invalid CPU amount {text:?}: give cores (`1`, `0.5`) or millicores (`500m`), \
             `0` for no limit"
        )
    };
    let text = text.trim();
    let millicores: u64 = if let Some(m) = text.strip_suffix('m') {
        m.parse().map_err(|_| bad())?
    } else {
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && frac.is_empty() || frac.len() > 3 {
            return Err(bad());
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let frac_m: u64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<3}").parse().map_err(|_| bad())?
        };
        whole
            .checked_mul(1000)
            .and_then(|w| w.checked_add(frac_m))
            .ok_or_else(bad)?
    };
    if millicores > 0 && millicores < 10 {
        return Err(format!(
            "invalid CPU amount {text:?}: the smallest quota is 10m (1 ms per 100 ms)"
        ));
    }
    u32::try_from(millicores).map_err(|_| bad())
}

/// A size for people: `1536 MiB`, `2 GiB`, `12 KiB`, `300 bytes`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size {
            return if n.is_multiple_of(size) || n >= 100 * size {
                format!("{} {unit}", n / size)
            } else {
                format!("{:.1} {unit}", n as f64 / size as f64)
            };
        }
    }
    format!("{n} bytes")
}

/// A duration for people: `15 min`, `90 s`, `1 h`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("900"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        for bad in [
            "",
            "0",
            "0s",
            "m",
            "15 m",
            "1.5m",
            "-1",
            "15x",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("0").unwrap_err().contains("at least 1 s"));
    }

    #[test]
    fn cpu_amounts_parse() {
        assert_eq!(parse_cpu("1"), Ok(1000));
        assert_eq!(parse_cpu("0.5"), Ok(500));
        assert_eq!(parse_cpu(".25"), Ok(250));
        assert_eq!(parse_cpu("1.125"), Ok(1125));
        assert_eq!(parse_cpu("500m"), Ok(500));
        assert_eq!(parse_cpu("0"), Ok(0));
        for bad in ["", ".", "1.2345", "abc", "5m", "1e3", "-1", "99999999"] {
            assert!(parse_cpu(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn people_read_sizes_and_durations() {
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(human_bytes(1 << 20), "1 MiB");
        assert_eq!(human_bytes(300), "300 bytes");
        assert_eq!(human_duration(Duration::from_secs(900)), "15 min");
        assert_eq!(human_duration(Duration::from_secs(90)), "90 s");
        assert_eq!(human_duration(Duration::from_secs(3600)), "1 h");
    }

    #[test]
    fn flags_become_limits() {
        let args = LimitArgs {
            max_source_bytes: 5,
            build_timeout: Duration::from_secs(7),
            build_cpu: 0,
            max_cache_bytes: 0,
        };
        let limits = BuildLimits::from(&args);
        assert_eq!(limits.cpu_millicores, None);
        assert_eq!(limits.max_cache_bytes, None);
        assert_eq!(limits.max_source_bytes, 5);
    }
}
