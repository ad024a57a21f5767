//! Process sizes: the memory limit and the CPU each process of a formation gets. Named
//! sizes (Heroku style) or a memory amount (`768M`, `1G`, `1.5G`), shared by the
//! controller (which applies them) and the CLI (which checks them before sending).
//!
//! CPU follows memory, as Heroku's dyno table does: a size's [`Cpu`] is a CFS quota (the
//! most CPU time a process may use, in thousandths of a core) and a `cpu.shares` weight
//! (how CPU is split when processes compete), both in proportion to memory (a core and
//! 1024 shares per 512 MiB), the quota within the bounds of [`cpu`].

/// The named sizes and their memory in bytes, smallest first.
pub const NAMED: &[(&str, u64)] = &[
    ("basic", 256 * MIB),
    ("standard-1x", 512 * MIB),
    ("standard-2x", 1024 * MIB),
    ("performance-m", 2560 * MIB),
    ("performance-l", 14 * 1024 * MIB),
];

/// Older names still accepted: `performance` is `performance-m`.
const ALIASES: &[(&str, u64)] = &[("performance", 2560 * MIB)];

/// The CPU of a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpu {
    /// The CFS quota in thousandths of a core (`1000` = one core's time per period).
    pub millicores: u32,
    /// The `cpu.shares` weight (1024 = one standard-1x process).
    pub shares: u64,
}

/// The least and most CPU a memory amount gets.
const MIN_MILLICORES: u32 = 250;
const MAX_MILLICORES: u32 = 8000;

/// The size a formation has when none was set (`standard-1x`, 512 MiB).
pub const DEFAULT_BYTES: u64 = 512 * MIB;
/// The smallest memory a process may get.
pub const MIN_BYTES: u64 = 64 * MIB;
/// The largest memory a process may get.
pub const MAX_BYTES: u64 = 16 * 1024 * MIB;

const MIB: u64 = 1024 * 1024;

/// Parses a size: a name from [`NAMED`] or a number with `M` or `G` (MiB/GiB, `1.5G`
/// allowed), between [`MIN_BYTES`] and [`MAX_BYTES`]. The error says what is accepted.
pub fn parse(size: &str) -> Result<u64, String> {
    let s = size.trim();
    if let Some((_, bytes)) = NAMED
        .iter()
        .chain(ALIASES)
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
    {
        return Ok(*bytes);
    }
    let bad = || {
        format!(
            "size {size:?} is not a size: use one of {} or a memory amount like 768M or 1.5G \
             (between 64M and 16G)",
            NAMED
                .iter()
                .map(|(n, b)| format!("{n} ({})", display(*b)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let upper = s.to_ascii_uppercase();
    let upper = upper.strip_suffix('B').unwrap_or(&upper);
    let (num, unit) = if let Some(n) = upper.strip_suffix('M') {
        (n, MIB)
    } else if let Some(n) = upper.strip_suffix('G') {
        (n, 1024 * MIB)
    } else {
        return Err(bad());
    };
    let value: f64 = num.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value <= 0.0 {
        return Err(bad());
    }
    let bytes = (value * unit as f64).round() as u64;
    if !(MIN_BYTES..=MAX_BYTES).contains(&bytes) {
        return Err(bad());
    }
    // Whole MiB only: cgroups take bytes, but a fraction of a MiB is surely a typo.
    Ok(bytes / MIB * MIB)
}

/// The CPU of a process with `bytes` of memory: a core and 1024 shares per 512 MiB, the
/// quota between a quarter core and 8 cores (`basic` half a core, `standard-1x` one,
/// `standard-2x` two, `performance-m` five, `performance-l` eight).
pub fn cpu(bytes: u64) -> Cpu {
    let mib = bytes / MIB;
    let millicores = (mib.saturating_mul(1000) / 512)
        .clamp(u64::from(MIN_MILLICORES), u64::from(MAX_MILLICORES)) as u32;
    Cpu {
        millicores,
        shares: (mib.saturating_mul(1024) / 512).clamp(2, 262_144),
    }
}

/// How a size reads: its name when it is a named size, else `768M` / `2G`.
pub fn name(bytes: u64) -> String {
    NAMED
        .iter()
        .find(|(_, b)| *b == bytes)
        .map_or_else(|| display(bytes), |(n, _)| n.to_string())
}

/// `768M`, `1G`, `2.5G`.
pub fn display(bytes: u64) -> String {
    let mib = bytes / MIB;
    if mib >= 1024 && mib.is_multiple_of(1024) {
        format!("{}G", mib / 1024)
    } else if mib >= 1024 && mib.is_multiple_of(512) {
        format!("{}.5G", mib / 1024)
    } else {
        format!("{mib}M")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_sizes_and_amounts_parse() {
        assert_eq!(parse("basic"), Ok(256 * MIB));
        assert_eq!(parse("Standard-2X"), Ok(1024 * MIB));
        assert_eq!(parse("768M"), Ok(768 * MIB));
        assert_eq!(parse("512m"), Ok(512 * MIB));
        assert_eq!(parse("1.5G"), Ok(1536 * MIB));
        assert_eq!(parse("2GB"), Ok(2048 * MIB));
        assert_eq!(parse("performance-m"), Ok(2560 * MIB));
        assert_eq!(parse("performance"), Ok(2560 * MIB), "the older name");
        assert_eq!(parse("performance-l"), Ok(14 * 1024 * MIB));
    }

    #[test]
    fn sizes_carry_cpu_that_grows_with_memory() {
        assert_eq!(
            cpu(512 * MIB),
            Cpu {
                millicores: 1000,
                shares: 1024
            }
        );
        assert_eq!(cpu(parse("basic").unwrap()).millicores, 500);
        assert_eq!(cpu(parse("standard-2x").unwrap()).millicores, 2000);
        assert_eq!(cpu(parse("performance-m").unwrap()).millicores, 5000);
        assert_eq!(cpu(parse("performance-l").unwrap()).millicores, 8000);
        assert_eq!(cpu(parse("performance-l").unwrap()).shares, 28672);
        assert_eq!(
            cpu(768 * MIB),
            Cpu {
                millicores: 1500,
                shares: 1536
            }
        );
        assert_eq!(cpu(64 * MIB).millicores, 250, "at least a quarter core");
        assert_eq!(cpu(16 * 1024 * MIB).millicores, 8000, "at most 8 cores");
        let mut last = cpu(MIN_BYTES);
        for mib in (64..=16 * 1024).step_by(64) {
            let now = cpu(mib * MIB);
            assert!(
                now.millicores >= last.millicores && now.shares >= last.shares,
                "{mib}M"
            );
            last = now;
        }
    }

    #[test]
    fn bad_sizes_say_what_is_accepted() {
        for bad in ["", "huge", "0M", "-1G", "10K", "32M", "17G", "NaNG", "1e9M"] {
            let e = parse(bad).unwrap_err();
            assert!(
                e.contains("standard-1x") && e.contains("768M"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn sizes_read_back_by_name() {
        assert_eq!(name(512 * MIB), "standard-1x");
        assert_eq!(name(768 * MIB), "768M");
        assert_eq!(name(3 * 1024 * MIB), "3G");
        assert_eq!(display(2560 * MIB), "2.5G");
        assert_eq!(name(2560 * MIB), "performance-m");
        assert_eq!(parse(&name(768 * MIB)), Ok(768 * MIB));
    }
}
