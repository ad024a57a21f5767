//! Limits on config var values, shared so the API, the dashboard and the CLI refuse the
//! same values with the same words (issue 14, "Values that break later": a value with a
//! NUL byte, or of 1 MiB, was stored, and every later release failed to start).
//!
//! As Heroku: one value at most 32 KB ([`MAX_VALUE_BYTES`]), all of an app's config at
//! most 64 KB ([`MAX_TOTAL_BYTES`], keys and values). No NUL byte: a process environment
//! cannot hold one. Keys are checked by [`crate::names::validate_config_key`].

use std::collections::BTreeMap;

/// The largest value of one config var, in bytes (32 KB).
pub const MAX_VALUE_BYTES: usize = 32 * 1024;
/// The largest total of an app's config vars, keys and values, in bytes (64 KB).
pub const MAX_TOTAL_BYTES: usize = 64 * 1024;

/// Error code (422) of a value with a NUL byte.
pub const INVALID_VALUE: &str = "invalid_config_value";
/// Error code (422) of a value or a whole config over its limit.
pub const TOO_LARGE: &str = "config_too_large";

/// Why a config change is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigVarError {
    /// The value of `key` has a NUL byte.
    Nul { key: String },
    /// The value of `key` is `bytes` long, over [`MAX_VALUE_BYTES`].
    ValueTooLarge { key: String, bytes: usize },
    /// The config would total `bytes`, over [`MAX_TOTAL_BYTES`]; `key` is the largest
    /// value being set.
    TotalTooLarge { key: String, bytes: usize },
}

impl ConfigVarError {
    /// The stable error code of the API's 422 answer.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigVarError::Nul { .. } => INVALID_VALUE,
            ConfigVarError::ValueTooLarge { .. } | ConfigVarError::TotalTooLarge { .. } => {
                TOO_LARGE
            }
        }
    }

    /// The key the error is about.
    pub fn key(&self) -> &str {
        match self {
            ConfigVarError::Nul { key }
            | ConfigVarError::ValueTooLarge { key, .. }
            | ConfigVarError::TotalTooLarge { key, .. } => key,
        }
    }
}

impl std::fmt::Display for ConfigVarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigVarError::Nul { key } => write!(
                f,
                "the value of {key} contains a NUL byte, which no process environment can \
                 hold: remove it (put binary data in a file of the app, or base64 it)"
            ),
            ConfigVarError::ValueTooLarge { key, bytes } => write!(
                f,
                "the value of {key} is {bytes} bytes, over the limit of 32 KB ({MAX_VALUE_BYTES} \
                 bytes) for one config var: keep large data in a file of the app or a database"
            ),
            ConfigVarError::TotalTooLarge { key, bytes } => write!(
                f,
                "setting {key} would make the app's config vars {bytes} bytes (keys and \
                 values), over the limit of 64 KB ({MAX_TOTAL_BYTES} bytes): unset vars it \
                 no longer needs with `paas config:unset`"
            ),
        }
    }
}

impl std::error::Error for ConfigVarError {}

/// Checks one value: no NUL byte, at most [`MAX_VALUE_BYTES`].
pub fn check_value(key: &str, value: &str) -> Result<(), ConfigVarError> {
    if value.as_bytes().contains(&0) {
        return Err(ConfigVarError::Nul { key: key.into() });
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(ConfigVarError::ValueTooLarge {
            key: key.into(),
            bytes: value.len(),
        });
    }
    Ok(())
}

/// The size that counts against [`MAX_TOTAL_BYTES`]: every key and value.
pub fn total_bytes<'a>(vars: impl IntoIterator<Item = (&'a String, &'a String)>) -> usize {
    vars.into_iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// Checks `changes` (`Some`: set, `None`: unset) against the app's `current` config: every
/// value set is valid, and the config they make stays within [`MAX_TOTAL_BYTES`]. A change
/// that only unsets is always allowed (it is how an app over the limit gets back under).
pub fn check_change(
    current: &BTreeMap<String, String>,
    changes: &BTreeMap<String, Option<String>>,
) -> Result<(), ConfigVarError> {
    for (key, value) in changes {
        if let Some(v) = value {
            check_value(key, v)?;
        }
    }
    let Some((largest, _)) = changes
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v.len())))
        .max_by_key(|(_, len)| *len)
    else {
        return Ok(());
    };
    let mut after = current.clone();
    for (key, value) in changes {
        match value {
            Some(v) => {
                after.insert(key.clone(), v.clone());
            }
            None => {
                after.remove(key);
            }
        }
    }
    let bytes = total_bytes(&after);
    if bytes > MAX_TOTAL_BYTES {
        return Err(ConfigVarError::TotalTooLarge {
            key: largest.clone(),
            bytes,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    #[test]
    fn values_with_nul_or_over_32_kb_are_refused() {
        assert!(check_value("A", "ok").is_ok());
        assert!(check_value("A", &"x".repeat(MAX_VALUE_BYTES)).is_ok());
        let e = check_value("BIG", &"x".repeat(MAX_VALUE_BYTES + 1)).unwrap_err();
        assert_eq!(e.code(), TOO_LARGE);
        assert_eq!(e.key(), "BIG");
        assert!(e.to_string().contains("BIG is 32769 bytes"), "{e}");
        assert!(e.to_string().contains("32 KB"), "{e}");
        let e = check_value("N", "a\0b").unwrap_err();
        assert_eq!(e.code(), INVALID_VALUE);
        assert!(e.to_string().contains("N contains a NUL byte"), "{e}");
    }

    #[test]
    fn the_total_is_capped_but_unsetting_is_always_allowed() {
        let big = "x".repeat(30 * 1024);
        let current: BTreeMap<String, String> =
            [("A".into(), big.clone()), ("B".into(), big.clone())].into();
        assert!(check_change(&current, &set(&[("C", "small")])).is_ok());
        let e = check_change(&current, &set(&[("C", &big), ("D", "x")])).unwrap_err();
        assert_eq!(e.code(), TOO_LARGE);
        assert_eq!(e.key(), "C");
        assert!(e.to_string().contains("64 KB"), "{e}");
        // Replacing a value counts the new one only.
        assert!(check_change(&current, &set(&[("A", &big)])).is_ok());
        // Over the limit already (an older controller stored it): unsets pass, sets not.
        let over: BTreeMap<String, String> = [
            ("A".into(), big.clone()),
            ("B".into(), big.clone()),
            ("C".into(), big.clone()),
        ]
        .into();
        let unset = BTreeMap::from([("A".to_string(), None)]);
        assert!(check_change(&over, &unset).is_ok());
        assert!(check_change(&over, &set(&[("D", "x")])).is_err());
    }
}
