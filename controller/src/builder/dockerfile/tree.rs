//! The names of an image's filesystem (what each path is: directory, file, or symlink and
//! its target), from its layers with whiteouts applied, and path resolution inside it.
//!
//! Docker and BuildKit resolve a COPY destination's and a WORKDIR's parents inside the
//! image's root: bookworm's `/bin` is a symlink to `usr/bin`, so `COPY tool /bin/tool`
//! writes `/usr/bin/tool` and `/bin` stays a symlink. A symlink's target is resolved
//! within the root: an absolute target starts again at the image's `/`, `..` never climbs
//! above it, so nothing resolves outside the image. [`Tree::resolve`] does this; the
//! release uses [`Tree::is_file`] to know whether the image has `/bin/sh`.
//!
//! Reading a layer's names means unpacking it, so each layer's list is kept in memory by
//! digest ([`layer_entries`]) for the next step and the next build.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use tar::EntryType;

use super::files::{entry_name, layer_reader};

/// Symlinks followed while resolving one path before giving up (Linux's limit).
const MAX_LINKS: usize = 40;
/// Layers whose name lists are kept in memory.
const KEPT_LAYERS: usize = 64;

/// Why a path could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{0}: too many levels of symbolic links in the image")]
    TooManyLinks(String),
    #[error("reading a layer: {0}")]
    Io(#[from] std::io::Error),
}

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Link(String),
}

/// One name of a layer: an entry, or a whiteout (`.wh.NAME` deletes NAME,
/// `.wh..wh..opq` empties its directory of what lower layers have).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Is(String, Kind),
    Deleted(String),
    Opaque(String),
}

/// An image's names: clean paths without the leading `/` (`usr/bin/sh`).
#[derive(Debug, Default, Clone)]
pub struct Tree {
    names: BTreeMap<String, Kind>,
}

/// Splits `path` into its components, without empty ones and `.`.
fn parts(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|p| !p.is_empty() && *p != ".")
}

impl Tree {
    /// Adds a layer on top.
    pub fn apply(&mut self, entries: &[Entry]) {
        for e in entries {
            match e {
                Entry::Opaque(dir) => self.remove_under(dir),
                Entry::Deleted(path) => {
                    self.names.remove(path);
                    self.remove_under(path);
                }
                Entry::Is(..) => {}
            }
        }
        for e in entries {
            if let Entry::Is(path, kind) = e {
                self.names.insert(path.clone(), kind.clone());
            }
        }
    }

    fn remove_under(&mut self, dir: &str) {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<String> = self
            .names
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.names.remove(&k);
        }
    }

    /// What `path` (absolute, already resolved) is, if the image has it.
    pub fn get(&self, path: &str) -> Option<&Kind> {
        let key = parts(path).collect::<Vec<_>>().join("/");
        if key.is_empty() {
            return Some(&Kind::Dir);
        }
        self.names.get(&key)
    }

    /// `path` (absolute, or relative to `/`) with every symlink on the way resolved inside
    /// the image's root; the last component's too when `follow_last`. `..` never climbs
    /// above `/`. Returns an absolute path.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<String, TreeError> {
        let mut done: Vec<String> = Vec::new();
        let mut todo: VecDeque<String> = parts(path).map(str::to_string).collect();
        let mut links = 0;
        while let Some(part) = todo.pop_front() {
            if part == ".." {
                done.pop();
                continue;
            }
            let here = if done.is_empty() {
                part.clone()
            } else {
                format!("{}/{part}", done.join("/"))
            };
            match self.names.get(&here) {
                Some(Kind::Link(target)) if follow_last || !todo.is_empty() => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(TreeError::TooManyLinks(path.to_string()));
                    }
                    if target.starts_with('/') {
                        done.clear();
                    }
                    let mut next: VecDeque<String> = parts(target).map(str::to_string).collect();
                    next.extend(todo);
                    todo = next;
                }
                _ => done.push(part),
            }
        }
        Ok(format!("/{}", done.join("/")))
    }

    /// Whether `path` resolves (every symlink followed) to a file, as `/bin/sh` must.
    pub fn is_file(&self, path: &str) -> bool {
        self.resolve(path, true)
            .map(|p| self.get(&p) == Some(&Kind::File))
            .unwrap_or(false)
    }

    /// Whether `path` resolves to a directory.
    pub fn is_dir(&self, path: &str) -> bool {
        self.resolve(path, true)
            .map(|p| self.get(&p) == Some(&Kind::Dir))
            .unwrap_or(false)
    }
}

/// The names in the layer blob at `blob`.
pub fn read_layer(blob: &std::path::Path) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(layer_reader(blob)?);
    for e in archive.entries()? {
        let e = e?;
        let name = entry_name(&e.path()?);
        let (dir, base) = match name.rsplit_once('/') {
            Some((d, b)) => (d.to_string(), b.to_string()),
            None => (String::new(), name.clone()),
        };
        if base == ".wh..wh..opq" {
            out.push(Entry::Opaque(dir));
            continue;
        }
        if let Some(gone) = base.strip_prefix(".wh.") {
            out.push(Entry::Deleted(if dir.is_empty() {
                gone.to_string()
            } else {
                format!("{dir}/{gone}")
            }));
            continue;
        }
        if name.is_empty() {
            continue;
        }
        let kind = match e.header().entry_type() {
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink => Kind::Link(
                e.link_name()?
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            _ => Kind::File,
        };
        out.push(Entry::Is(name, kind));
    }
    Ok(out)
}

type Kept = Mutex<HashMap<String, Arc<Vec<Entry>>>>;

/// The names of the layer `digest` (blob at `blob`), read once and kept.
pub fn layer_entries(digest: &str, blob: &std::path::Path) -> std::io::Result<Arc<Vec<Entry>>> {
    static KEPT: OnceLock<Kept> = OnceLock::new();
    let kept = KEPT.get_or_init(Kept::default);
    if let Some(e) = kept.lock().unwrap_or_else(|e| e.into_inner()).get(digest) {
        return Ok(Arc::clone(e));
    }
    let entries = Arc::new(read_layer(blob)?);
    let mut map = kept.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= KEPT_LAYERS {
        map.clear();
    }
    map.insert(digest.to_string(), Arc::clone(&entries));
    Ok(entries)
}

/// The tree of an image of `layers` (digest, blob path), bottom first.
pub fn image_tree(layers: &[(String, PathBuf)]) -> std::io::Result<Tree> {
    let mut tree = Tree::default();
    for (digest, blob) in layers {
        tree.apply(&layer_entries(digest, blob)?);
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bookworm() -> Tree {
        let mut t = Tree::default();
        let is = |p: &str, k: Kind| Entry::Is(p.into(), k);
        let link = |p: &str, to: &str| Entry::Is(p.into(), Kind::Link(to.into()));
        t.apply(&[
            is("usr", Kind::Dir),
            is("usr/bin", Kind::Dir),
            is("usr/lib", Kind::Dir),
            is("usr/bin/dash", Kind::File),
            link("usr/bin/sh", "dash"),
            link("bin", "usr/bin"),
            link("lib", "/usr/lib"),
            link("up", "../../.."),
            link("abs-out", "/../../etc"),
            is("etc", Kind::Dir),
            link("loop", "loop2"),
            link("loop2", "loop"),
            link("srv", "opt/app"),
            is("opt", Kind::Dir),
            is("opt/app", Kind::Dir),
        ]);
        t
    }

    #[test]
    fn parents_resolve_through_symlinks_inside_the_root() {
        let t = bookworm();
        assert_eq!(t.resolve("/bin/tool", false).unwrap(), "/usr/bin/tool");
        assert_eq!(t.resolve("/lib/x/y.so", false).unwrap(), "/usr/lib/x/y.so");
        assert_eq!(t.resolve("/bin", false).unwrap(), "/bin");
        assert_eq!(t.resolve("/bin", true).unwrap(), "/usr/bin");
        assert_eq!(t.resolve("/srv/app/", true).unwrap(), "/opt/app/app");
        assert_eq!(t.resolve("new/dir/", true).unwrap(), "/new/dir");
        assert_eq!(t.resolve("/", true).unwrap(), "/");
        assert!(t.is_file("/bin/sh"));
        assert!(t.is_file("/usr/bin/sh"));
        assert!(t.is_dir("/bin"));
        assert!(!t.is_file("/bin/bash"));
    }

    #[test]
    fn nothing_resolves_outside_the_root() {
        let t = bookworm();
        assert_eq!(
            t.resolve("/../../etc/passwd", false).unwrap(),
            "/etc/passwd"
        );
        assert_eq!(t.resolve("/up/etc/x", false).unwrap(), "/etc/x");
        assert_eq!(t.resolve("/abs-out/x", false).unwrap(), "/etc/x");
        assert_eq!(t.resolve("/usr/../../../x", false).unwrap(), "/x");
        assert_eq!(t.resolve("/bin/../../../tmp/f", false).unwrap(), "/tmp/f");
        assert!(matches!(
            t.resolve("/loop/x", false),
            Err(TreeError::TooManyLinks(_))
        ));
        assert!(!t.is_file("/loop"));
    }

    #[test]
    fn whiteouts_delete_and_opaque_dirs_hide_lower_layers() {
        let mut t = bookworm();
        t.apply(&[Entry::Deleted("usr/bin/dash".into())]);
        assert!(!t.is_file("/bin/sh"), "a dangling /bin/sh is not a shell");
        t.apply(&[Entry::Is("usr/bin/dash".into(), Kind::File)]);
        assert!(t.is_file("/bin/sh"));
        t.apply(&[
            Entry::Opaque("usr".into()),
            Entry::Is("usr/new".into(), Kind::File),
        ]);
        assert!(!t.is_file("/bin/sh"));
        assert!(t.is_file("/usr/new"));
        t.apply(&[Entry::Deleted("bin".into())]);
        assert_eq!(t.resolve("/bin/tool", false).unwrap(), "/bin/tool");
        assert!(Tree::default().resolve("/bin/sh", true).unwrap() == "/bin/sh");
        assert!(!Tree::default().is_file("/bin/sh"), "scratch has no shell");
    }

    #[test]
    fn a_layer_blob_lists_its_names_and_whiteouts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::Directory);
        h.set_size(0);
        b.append_data(&mut h.clone(), "usr/", std::io::empty())
            .unwrap();
        h.set_entry_type(EntryType::Symlink);
        b.append_link(&mut h.clone(), "bin", "usr/bin").unwrap();
        h.set_entry_type(EntryType::Regular);
        b.append_data(&mut h.clone(), "etc/.wh.motd", std::io::empty())
            .unwrap();
        b.append_data(&mut h.clone(), "var/.wh..wh..opq", std::io::empty())
            .unwrap();
        b.append_data(&mut h, "./usr/x", std::io::empty()).unwrap();
        b.finish().unwrap();
        drop(b);
        assert_eq!(
            read_layer(&path).unwrap(),
            vec![
                Entry::Is("usr".into(), Kind::Dir),
                Entry::Is("bin".into(), Kind::Link("usr/bin".into())),
                Entry::Deleted("etc/motd".into()),
                Entry::Opaque("var".into()),
                Entry::Is("usr/x".into(), Kind::File),
            ]
        );
    }
}
