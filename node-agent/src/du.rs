//! Disk usage of a directory tree, as `du -s` counts it: the blocks allocated to every
//! inode under it (directories included), each hard-linked inode once. Symlinks are not
//! followed and other filesystems mounted inside are not entered, so a hostile tree (a
//! build cache, an image layer) can only be measured, never make the walk leave it.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes allocated on disk to `root` and everything under it. A missing `root` is 0.
pub fn disk_usage(root: &Path) -> io::Result<u64> {
    Ok(disk_usage_bounded(root, u64::MAX)?.unwrap_or(u64::MAX))
}

/// [`disk_usage`], but gives up (`None`) after `max_entries` directory entries, so a tree
/// of millions of files costs a bounded walk (a measurement that runs again and again).
pub fn disk_usage_bounded(root: &Path, max_entries: u64) -> io::Result<Option<u64>> {
    let mut entries_seen = 0u64;
    let meta = match std::fs::symlink_metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(0)),
        Err(e) => return Err(e),
    };
    let dev = meta.dev();
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut total = meta.blocks() * 512;
    let mut dirs = Vec::new();
    if meta.is_dir() {
        dirs.push(root.to_path_buf());
    }
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // Removed meanwhile (a job's cache being emptied, a layer pruned).
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            entries_seen += 1;
            if entries_seen > max_entries {
                return Ok(None);
            }
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if meta.dev() != dev {
                continue;
            }
            if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            total = total.saturating_add(meta.blocks() * 512);
            if meta.is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    Ok(Some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_blocks_once_per_inode_and_follows_no_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/file"), vec![1u8; 100_000]).unwrap();
        let one = disk_usage(&root).unwrap();
        assert!(one >= 100_000, "{one}");
        std::fs::hard_link(root.join("a/b/file"), root.join("a/link")).unwrap();
        assert_eq!(disk_usage(&root).unwrap(), one, "a hard link adds nothing");
        // A symlink to a big tree outside adds only itself.
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("big"), vec![1u8; 1_000_000]).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
        assert!(disk_usage(&root).unwrap() < one + 10_000);
        assert_eq!(disk_usage(&dir.path().join("missing")).unwrap(), 0);
    }

    #[test]
    fn a_bounded_walk_gives_up_past_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..10 {
            std::fs::write(dir.path().join(format!("f{i}")), b"x").unwrap();
        }
        assert_eq!(disk_usage_bounded(dir.path(), 5).unwrap(), None);
        assert_eq!(
            disk_usage_bounded(dir.path(), 10).unwrap(),
            Some(disk_usage(dir.path()).unwrap())
        );
    }
}
