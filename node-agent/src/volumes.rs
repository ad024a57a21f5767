//! Named volumes (`state_dir/volumes/<name>/`, made by the first job that mounts one) and
//! their size limit: `POST /v1/volumes/{name}/size-limit {"max_bytes": N}` measures the
//! volume ([`crate::du`]) and empties it when it holds more than N bytes. The controller
//! asks this after every build for the app's build cache (`--max-cache-bytes`).
//!
//! Emptying renames the directory away first (`volumes/.trash-…`, removed at once and
//! again by the next call if the agent stopped meanwhile), so the next job that mounts the
//! volume finds a fresh empty one even while the old files are being deleted. A volume
//! that a job not yet final mounts is refused (409): its files are in use.

use std::path::PathBuf;
use std::sync::Arc;

use paas_api::VolumeUsage;

use crate::agent::Agent;
use crate::jobs::is_final;

/// Errors of a volume operation; the HTTP layer maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error(
        "invalid volume name {0:?}: lowercase letters, digits, `_`, `.` and `-`, starting \
         with a letter or digit"
    )]
    InvalidName(String),
    #[error("volume {name} is mounted by job {job}, which is not finished: try again after it")]
    InUse { name: String, job: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// The name rule of `JobSpec.volumes[].name`.
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        && name.len() <= 128
}

/// Measures volume `name` and empties it when it holds more than `max_bytes`.
pub async fn size_limit(
    agent: &Arc<Agent>,
    name: &str,
    max_bytes: u64,
) -> Result<VolumeUsage, VolumeError> {
    if !valid_name(name) {
        return Err(VolumeError::InvalidName(name.to_string()));
    }
    let busy = agent.jobs.all().into_iter().find(|job| {
        !is_final(job.status().state) && job.spec.volumes.iter().any(|v| v.name == name)
    });
    if let Some(job) = busy {
        return Err(VolumeError::InUse {
            name: name.to_string(),
            job: job.spec.id.clone(),
        });
    }
    let root = agent.config.state_dir.join("volumes");
    let name2 = name.to_string();
    tokio::task::spawn_blocking(move || limit_blocking(&root, &name2, max_bytes))
        .await
        .map_err(|e| VolumeError::Io {
            what: format!("measuring volume {name}"),
            source: std::io::Error::other(e),
        })?
}

fn limit_blocking(
    root: &std::path::Path,
    name: &str,
    max: u64,
) -> Result<VolumeUsage, VolumeError> {
    remove_trash(root);
    let dir = root.join(name);
    let bytes = crate::du::disk_usage(&dir).map_err(|source| VolumeError::Io {
        what: format!("measuring {}", dir.display()),
        source,
    })?;
    let emptied = bytes > max;
    if emptied {
        let trash: PathBuf = root.join(format!(".trash-{}", crate::util::unique()));
        std::fs::rename(&dir, &trash).map_err(|source| VolumeError::Io {
            what: format!("moving {} away", dir.display()),
            source,
        })?;
        tracing::info!(
            volume = name,
            bytes,
            max,
            "volume over its size limit: emptied (the next job that mounts it gets an empty one)"
        );
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            tracing::warn!(volume = name, "removing {}: {e}", trash.display());
        }
    }
    Ok(VolumeUsage {
        name: name.to_string(),
        bytes,
        emptied,
    })
}

/// Removes what an earlier emptying left when the agent stopped half-way.
fn remove_trash(root: &std::path::Path) {
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        if entry.file_name().as_encoded_bytes().starts_with(b".trash-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_job_spec_rule() {
        assert!(valid_name("cache-12"));
        assert!(valid_name("a.b_c-d"));
        for bad in ["", ".trash-x", "../x", "A", "a/b", &"a".repeat(129)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_volume_over_its_limit_is_emptied_and_one_under_it_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("cache-1/deep")).unwrap();
        std::fs::write(root.join("cache-1/deep/blob"), vec![7u8; 300_000]).unwrap();
        let kept = limit_blocking(root, "cache-1", 10 << 20).unwrap();
        assert!(!kept.emptied && kept.bytes >= 300_000, "{kept:?}");
        assert!(root.join("cache-1/deep/blob").is_file());
        let emptied = limit_blocking(root, "cache-1", 100_000).unwrap();
        assert!(emptied.emptied, "{emptied:?}");
        assert!(!root.join("cache-1").exists());
        let names: Vec<_> = std::fs::read_dir(root).unwrap().flatten().collect();
        assert!(names.is_empty(), "no trash left: {names:?}");
        // A volume no job made yet holds nothing.
        let none = limit_blocking(root, "cache-2", 0).unwrap();
        assert_eq!((none.bytes, none.emptied), (0, false));
    }
}
