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

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use tar::EntryType;

use super::files::{entry_name, layer_reader};
use paas_dockerfile::ignore::clean;

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

/// The blobs of `layers` (digest, blob path; bottom first) that can change what the image
/// shows at or under one of `prefixes` (clean paths, no leading `/`; `""` is everything):
/// a layer with a name at or under a prefix, a whiteout of one or of an ancestor, or an
/// ancestor that some layer makes something other than a directory (a symlink on the
/// way, or a directory that replaces one). A layer that only holds a prefix's parent
/// directories changes nothing a COPY takes, so `COPY --from=build /venv` opens the build
/// stage's own small layers and not the 90 MB base layer under them (its names come from
/// [`layer_entries`], kept in memory).
pub fn layers_touching(
    layers: &[(String, PathBuf)],
    prefixes: &[String],
) -> std::io::Result<Vec<PathBuf>> {
    let listed = layers
        .iter()
        .map(|(digest, blob)| layer_entries(digest, blob))
        .collect::<std::io::Result<Vec<_>>>()?;
    let under = |name: &str| {
        prefixes.iter().any(|p| {
            p.is_empty()
                || name == p
                || (name.len() > p.len()
                    && name.starts_with(p.as_str())
                    && name.as_bytes()[p.len()] == b'/')
        })
    };
    let above = |name: &str| {
        name.is_empty()
            || prefixes.iter().any(|p| {
                p.len() > name.len() && p.starts_with(name) && p.as_bytes()[name.len()] == b'/'
            })
    };
    // Ancestors of a prefix that are not a directory in at least one layer: every layer
    // that names them matters (a symlink there redirects the prefix).
    let linked: HashSet<&str> = listed
        .iter()
        .flat_map(|entries| entries.iter())
        .filter_map(|e| match e {
            Entry::Is(name, kind) if *kind != Kind::Dir && above(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let touches = |entries: &[Entry]| {
        entries.iter().any(|e| match e {
            Entry::Is(name, _) => {
                !name.is_empty() && (under(name) || linked.contains(name.as_str()))
            }
            Entry::Deleted(name) | Entry::Opaque(name) => under(name) || above(name),
        })
    };
    Ok(layers
        .iter()
        .zip(&listed)
        .filter(|(_, entries)| touches(entries))
        .map(|((_, blob), _)| blob.clone())
        .collect())
}

/// The bytes of the regular file at `path` (absolute) in the image of `layers` (digest,
/// blob path; bottom first), at most `max`; `None` when it is absent, deleted, not a
/// regular file (a symlink is not followed) or larger. Only the layer that holds it is
/// opened: the others are known from their kept names ([`layer_entries`]).
pub fn read_file(
    layers: &[(String, PathBuf)],
    path: &str,
    max: u64,
) -> std::io::Result<Option<Vec<u8>>> {
    let want = clean(path);
    if want.is_empty() || image_tree(layers)?.get(&want) != Some(&Kind::File) {
        return Ok(None);
    }
    for (digest, blob) in layers.iter().rev() {
        let holds = layer_entries(digest, blob)?
            .iter()
            .any(|e| matches!(e, Entry::Is(name, _) if *name == want));
        if !holds {
            continue;
        }
        let mut archive = tar::Archive::new(layer_reader(blob)?);
        for e in archive.entries()? {
            let mut e = e?;
            if entry_name(&e.path()?) != want {
                continue;
            }
            if !e.header().entry_type().is_file() || e.size() > max {
                return Ok(None);
            }
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes)?;
            return Ok(Some(bytes));
        }
        return Ok(None);
    }
    Ok(None)
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

    /// Writes a layer of `names` (a trailing `/` is a directory, `a->b` a symlink, else an
    /// empty file) and returns it as (digest, path) with the path as its unique digest.
    fn layer(dir: &std::path::Path, file: &str, names: &[&str]) -> (String, PathBuf) {
        let path = dir.join(file);
        let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for name in names {
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            if let Some((link, target)) = name.split_once("->") {
                h.set_entry_type(EntryType::Symlink);
                b.append_link(&mut h, link, target).unwrap();
            } else {
                h.set_entry_type(if name.ends_with('/') {
                    EntryType::Directory
                } else {
                    EntryType::Regular
                });
                b.append_data(&mut h, name, std::io::empty()).unwrap();
            }
        }
        b.finish().unwrap();
        (path.display().to_string(), path)
    }

    #[test]
    fn only_layers_that_change_a_prefix_are_opened() {
        let dir = tempfile::tempdir().unwrap();
        let base = layer(
            dir.path(),
            "base",
            &["srv/", "usr/", "usr/lib/", "lib->usr/lib"],
        );
        let venv = layer(
            dir.path(),
            "venv",
            &["venv/", "venv/bin/", "venv/bin/python"],
        );
        let deps = layer(dir.path(), "deps", &["srv/", "srv/deps.txt"]);
        let pylib = layer(dir.path(), "pylib", &["usr/", "usr/lib/", "usr/lib/py/"]);
        let gone = layer(dir.path(), "gone", &["venv/.wh.bin"]);
        let all = [
            base.clone(),
            venv.clone(),
            deps.clone(),
            pylib.clone(),
            gone.clone(),
        ];
        let touching = |prefixes: &[&str]| {
            let prefixes: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
            layers_touching(&all, &prefixes).unwrap()
        };
        // The base only has srv/ as a parent: not opened for srv/deps.txt.
        assert_eq!(touching(&["srv/deps.txt"]), std::slice::from_ref(&deps.1));
        assert_eq!(touching(&["venv"]), [venv.1.clone(), gone.1.clone()]);
        // lib is a symlink in the base: the base is opened for lib/py (pylib names
        // usr/lib/py, not lib/py: the stage's files are taken by the prefix's own names).
        assert_eq!(touching(&["lib/py"]), std::slice::from_ref(&base.1));
        assert_eq!(touching(&["usr/lib/py"]), std::slice::from_ref(&pylib.1));
        assert_eq!(touching(&[""]).len(), 5, "the whole tree needs every layer");
        assert!(touching(&["etc/passwd"]).is_empty());
        // A whiteout of an ancestor, or an opaque ancestor, touches what is under it.
        let opaque = layer(dir.path(), "opaque", &["srv/.wh..wh..opq"]);
        let with = [base.clone(), deps.clone(), opaque.clone()];
        assert_eq!(
            layers_touching(&with, &["srv/deps.txt".into()]).unwrap(),
            [deps.1.clone(), opaque.1.clone()]
        );
        // A directory that replaces a lower symlink on the way is needed too.
        let relinked = layer(dir.path(), "relinked", &["lib/", "lib/py/"]);
        let with = [base.clone(), relinked.clone()];
        assert_eq!(
            layers_touching(&with, &["lib/py".into()]).unwrap(),
            [base.1.clone(), relinked.1.clone()]
        );
        // read_file opens the one layer that holds the file.
        assert_eq!(read_file(&all, "/srv/deps.txt", 10).unwrap().unwrap(), b"");
        assert_eq!(
            read_file(&all, "/venv/bin/python", 10).unwrap(),
            None,
            "whited out"
        );
    }
}
