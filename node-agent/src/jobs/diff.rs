//! A job's filesystem changes as an image layer (a Dockerfile RUN step, see
//! docs/builds.md): the overlay upper dir packed into a zstd tar in OCI's layer format.
//! A deleted file (overlayfs: a 0/0 character device) becomes a `.wh.NAME` whiteout, a
//! directory made opaque (`trusted.overlay.opaque=y`: it replaced a lower one) gets a
//! `.wh..wh..opq` entry. What the runtime itself put there (`dev`, `proc`, `sys`,
//! `etc/hosts`, `etc/hostname`, `etc/resolv.conf`, as Docker leaves them out) is skipped.
//! Owners are mapped back to container ids as in the output layer.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use paas_api::LayerInfo;
use tar::{EntryType, Header};

use crate::util::HashWriter;

/// Top-level paths never captured.
const SKIPPED: [&str; 6] = [
    "dev",
    "proc",
    "sys",
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
];

/// zstd level of RUN layers: fast, as Docker's and BuildKit's default zstd level.
const ZSTD_LEVEL: i32 = 3;

/// Packs the changes in `upper` into the zstd tar `out` (ids mapped back from the job's
/// range at `base`). Returns digest, diff_id and size.
pub fn pack_changes(upper: &Path, out: &Path, base: Option<u32>) -> io::Result<LayerInfo> {
    let file = BufWriter::new(File::create(out)?);
    let z = zstd::stream::write::Encoder::new(HashWriter::new(file), ZSTD_LEVEL)?;
    let mut builder = tar::Builder::new(HashWriter::new(z));
    walk(&mut builder, upper, "", base)?;
    let tar_hash = builder.into_inner()?;
    let (z, diff_id, _) = tar_hash.finish();
    let z_hash = z.finish()?;
    let (mut file, digest, size) = z_hash.finish();
    file.flush()?;
    file.get_ref().sync_all()?;
    Ok(LayerInfo {
        digest,
        diff_id,
        size,
    })
}

fn header(kind: EntryType, meta: &fs::Metadata, base: Option<u32>) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.permissions().mode() & 0o7777);
    h.set_uid(u64::from(super::userns::container_id(meta.uid(), base)));
    h.set_gid(u64::from(super::userns::container_id(meta.gid(), base)));
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_size(0);
    h
}

fn is_opaque(path: &Path) -> bool {
    for name in ["trusted.overlay.opaque", "user.overlay.opaque"] {
        if let Ok(Some(v)) = xattr_get(path, name) {
            if v == b"y" {
                return true;
            }
        }
    }
    false
}

fn xattr_get(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let p = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let n = CString::new(name).map_err(io::Error::other)?;
    let mut buf = [0u8; 16];
    // SAFETY: both strings are NUL-terminated and live across the call; the buffer is
    // valid for `buf.len()` bytes and the kernel writes at most that many.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) | Some(libc::ERANGE) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(buf[..r as usize].to_vec()))
}

fn walk<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &Path,
    prefix: &str,
    base: Option<u32>,
) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let rel = format!("{prefix}{name}");
        if SKIPPED.contains(&rel.as_str()) {
            continue;
        }
        let meta = fs::symlink_metadata(&path)?;
        let ft = meta.file_type();
        if ft.is_char_device() && meta.rdev() == 0 {
            let mut h = Header::new_gnu();
            h.set_entry_type(EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(0);
            builder.append_data(&mut h, format!("{prefix}.wh.{name}"), io::empty())?;
        } else if ft.is_dir() {
            let mut h = header(EntryType::Directory, &meta, base);
            builder.append_data(&mut h, format!("{rel}/"), io::empty())?;
            if is_opaque(&path) {
                let mut h = Header::new_gnu();
                h.set_entry_type(EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(0);
                builder.append_data(&mut h, format!("{rel}/.wh..wh..opq"), io::empty())?;
            }
            walk(builder, &path, &format!("{rel}/"), base)?;
        } else if ft.is_file() {
            let mut h = header(EntryType::Regular, &meta, base);
            h.set_size(meta.len());
            builder.append_data(&mut h, &rel, File::open(&path)?)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path)?;
            let mut h = header(EntryType::Symlink, &meta, base);
            builder.append_link(&mut h, &rel, &target)?;
        } else if ft.is_fifo() {
            let mut h = header(EntryType::Fifo, &meta, base);
            builder.append_data(&mut h, &rel, io::empty())?;
        } else {
            tracing::warn!(path = %path.display(), "RUN layer: skipping a device or socket");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn deletions_become_whiteouts_and_runtime_files_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let up = dir.path().join("upper");
        fs::create_dir_all(up.join("etc")).unwrap();
        fs::create_dir_all(up.join("proc/1")).unwrap();
        fs::create_dir_all(up.join("usr/bin")).unwrap();
        fs::write(up.join("etc/resolv.conf"), "nameserver 1.1.1.1\n").unwrap();
        fs::write(up.join("etc/app.conf"), "x=1\n").unwrap();
        fs::write(up.join("usr/bin/tool"), "#!/bin/sh\n").unwrap();
        let whiteout = nix::unistd::geteuid().is_root();
        if whiteout {
            nix::sys::stat::mknod(
                &up.join("etc/gone"),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o000),
                0,
            )
            .unwrap();
        }
        let out = dir.path().join("layer.tar.zst");
        let info = pack_changes(&up, &out, None).unwrap();
        let blob = fs::read(&out).unwrap();
        assert_eq!(info.size, blob.len() as u64);
        assert_eq!(info.digest, crate::util::sha256_digest(&blob));
        let mut tar = Vec::new();
        zstd::stream::read::Decoder::new(&blob[..])
            .unwrap()
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(info.diff_id, crate::util::sha256_digest(&tar));
        let names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
            .collect();
        let mut want = vec!["etc/", "etc/app.conf"];
        if whiteout {
            want.push("etc/.wh.gone");
        }
        want.extend(["usr/", "usr/bin/", "usr/bin/tool"]);
        assert_eq!(names, want);
    }
}
