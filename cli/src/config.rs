//! Where the CLI finds the controller and its token.
//!
//! Each setting comes from the first of: the command-line flag (`--url`, `--token`), the
//! environment (`PAAS_URL`, `PAAS_TOKEN`; clap reads both into the flags), the config file
//! `~/.config/paas/config.json` (`$XDG_CONFIG_HOME/paas/config.json` when that is set),
//! and for the URL the default `http://127.0.0.1:8080`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The controller a fresh install listens on.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Problems reading or writing the config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot find the config folder: neither XDG_CONFIG_HOME nor HOME is set")]
    NoHome,
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the config file {path} is not valid JSON ({source}); fix it, or delete it and run \
         `paas login` again"
    )]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write the config file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The contents of `config.json`: `{"url": "...", "token": "..."}`, both optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The settings one command runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Base URL of the controller, without a trailing slash.
    pub url: String,
    /// `None` when neither flag, environment nor file gave one (not logged in).
    pub token: Option<String>,
}

impl Settings {
    /// Picks each setting from the flag (or environment, which clap folds into the flag),
    /// then the file, then the default. Empty values count as unset.
    pub fn resolve(flag_url: Option<&str>, flag_token: Option<&str>, file: &FileConfig) -> Self {
        let pick = |flag: Option<&str>, file: &Option<String>| {
            flag.filter(|v| !v.trim().is_empty())
                .map(str::to_string)
                .or_else(|| file.clone().filter(|v| !v.trim().is_empty()))
        };
        let url = pick(flag_url, &file.url).unwrap_or_else(|| DEFAULT_URL.to_string());
        Settings {
            url: url.trim().trim_end_matches('/').to_string(),
            token: pick(flag_token, &file.token).map(|t| t.trim().to_string()),
        }
    }
}

/// `$XDG_CONFIG_HOME/paas/config.json`, else `$HOME/.config/paas/config.json`.
pub fn config_path() -> Result<PathBuf, ConfigError> {
    let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let base = match (non_empty("XDG_CONFIG_HOME"), non_empty("HOME")) {
        (Some(xdg), _) => PathBuf::from(xdg),
        (None, Some(home)) => PathBuf::from(home).join(".config"),
        (None, None) => return Err(ConfigError::NoHome),
    };
    Ok(base.join("paas").join("config.json"))
}

/// Reads the config file; a missing file (or no home folder) is an empty config.
pub fn load() -> Result<FileConfig, ConfigError> {
    let Ok(path) = config_path() else {
        return Ok(FileConfig::default());
    };
    load_from(&path)
}

fn load_from(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the config file readable by its owner only (0600, folder 0700), replacing it
/// atomically. Returns the path written.
pub fn save(config: &FileConfig) -> Result<PathBuf, ConfigError> {
    let path = config_path()?;
    save_to(&path, config)?;
    Ok(path)
}

fn save_to(path: &Path, config: &FileConfig) -> Result<(), ConfigError> {
    let write_err = |source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(write_err)?;
    let tmp = path.with_extension("json.tmp");
    let _ = fs::remove_file(&tmp);
    let mut json = serde_json::to_string_pretty(config).expect("config serializes");
    json.push('\n');
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(write_err)?;
    // The mode above is filtered by the umask; make sure it is exactly 0600.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(write_err)?;
    file.write_all(json.as_bytes()).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    fs::rename(&tmp, path).map_err(write_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(url: Option<&str>, token: Option<&str>) -> FileConfig {
        FileConfig {
            url: url.map(Into::into),
            token: token.map(Into::into),
        }
    }

    #[test]
    fn flags_beat_file_beats_default() {
        let f = file(Some("http://file:1/"), Some("file-token"));
        let s = Settings::resolve(Some("http://flag:2/"), Some("flag-token"), &f);
        assert_eq!(s.url, "http://flag:2");
        assert_eq!(s.token.as_deref(), Some("flag-token"));

        let s = Settings::resolve(None, Some(""), &f);
        assert_eq!(s.url, "http://file:1");
        assert_eq!(s.token.as_deref(), Some("file-token"));

        let s = Settings::resolve(None, None, &FileConfig::default());
        assert_eq!(s.url, DEFAULT_URL);
        assert_eq!(s.token, None);
    }

    #[test]
    fn save_then_load_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paas").join("config.json");
        let config = file(Some("http://x:1"), Some("t0k"));
        save_to(&path, &config).unwrap();
        save_to(&path, &config).unwrap(); // overwriting works too
        assert_eq!(load_from(&path).unwrap(), config);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn missing_file_is_empty_and_bad_json_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert_eq!(load_from(&path).unwrap(), FileConfig::default());
        fs::write(&path, "{not json").unwrap();
        let err = load_from(&path).unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("paas login"),
            "{err}"
        );
    }
}
