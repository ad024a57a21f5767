//! A job's output layer: the output directory packed into a gzip tar (entries relative to
//! `/`, e.g. `app/...` for `/app`, directories included) and pushed to the registry as
//! one monolithic blob upload. Owners are container ids: a job in a user namespace wrote
//! its files as host ids of its range, which are mapped back (`0`, `1000`, …), so the
//! image is the same whichever node and range built it.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use paas_api::{JobOutput, LayerInfo};
use tar::{EntryType, Header};

use crate::util::HashWriter;

/// Errors of packing or pushing an output layer.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("packing {dir}: {source}")]
    Pack {
        dir: String,
        #[source]
        source: io::Error,
    },
    #[error("push blob to {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("push blob to {url}: {status} {body}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
        body: String,
    },
}

/// Packs `src` (the host dir) as the container path `container_path` (e.g. `/app`) into the
/// gzip tar `out`, owners mapped to container ids for a job whose uid range starts at
/// `base` (`None`: no user namespace). Returns the blob digest, the tar's diff_id and the
/// blob size.
pub fn pack(
    src: &Path,
    container_path: &str,
    out: &Path,
    base: Option<u32>,
) -> io::Result<LayerInfo> {
    let inner = container_path.trim_start_matches('/').trim_end_matches('/');
    let file = BufWriter::new(File::create(out)?);
    let gz = GzEncoder::new(HashWriter::new(file), Compression::default());
    let mut builder = tar::Builder::new(HashWriter::new(gz));
    // Parents of the output dir (e.g. `srv/` for /srv/app), root-owned 0755.
    let mut prefix = String::new();
    let parts: Vec<&str> = inner.split('/').filter(|p| !p.is_empty()).collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        prefix.push_str(part);
        prefix.push('/');
        let mut h = header(EntryType::Directory, 0o755, 0);
        builder.append_data(&mut h, &prefix, io::empty())?;
    }
    let meta = fs::metadata(src)?;
    let mut h = header(
        EntryType::Directory,
        meta.permissions().mode(),
        meta.mtime(),
    );
    owned(&mut h, &meta, base);
    builder.append_data(&mut h, format!("{inner}/"), io::empty())?;
    append_dir(&mut builder, src, inner, base)?;
    let tar_hash = builder.into_inner()?;
    let (gz, diff_id, _) = tar_hash.finish();
    let gz_hash = gz.finish()?;
    let (mut file, digest, size) = gz_hash.finish();
    file.flush()?;
    file.get_ref().sync_all()?;
    Ok(LayerInfo {
        digest,
        diff_id,
        size,
    })
}

fn header(kind: EntryType, mode: u32, mtime: i64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode & 0o7777);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// Sets the entry's owner: the container ids of `meta`'s owner (see [`pack`]).
fn owned(h: &mut Header, meta: &fs::Metadata, base: Option<u32>) {
    h.set_uid(u64::from(super::userns::container_id(meta.uid(), base)));
    h.set_gid(u64::from(super::userns::container_id(meta.gid(), base)));
}

/// Appends the children of `dir` as `name/…`, sorted, without following symlinks.
fn append_dir<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &Path,
    name: &str,
    base: Option<u32>,
) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let child = format!("{name}/{}", entry.file_name().to_string_lossy());
        let meta = fs::symlink_metadata(&path)?;
        let ft = meta.file_type();
        let mode = meta.permissions().mode();
        if ft.is_dir() {
            let mut h = header(EntryType::Directory, mode, meta.mtime());
            owned(&mut h, &meta, base);
            builder.append_data(&mut h, format!("{child}/"), io::empty())?;
            append_dir(builder, &path, &child, base)?;
        } else if ft.is_file() {
            let mut h = header(EntryType::Regular, mode, meta.mtime());
            owned(&mut h, &meta, base);
            h.set_size(meta.len());
            builder.append_data(&mut h, &child, File::open(&path)?)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path)?;
            let mut h = header(EntryType::Symlink, 0o777, meta.mtime());
            owned(&mut h, &meta, base);
            builder.append_link(&mut h, &child, &target)?;
        } else {
            tracing::warn!(path = %path.display(), "output layer: skipping a special file");
        }
    }
    Ok(())
}

/// POSTs the blob at `file` to `{registry}/v2/{repository}/blobs/uploads/?digest=…`
/// (monolithic upload); the registry must answer 201.
pub async fn push(
    client: &reqwest::Client,
    token: &str,
    output: &JobOutput,
    file: &Path,
    layer: &LayerInfo,
) -> Result<(), OutputError> {
    let url = format!(
        "{}/v2/{}/blobs/uploads/?digest={}",
        output.registry.trim_end_matches('/'),
        output.repository,
        layer.digest
    );
    let body = tokio::fs::File::open(file)
        .await
        .map_err(|source| OutputError::Pack {
            dir: file.display().to_string(),
            source,
        })?;
    let stream = tokio_util::io::ReaderStream::new(body);
    let resp = client
        .post(&url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .header(reqwest::header::CONTENT_LENGTH, layer.size)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .map_err(|source| OutputError::Http {
            url: url.clone(),
            source,
        })?;
    if resp.status() != reqwest::StatusCode::CREATED {
        let status = resp.status();
        let body: String = resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        return Err(OutputError::Status { url, status, body });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn pack_maps_a_user_namespace_s_host_ids_to_container_ids() {
        if !nix::unistd::geteuid().is_root() {
            return; // chown needs root (the e2e build journeys cover it too)
        }
        let base = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/mine"), "x").unwrap();
        std::os::unix::fs::symlink("mine", src.join("sub/link")).unwrap();
        for p in ["", "sub", "sub/link"] {
            std::os::unix::fs::lchown(src.join(p), Some(base), Some(base)).unwrap();
        }
        std::os::unix::fs::chown(src.join("sub/mine"), Some(base + 1000), Some(base + 1001))
            .unwrap();
        let out = dir.path().join("layer.tar.gz");
        pack(&src, "/app", &out, Some(base)).unwrap();
        let blob = fs::read(&out).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&blob[..]));
        let owners: Vec<(String, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                let path = e.path().unwrap().to_string_lossy().to_string();
                (path, h.uid().unwrap(), h.gid().unwrap())
            })
            .collect();
        assert_eq!(
            owners,
            [
                ("app/".to_string(), 0, 0),
                ("app/sub/".into(), 0, 0),
                ("app/sub/link".into(), 0, 0),
                ("app/sub/mine".into(), 1000, 1001),
            ]
        );
    }

    #[test]
    fn pack_writes_root_owned_entries_relative_to_root() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("Procfile"), "web: x\n").unwrap();
        fs::write(src.join("sub/run"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(src.join("sub/run"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("run", src.join("sub/link")).unwrap();
        let out = dir.path().join("layer.tar.gz");
        let info = pack(&src, "/srv/app", &out, None).unwrap();

        let blob = fs::read(&out).unwrap();
        assert_eq!(info.size, blob.len() as u64);
        assert_eq!(info.digest, crate::util::sha256_digest(&blob));
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(info.diff_id, crate::util::sha256_digest(&tar));
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(
                (e.header().uid().unwrap(), e.header().gid().unwrap()),
                (0, 0)
            );
            let path = e.path().unwrap().to_string_lossy().to_string();
            if path == "srv/app/sub/run" {
                assert_eq!(e.header().mode().unwrap(), 0o755);
            }
            seen.push(path);
        }
        assert_eq!(
            seen,
            [
                "srv/",
                "srv/app/",
                "srv/app/Procfile",
                "srv/app/sub/",
                "srv/app/sub/link",
                "srv/app/sub/run"
            ]
        );
    }
}
