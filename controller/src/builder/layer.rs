//! Reads the files the release needs (`app/Procfile`, `app/.paas/release.yml`,
//! `app/.paas/env`, `app/app.json`) out of the app layer a build pushed (a gzip tar whose entries start
//! with `app/`).

use std::io::Read;
use std::path::Path;

/// Files larger than this are not a Procfile.
const MAX_FILE: u64 = 1024 * 1024;

/// A layer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("reading the app layer {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name} in the app layer is larger than 1 MiB")]
    TooLarge { name: String },
}

/// The texts of `app/Procfile` and `app/.paas/release.yml` in a gzip tar layer, each
/// `None` when absent.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReleaseFiles {
    pub procfile: Option<String>,
    pub release_yml: Option<String>,
    /// `KEY=VALUE` lines the builder found the app's `.profile.d/*.sh` scripts export.
    pub env: Option<String>,
    /// `app/app.json` (health checks).
    pub app_json: Option<String>,
}

/// Scans the layer once for both files.
pub fn release_files(path: &Path) -> Result<ReleaseFiles, LayerError> {
    let err = |source| LayerError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut found = ReleaseFiles::default();
    for entry in archive.entries().map_err(err)? {
        let mut entry = entry.map_err(err)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(err)?.to_string_lossy().into_owned();
        let name = name.trim_start_matches("./").trim_start_matches('/');
        let slot = match name {
            "app/Procfile" => &mut found.procfile,
            "app/.paas/release.yml" => &mut found.release_yml,
            "app/.paas/env" => &mut found.env,
            "app/app.json" => &mut found.app_json,
            _ => continue,
        };
        if entry.size() > MAX_FILE {
            return Err(LayerError::TooLarge {
                name: name.to_string(),
            });
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(err)?;
        *slot = Some(String::from_utf8_lossy(&bytes).into_owned());
    }
    Ok(found)
}

/// The valid `KEY=VALUE` lines of `.paas/env` (keys `[A-Za-z_][A-Za-z0-9_]*`); others are
/// skipped.
pub fn env_entries(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| {
            let Some((key, _)) = line.split_once('=') else {
                return false;
            };
            let mut bytes = key.bytes();
            matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn layer(files: &[(&str, &str)]) -> tempfile::NamedTempFile {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, text) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            tar.append_data(&mut h, name, text.as_bytes()).unwrap();
        }
        let tar = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&gz.finish().unwrap()).unwrap();
        file
    }

    #[test]
    fn finds_both_files() {
        let f = layer(&[
            ("app/index.html", "<h1>x</h1>"),
            ("app/Procfile", "web: x\n"),
            ("./app/.paas/release.yml", "---\n"),
            ("app/.paas/env", "PATH=/app/.venv/bin:/bin\n"),
            ("app/sub/Procfile", "not this one"),
        ]);
        let found = release_files(f.path()).unwrap();
        assert_eq!(found.env.as_deref(), Some("PATH=/app/.venv/bin:/bin\n"));
        assert_eq!(found.procfile.as_deref(), Some("web: x\n"));
        assert_eq!(found.release_yml.as_deref(), Some("---\n"));
    }

    #[test]
    fn missing_files_are_none_and_garbage_is_an_error() {
        let f = layer(&[("app/index.html", "x")]);
        assert_eq!(release_files(f.path()).unwrap(), ReleaseFiles::default());
        let mut junk = tempfile::NamedTempFile::new().unwrap();
        junk.write_all(b"not gzip").unwrap();
        assert!(release_files(junk.path()).is_err());
    }

    #[test]
    fn env_entries_keep_only_valid_assignments() {
        let text = "PATH=/app/.venv/bin:/usr/bin\nnot a var\n1X=y\nA-B=c\n_OK=a=b\n=x\n";
        assert_eq!(
            env_entries(text),
            ["PATH=/app/.venv/bin:/usr/bin", "_OK=a=b"]
        );
    }
}
