//! Each tenant's own uid/gid range on this node, and the ownership of the files its jobs
//! are given (inputs, volumes) and leave behind (the output layer).
//!
//! Every job with [`paas_api::JobSpec::user_namespace`] runs in a user namespace whose
//! container ids `0..65536` are a range of host ids from `--userns-range`. The range
//! belongs to the job's tenant (its app's permanent number): the same on this node every
//! time, so volumes and the build cache keep their owner, and never another tenant's
//! (as Kubernetes' user namespaces and Podman's `--userns=auto` do). A job of no tenant
//! gets a range of its own, given back when the job is deleted. The allocation is kept in
//! `<state-dir>/userns.json` (written atomically before the job gets the range) and read
//! again at start; entries that no longer fit `--userns-range` are dropped with a
//! warning (their owners get new ranges and their volumes are re-owned on next use).
//!
//! Files: the job's inputs are unpacked by the agent as host root and then given to the
//! range (container id `k` becomes host id `base + k`); a volume whose top directory is
//! not owned by the range's first id is re-owned the same way from the owner it had (a
//! volume made before user namespaces, or under another range); the output layer maps
//! host ids back to container ids, so the image holds `0`, `1000`, … as before.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::config::UsernsRange;
use crate::util::{read_json, write_json_atomic};

/// Ids of one job: container ids `0..RANGE_SIZE` (Docker's and Podman's default).
pub const RANGE_SIZE: u32 = 65_536;
/// The container id of `nobody`, which unmapped owners become.
const NOBODY: u32 = 65_534;
/// The allocation file in the state dir.
pub const STATE_FILE: &str = "userns.json";

/// Errors of the range allocation and of giving files to a range.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error(
        "no uid/gid range left on this node for the job's user namespace: all {total} ranges \
         of --userns-range {range} are taken ({tenants} by apps, {jobs} by jobs of no app); \
         start the agent with a larger --userns-range"
    )]
    Exhausted {
        range: UsernsRange,
        total: u32,
        tenants: usize,
        jobs: usize,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, UsernsError>;

fn io(what: String) -> impl FnOnce(std::io::Error) -> UsernsError {
    move |source| UsernsError::Io { what, source }
}

/// The contents of `userns.json`: the first host id of each owner's range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Saved {
    /// The app's permanent number → first host id.
    #[serde(default)]
    tenants: BTreeMap<u32, u32>,
    /// Job id (jobs of no app) → first host id.
    #[serde(default)]
    jobs: BTreeMap<String, u32>,
}

/// The node's ranges: who has which.
#[derive(Debug)]
pub struct UidRanges {
    path: PathBuf,
    range: UsernsRange,
    saved: Mutex<Saved>,
}

impl UidRanges {
    /// Reads `state_dir/userns.json` (none: nothing allocated yet). Entries outside
    /// `range`, not on a range boundary, or sharing a range with an earlier one are
    /// dropped with a warning.
    pub fn open(state_dir: &Path, range: UsernsRange) -> Result<UidRanges> {
        let path = state_dir.join(STATE_FILE);
        let saved: Saved = match read_json(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
        };
        let mut kept = Saved::default();
        let mut used = std::collections::BTreeSet::new();
        let mut check = |owner: String, base: u32| {
            let fits = base >= range.first
                && (base - range.first).is_multiple_of(RANGE_SIZE)
                && u64::from(base) + u64::from(RANGE_SIZE)
                    <= u64::from(range.first) + u64::from(range.count);
            if !fits {
                tracing::warn!(
                    %owner, base, %range,
                    "the saved uid range is outside --userns-range: it gets a new one"
                );
                return false;
            }
            if !used.insert(base) {
                tracing::warn!(%owner, base, "the saved uid range is taken twice: dropped");
                return false;
            }
            true
        };
        for (tenant, base) in saved.tenants {
            if check(format!("app #{tenant}"), base) {
                kept.tenants.insert(tenant, base);
            }
        }
        for (job, base) in saved.jobs {
            if check(format!("job {job}"), base) {
                kept.jobs.insert(job, base);
            }
        }
        Ok(UidRanges {
            path,
            range,
            saved: Mutex::new(kept),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Saved> {
        self.saved.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many ranges `--userns-range` holds.
    pub fn total(&self) -> u32 {
        self.range.count / RANGE_SIZE
    }

    /// The first host id of the range of `tenant` (or, without one, of job `job`),
    /// allocated and saved on first use. Blocks on the file write: call it from a
    /// blocking context.
    pub fn for_job(&self, tenant: Option<u32>, job: &str) -> Result<u32> {
        let mut saved = self.lock();
        let existing = match tenant {
            Some(t) => saved.tenants.get(&t),
            None => saved.jobs.get(job),
        };
        if let Some(base) = existing {
            return Ok(*base);
        }
        let used: std::collections::BTreeSet<u32> = saved
            .tenants
            .values()
            .chain(saved.jobs.values())
            .copied()
            .collect();
        let base = (0..self.total())
            .map(|k| self.range.first + k * RANGE_SIZE)
            .find(|b| !used.contains(b))
            .ok_or(UsernsError::Exhausted {
                range: self.range,
                total: self.total(),
                tenants: saved.tenants.len(),
                jobs: saved.jobs.len(),
            })?;
        let mut next = saved.clone();
        match tenant {
            Some(t) => next.tenants.insert(t, base),
            None => next.jobs.insert(job.to_string(), base),
        };
        write_json_atomic(&self.path, &next)
            .map_err(io(format!("writing {}", self.path.display())))?;
        *saved = next;
        Ok(base)
    }

    /// Gives back the range of a job of no tenant (nothing for others). Blocks on the
    /// file write.
    pub fn release_job(&self, job: &str) -> Result<()> {
        let mut saved = self.lock();
        if !saved.jobs.contains_key(job) {
            return Ok(());
        }
        let mut next = saved.clone();
        next.jobs.remove(job);
        write_json_atomic(&self.path, &next)
            .map_err(io(format!("writing {}", self.path.display())))?;
        *saved = next;
        Ok(())
    }

    /// Gives back the ranges of jobs (of no tenant) for which `exists` is false: jobs
    /// deleted while the agent was down, or whose delete failed after the range was
    /// saved.
    pub fn keep_jobs(&self, exists: impl Fn(&str) -> bool) -> Result<()> {
        let gone: Vec<String> = self
            .lock()
            .jobs
            .keys()
            .filter(|j| !exists(j))
            .cloned()
            .collect();
        for job in gone {
            self.release_job(&job)?;
        }
        Ok(())
    }
}

/// Maps host id `id` into the range at `to`: from the range at `from` (shifted), kept
/// when already in `to`'s range, anything else (unmapped) becomes `nobody`.
fn shifted(id: u32, from: u32, to: u32) -> u32 {
    if id.wrapping_sub(from) < RANGE_SIZE {
        to + (id - from)
    } else if id.wrapping_sub(to) < RANGE_SIZE {
        id
    } else {
        to + NOBODY
    }
}

/// Gives every file under `dir` (itself last, so an interrupted run is redone from the
/// owner it had) to the range at `to`, mapping owners from the range at `from` (host
/// root's files: `from = 0`). Does not follow symlinks or cross into other
/// filesystems. Returns how many entries changed owner.
pub fn give_tree(dir: &Path, from: u32, to: u32) -> Result<u64> {
    let top = std::fs::symlink_metadata(dir).map_err(io(format!("reading {}", dir.display())))?;
    let mut changed = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).map_err(io(format!("reading {}", d.display())))?;
        for entry in entries {
            let path = entry
                .map_err(io(format!("reading {}", d.display())))?
                .path();
            let meta = std::fs::symlink_metadata(&path)
                .map_err(io(format!("reading {}", path.display())))?;
            if meta.dev() != top.dev() {
                continue;
            }
            changed += give(&path, &meta, from, to)?;
            if meta.is_dir() {
                todo.push(path);
            }
        }
    }
    changed += give(dir, &top, from, to)?;
    Ok(changed)
}

fn give(path: &Path, meta: &std::fs::Metadata, from: u32, to: u32) -> Result<u64> {
    let (uid, gid) = (shifted(meta.uid(), from, to), shifted(meta.gid(), from, to));
    if (uid, gid) == (meta.uid(), meta.gid()) {
        return Ok(0);
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io(format!(
        "giving {} to the job's uid range",
        path.display()
    )))?;
    Ok(1)
}

/// Makes volume `dir` the range's at `to`: unless its top directory is already owned
/// by `to`, every file is re-owned from the range its top directory's owner starts.
pub fn give_volume(dir: &Path, to: u32) -> Result<u64> {
    let meta = std::fs::symlink_metadata(dir).map_err(io(format!("reading {}", dir.display())))?;
    if (meta.uid(), meta.gid()) == (to, to) {
        return Ok(0);
    }
    give_tree(dir, meta.uid(), to)
}

/// The container id of host id `id` in a job whose range starts at `base` (`None`: no
/// user namespace, ids are the container's): for the output layer.
pub fn container_id(id: u32, base: Option<u32>) -> u32 {
    match base {
        None => id,
        Some(b) if id.wrapping_sub(b) < RANGE_SIZE => id - b,
        Some(_) => NOBODY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first: u32, ranges: u32) -> UsernsRange {
        UsernsRange {
            first,
            count: ranges * RANGE_SIZE,
        }
    }

    #[test]
    fn tenants_keep_their_range_jobs_of_no_tenant_get_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let r = range(1 << 20, 4);
        let ranges = UidRanges::open(dir.path(), r).unwrap();
        let a = ranges.for_job(Some(7), "a-1").unwrap();
        assert_eq!(a, 1 << 20);
        assert_eq!(ranges.for_job(Some(7), "a-2").unwrap(), a, "same tenant");
        let b = ranges.for_job(Some(9), "b-1").unwrap();
        let lone = ranges.for_job(None, "lone").unwrap();
        assert_eq!(ranges.for_job(None, "lone").unwrap(), lone);
        let other = ranges.for_job(None, "other").unwrap();
        let all = [a, b, lone, other];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert!(x.abs_diff(*y) >= RANGE_SIZE, "{all:?} overlap");
            }
        }
        match ranges.for_job(Some(10), "c") {
            Err(e @ UsernsError::Exhausted { .. }) => {
                let m = e.to_string();
                assert!(
                    m.contains("all 4 ranges") && m.contains("--userns-range"),
                    "{m}"
                );
            }
            other => panic!("{other:?}"),
        }
        // A released job range goes to the next owner; the file says the same after a
        // restart.
        ranges.release_job("lone").unwrap();
        assert_eq!(ranges.for_job(Some(10), "c").unwrap(), lone);
        let again = UidRanges::open(dir.path(), r).unwrap();
        assert_eq!(again.for_job(Some(7), "x").unwrap(), a);
        assert_eq!(again.for_job(Some(9), "x").unwrap(), b);
        assert_eq!(again.for_job(Some(10), "x").unwrap(), lone);
        assert_eq!(again.for_job(None, "other").unwrap(), other);
        again.keep_jobs(|_| false).unwrap();
        let third = UidRanges::open(dir.path(), r).unwrap();
        assert!(third.lock().jobs.is_empty());
        assert_eq!(third.lock().tenants.len(), 3);
    }

    #[test]
    fn saved_ranges_outside_the_flag_or_twice_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(STATE_FILE),
            r#"{"tenants":{"1":1048576,"2":1114112,"3":1048576,"4":5,"5":1048577},
                "jobs":{"j":2000000000}}"#,
        )
        .unwrap();
        let ranges = UidRanges::open(dir.path(), range(1 << 20, 4)).unwrap();
        let saved = ranges.lock().clone();
        assert_eq!(
            saved.tenants,
            BTreeMap::from([(1, 1 << 20), (2, (1 << 20) + RANGE_SIZE)])
        );
        assert!(saved.jobs.is_empty());
    }

    #[test]
    fn ids_shift_between_ranges_and_back() {
        let (base, old) = (1 << 20, 1 << 21);
        assert_eq!(shifted(0, 0, base), base);
        assert_eq!(shifted(1000, 0, base), base + 1000);
        assert_eq!(shifted(base + 5, 0, base), base + 5, "already in range");
        assert_eq!(shifted(old + 3, old, base), base + 3);
        assert_eq!(shifted(70_000, 0, base), base + NOBODY);
        assert_eq!(container_id(base + 1000, Some(base)), 1000);
        assert_eq!(container_id(0, Some(base)), NOBODY);
        assert_eq!(container_id(1000, None), 1000);
    }
}
