//! The per-app layer cache of Dockerfile builds: cache key → the layer that step made,
//! kept in `DATA/dockerfile-cache/<app id>.json` (keyed by the app's permanent number, so a
//! rename keeps it and a new app under a destroyed app's name starts without one; destroy
//! deletes it). A hit whose blob the registry no longer has (garbage collected) is a miss.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::image::Layer;

/// Most entries kept per app; the oldest go first.
const MAX_ENTRIES: usize = 2000;

/// The cache file of the app numbered `app_id`.
pub fn path(data_dir: &Path, app_id: u32) -> PathBuf {
    data_dir
        .join("dockerfile-cache")
        .join(format!("{app_id}.json"))
}

/// Entries in insertion order (`n` counts up), so the oldest can go first.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct LayerCache {
    #[serde(default)]
    next: u64,
    #[serde(default)]
    entries: BTreeMap<String, (u64, Layer)>,
}

impl LayerCache {
    /// Reads the cache (empty when missing or unreadable).
    pub fn load(path: &Path) -> LayerCache {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn get(&self, key: &str) -> Option<&Layer> {
        self.entries.get(key).map(|(_, l)| l)
    }

    pub fn insert(&mut self, key: String, layer: Layer) {
        self.next += 1;
        self.entries.insert(key, (self.next, layer));
        while self.entries.len() > MAX_ENTRIES {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (n, _))| *n)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.entries.remove(&k);
            }
        }
    }

    /// Writes the cache (owner-only, replaced whole).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_save_and_the_oldest_go_first() {
        let d = tempfile::tempdir().unwrap();
        let p = path(d.path(), 7);
        let layer = |n: u64| Layer {
            digest: format!("sha256:{n}"),
            diff_id: String::new(),
            size: n,
            media_type: String::new(),
        };
        let mut c = LayerCache::load(&p);
        for n in 0..(MAX_ENTRIES as u64 + 1) {
            c.insert(format!("k{n}"), layer(n));
        }
        c.save(&p).unwrap();
        let c = LayerCache::load(&p);
        assert!(c.get("k0").is_none());
        assert_eq!(c.get("k1").unwrap().size, 1);
        assert_eq!(
            c.get(&format!("k{MAX_ENTRIES}")).unwrap().size,
            MAX_ENTRIES as u64
        );
    }
}
