//! Files for COPY and ADD: the build context (the pushed source minus `.dockerignore`)
//! unpacked into the build's directory, paths of an earlier stage or image taken out of
//! its layers (whiteouts applied), sources matched (globs as Go's `filepath.Match`),
//! hashed for the cache key and packed into one zstd layer; and single files read from an
//! image's layers (`/etc/passwd` for `--chown=NAME`, the Procfile and app.json).

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use paas_dockerfile::ignore::{clean, glob_segment, is_glob, Ignore};
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::image::{Layer, LAYER_ZSTD};

/// Why files could not be copied.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{0}: no such file or directory in the build context (is it committed, or left out by \
         .dockerignore?)"
    )]
    NotInContext(String),
    #[error("{0}: no such file or directory in that stage")]
    NotInStage(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> FilesError {
    let what = what.into();
    move |source| FilesError::Io { what, source }
}

/// A reader over a layer blob, gzip or zstd (or plain tar) by its magic bytes.
pub fn layer_reader(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic)?;
    drop(file);
    let file = io::BufReader::new(File::open(path)?);
    Ok(if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(file))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::with_buffer(file)?)
    } else {
        Box::new(file)
    })
}

pub(super) fn entry_name(raw: &Path) -> String {
    clean(&raw.to_string_lossy())
}

/// Unpacks the `git archive` tar `source` into `dir`, leaving out what `.dockerignore`
/// excludes (read from the archive first).
pub fn unpack_context(source: &Path, dir: &Path) -> Result<Ignore, FilesError> {
    let mut ignore_text = String::new();
    {
        let mut archive =
            tar::Archive::new(File::open(source).map_err(io_err("opening the source"))?);
        for e in archive.entries().map_err(io_err("reading the source"))? {
            let mut e = e.map_err(io_err("reading the source"))?;
            let name = entry_name(&e.path().map_err(io_err("reading the source"))?);
            if name == ".dockerignore" && e.header().entry_type().is_file() {
                e.read_to_string(&mut ignore_text)
                    .map_err(io_err("reading .dockerignore"))?;
            }
        }
    }
    let ignore = Ignore::parse(&ignore_text).map_err(|e| FilesError::Io {
        what: ".dockerignore".into(),
        source: io::Error::other(e.to_string()),
    })?;
    fs::create_dir_all(dir).map_err(io_err("making the context dir"))?;
    let mut archive = tar::Archive::new(File::open(source).map_err(io_err("opening the source"))?);
    archive.set_preserve_permissions(true);
    for e in archive.entries().map_err(io_err("reading the source"))? {
        let mut e = e.map_err(io_err("reading the source"))?;
        let name = entry_name(&e.path().map_err(io_err("reading the source"))?);
        if name.is_empty() || e.header().entry_type() == EntryType::XGlobalHeader {
            continue;
        }
        if ignore.excludes(&name)
            && !(e.header().entry_type().is_dir() && ignore.may_take_back_under(&name))
        {
            continue;
        }
        e.unpack_in(dir)
            .map_err(io_err(format!("unpacking {name}")))?;
    }
    Ok(ignore)
}

/// Materializes the paths of `layers` (bottom first) under each of `prefixes` into `dir`,
/// as the stage's filesystem has them: later layers win, whiteouts delete.
pub fn extract_from_layers(
    blobs: &[PathBuf],
    prefixes: &[String],
    dir: &Path,
) -> Result<(), FilesError> {
    fs::create_dir_all(dir).map_err(io_err("making a stage dir"))?;
    let wanted = |p: &str| {
        prefixes.iter().any(|pre| {
            pre.is_empty()
                || p == pre
                || p.starts_with(&format!("{pre}/"))
                || pre.starts_with(&format!("{p}/"))
        })
    };
    for blob in blobs {
        let reader = layer_reader(blob).map_err(io_err(format!("reading {}", blob.display())))?;
        let mut archive = tar::Archive::new(reader);
        for e in archive.entries().map_err(io_err("reading a layer"))? {
            let mut e = e.map_err(io_err("reading a layer"))?;
            let name = entry_name(&e.path().map_err(io_err("reading a layer"))?);
            let (parent, base) = match name.rsplit_once('/') {
                Some((p, b)) => (p.to_string(), b.to_string()),
                None => (String::new(), name.clone()),
            };
            if base == ".wh..wh..opq" {
                if wanted(&parent) {
                    let d = dir.join(&parent);
                    if let Ok(list) = fs::read_dir(&d) {
                        for child in list.flatten() {
                            remove(&child.path());
                        }
                    }
                }
                continue;
            }
            if let Some(gone) = base.strip_prefix(".wh.") {
                let target = if parent.is_empty() {
                    gone.to_string()
                } else {
                    format!("{parent}/{gone}")
                };
                if wanted(&target) {
                    remove(&dir.join(target));
                }
                continue;
            }
            if name.is_empty() || !wanted(&name) {
                continue;
            }
            let path = dir.join(&name);
            if !e.header().entry_type().is_dir() {
                remove(&path);
            }
            e.set_preserve_permissions(true);
            e.set_unpack_xattrs(false);
            e.unpack_in(dir)
                .map_err(io_err(format!("unpacking {name}")))?;
            let uid = e.header().uid().unwrap_or(0) as u32;
            let gid = e.header().gid().unwrap_or(0) as u32;
            let _ = std::os::unix::fs::lchown(&path, Some(uid), Some(gid));
        }
    }
    Ok(())
}

fn remove(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// True when `path`'s parent directory, symlinks resolved, is `root` or under it: a
/// committed symlink (`etc -> /etc`) must not let COPY read the controller's own files.
fn inside(root: &Path, path: &Path) -> bool {
    let (Ok(root), Some(parent)) = (fs::canonicalize(root), path.parent()) else {
        return false;
    };
    fs::canonicalize(parent).is_ok_and(|p| p.starts_with(&root))
}

/// Paths under `root` that `pattern` (relative, cleaned) names: itself, or each match of a
/// glob, sorted. Nothing reached through a symlink that leaves `root` is named.
fn matches(root: &Path, pattern: &str) -> Vec<String> {
    matches_all(root, pattern)
        .into_iter()
        .filter(|rel| inside(root, &root.join(rel)))
        .collect()
}

fn matches_all(root: &Path, pattern: &str) -> Vec<String> {
    let pattern = clean(pattern);
    if !is_glob(&pattern) {
        return if fs::symlink_metadata(root.join(&pattern)).is_ok() {
            vec![pattern]
        } else {
            Vec::new()
        };
    }
    let mut found = vec![String::new()];
    for seg in pattern.split('/') {
        let mut next = Vec::new();
        for base in &found {
            let dir = root.join(base);
            if !is_glob(seg) {
                let p = if base.is_empty() {
                    seg.to_string()
                } else {
                    format!("{base}/{seg}")
                };
                if fs::symlink_metadata(root.join(&p)).is_ok() {
                    next.push(p);
                }
                continue;
            }
            let Ok(list) = fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<String> = list
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| glob_segment(seg, n))
                .collect();
            names.sort();
            for n in names {
                next.push(if base.is_empty() {
                    n
                } else {
                    format!("{base}/{n}")
                });
            }
        }
        found = next;
    }
    found
}

/// One thing a COPY puts into its layer.
#[derive(Debug, Clone)]
struct Item {
    src: PathBuf,
    /// Path in the layer, relative to `/`.
    dest: String,
}

/// What a COPY/ADD reads and where it goes.
pub struct CopyJob<'a> {
    pub root: &'a Path,
    pub sources: &'a [String],
    /// Absolute; ends in `/` for a directory.
    pub dest: &'a str,
    pub owner: (u64, u64),
    pub chmod: Option<u32>,
    /// ADD: local archives are unpacked.
    pub unpack: bool,
    /// How a missing source is reported.
    pub from_context: bool,
}

fn is_archive(path: &Path) -> bool {
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut head = [0u8; 262];
    let n = f.read(&mut head).unwrap_or(0);
    (n >= 2 && head[..2] == [0x1f, 0x8b])
        || (n >= 4 && head[..4] == [0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &head[257..262] == b"ustar")
}

impl CopyJob<'_> {
    fn items(&self) -> Result<(Vec<Item>, Vec<PathBuf>), FilesError> {
        let mut items = Vec::new();
        let mut archives = Vec::new();
        let dest_dir = self.dest.ends_with('/');
        let dest = self
            .dest
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_string();
        for source in self.sources {
            let found = matches(self.root, source);
            if found.is_empty() {
                return Err(if self.from_context {
                    FilesError::NotInContext(source.clone())
                } else {
                    FilesError::NotInStage(source.clone())
                });
            }
            for rel in found {
                let src = self.root.join(&rel);
                let meta = fs::symlink_metadata(&src).map_err(io_err(format!("reading {rel}")))?;
                if meta.is_dir() {
                    if !dest.is_empty() {
                        items.push(Item {
                            src: src.clone(),
                            dest: dest.clone(),
                        });
                    }
                    walk(&src, &dest, &mut items).map_err(io_err(format!("reading {rel}")))?;
                } else if self.unpack && meta.is_file() && is_archive(&src) {
                    archives.push(src);
                } else {
                    let name = rel.rsplit('/').next().unwrap_or(&rel);
                    let to = match (dest_dir, dest.is_empty()) {
                        (true, true) => name.to_string(),
                        (true, false) => format!("{dest}/{name}"),
                        (false, _) => dest.clone(),
                    };
                    items.push(Item { src, dest: to });
                }
            }
        }
        Ok((items, archives))
    }

    /// `(layer path, sha256 of mode, owner and content)` of everything the step copies:
    /// the files part of its cache key.
    pub fn hashes(&self) -> Result<Vec<(String, String)>, FilesError> {
        let (items, archives) = self.items()?;
        let mut out = Vec::new();
        for it in items.iter().map(|i| (&i.src, i.dest.clone())).chain(
            archives
                .iter()
                .map(|a| (a, format!("unpack:{}", a.display()))),
        ) {
            let (src, dest) = it;
            let meta = fs::symlink_metadata(src).map_err(io_err(format!("reading {dest}")))?;
            let mut h = Sha256::new();
            h.update(format!("{:o}:", meta.permissions().mode()).as_bytes());
            if meta.is_file() {
                let mut f = File::open(src).map_err(io_err(format!("reading {dest}")))?;
                io::copy(&mut f, &mut h).map_err(io_err(format!("reading {dest}")))?;
            } else if meta.file_type().is_symlink() {
                h.update(
                    fs::read_link(src)
                        .map_err(io_err(format!("reading {dest}")))?
                        .to_string_lossy()
                        .as_bytes(),
                );
            }
            out.push((dest, hex::encode(h.finalize())));
        }
        Ok(out)
    }

    /// Packs the copy into the zstd tar `out`.
    pub fn pack(&self, out: &Path) -> Result<Layer, FilesError> {
        let (items, archives) = self.items()?;
        let e = |w: &str| io_err(format!("packing {w}"));
        let file = BufWriter::new(File::create(out).map_err(e("the layer"))?);
        let z =
            zstd::stream::write::Encoder::new(HashWriter::new(file), 3).map_err(e("the layer"))?;
        let mut b = tar::Builder::new(HashWriter::new(z));
        for it in &items {
            let meta = fs::symlink_metadata(&it.src).map_err(e(&it.dest))?;
            let mode = self.chmod.unwrap_or(meta.permissions().mode() & 0o7777);
            let mut h = Header::new_gnu();
            h.set_uid(self.owner.0);
            h.set_gid(self.owner.1);
            h.set_mtime(meta.mtime().max(0) as u64);
            h.set_mode(mode);
            h.set_size(0);
            if meta.is_dir() {
                h.set_entry_type(EntryType::Directory);
                b.append_data(&mut h, format!("{}/", it.dest), io::empty())
                    .map_err(e(&it.dest))?;
            } else if meta.is_file() {
                h.set_entry_type(EntryType::Regular);
                h.set_size(meta.len());
                let f = File::open(&it.src).map_err(e(&it.dest))?;
                b.append_data(&mut h, &it.dest, f).map_err(e(&it.dest))?;
            } else if meta.file_type().is_symlink() {
                h.set_entry_type(EntryType::Symlink);
                h.set_mode(0o777);
                let target = fs::read_link(&it.src).map_err(e(&it.dest))?;
                b.append_link(&mut h, &it.dest, &target)
                    .map_err(e(&it.dest))?;
            }
        }
        let dest = self.dest.trim_start_matches('/').trim_end_matches('/');
        for a in &archives {
            let reader = layer_reader(a).map_err(e("an archive"))?;
            let mut archive = tar::Archive::new(reader);
            for entry in archive.entries().map_err(e("an archive"))? {
                let mut entry = entry.map_err(e("an archive"))?;
                let name = entry_name(&entry.path().map_err(e("an archive"))?);
                if name.is_empty() {
                    continue;
                }
                let to = if dest.is_empty() {
                    name
                } else {
                    format!("{dest}/{name}")
                };
                let mut h = entry.header().clone();
                let (uid, gid) = if self.owner != (0, 0) {
                    self.owner
                } else {
                    (h.uid().unwrap_or(0), h.gid().unwrap_or(0))
                };
                h.set_uid(uid);
                h.set_gid(gid);
                match h.entry_type() {
                    EntryType::Symlink | EntryType::Link => {
                        let target = entry
                            .link_name()
                            .map_err(e(&to))?
                            .unwrap_or_default()
                            .to_path_buf();
                        let target = if h.entry_type() == EntryType::Link {
                            PathBuf::from(if dest.is_empty() {
                                entry_name(&target)
                            } else {
                                format!("{dest}/{}", entry_name(&target))
                            })
                        } else {
                            target
                        };
                        b.append_link(&mut h, &to, &target).map_err(e(&to))?;
                    }
                    EntryType::Regular | EntryType::Directory | EntryType::Continuous => {
                        b.append_data(&mut h, &to, &mut entry).map_err(e(&to))?;
                    }
                    _ => {}
                }
            }
        }
        let tar_hash = b.into_inner().map_err(e("the layer"))?;
        let (z, diff_id) = tar_hash.finish();
        let z_hash = z.finish().map_err(e("the layer"))?;
        let (mut file, digest) = z_hash.finish();
        file.flush().map_err(e("the layer"))?;
        let size = fs::metadata(out).map_err(e("the layer"))?.len();
        Ok(Layer {
            digest,
            diff_id,
            size,
            media_type: LAYER_ZSTD.into(),
        })
    }
}

fn walk(dir: &Path, dest: &str, items: &mut Vec<Item>) -> io::Result<()> {
    let mut list: Vec<_> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    list.sort_by_key(|e| e.file_name());
    for e in list {
        let name = e.file_name().to_string_lossy().to_string();
        let to = if dest.is_empty() {
            name
        } else {
            format!("{dest}/{name}")
        };
        let path = e.path();
        items.push(Item {
            src: path.clone(),
            dest: to.clone(),
        });
        if e.file_type()?.is_dir() {
            walk(&path, &to, items)?;
        }
    }
    Ok(())
}

/// A one-entry zstd layer: the directory `path` (WORKDIR), root-owned 0755.
pub fn dir_layer(path: &str, out: &Path) -> Result<Layer, FilesError> {
    let e = io_err("packing a WORKDIR layer");
    let file = BufWriter::new(File::create(out).map_err(io_err("packing a WORKDIR layer"))?);
    let z = zstd::stream::write::Encoder::new(HashWriter::new(file), 3)
        .map_err(io_err("packing a WORKDIR layer"))?;
    let mut b = tar::Builder::new(HashWriter::new(z));
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_data(&mut h, format!("{}/", path.trim_matches('/')), io::empty())
        .map_err(io_err("packing a WORKDIR layer"))?;
    let (z, diff_id) = b
        .into_inner()
        .map_err(io_err("packing a WORKDIR layer"))?
        .finish();
    let (mut file, digest) = z
        .finish()
        .map_err(io_err("packing a WORKDIR layer"))?
        .finish();
    file.flush().map_err(e)?;
    let size = fs::metadata(out)
        .map_err(io_err("packing a WORKDIR layer"))?
        .len();
    Ok(Layer {
        digest,
        diff_id,
        size,
        media_type: LAYER_ZSTD.into(),
    })
}

/// `--chown=USER[:GROUP]` as numeric ids, names looked up in the image's `/etc/passwd` and
/// `/etc/group` text.
pub fn resolve_owner(spec: &str, passwd: &str, group: &str) -> Result<(u64, u64), String> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |text: &str, name: &str, field: usize| -> Option<u64> {
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name))
                .then(|| f.get(field).and_then(|v| v.parse().ok()))
                .flatten()
        })
    };
    let (uid, primary) = match user.parse::<u64>() {
        Ok(n) => (n, n),
        Err(_) => {
            let uid = lookup(passwd, user, 2).ok_or_else(|| {
                format!("--chown={spec}: no user {user} in the image's /etc/passwd")
            })?;
            (uid, lookup(passwd, user, 3).unwrap_or(uid))
        }
    };
    let gid = match grp {
        None => primary,
        Some(g) => match g.parse::<u64>() {
            Ok(n) => n,
            Err(_) => lookup(group, g, 2)
                .ok_or_else(|| format!("--chown={spec}: no group {g} in the image's /etc/group"))?,
        },
    };
    Ok((uid, gid))
}

/// A writer that hashes what passes through it.
pub struct HashWriter<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hash: Sha256::new(),
        }
    }

    /// The inner writer and `sha256:<hex>` of what was written.
    pub fn finish(self) -> (W, String) {
        (
            self.inner,
            format!("sha256:{}", hex::encode(self.hash.finalize())),
        )
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
