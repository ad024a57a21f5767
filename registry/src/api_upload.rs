//! Blob uploads of the distribution API (`/v2/<name>/blobs/uploads/…`): start (with
//! cross-repository mounts), chunked `PATCH`, status, the final `PUT` with its digest
//! check, cancel. Bodies stream to a file in the store; nothing buffers a layer.

use super::*;

pub(super) fn body_error(e: axum::Error) -> ApiError {
    oci(
        StatusCode::BAD_REQUEST,
        "BLOB_UPLOAD_INVALID",
        format!("reading the request body failed: {e}"),
    )
}

/// 413 for a blob past `--max-blob-bytes` (its upload, if any, is already removed).
pub(super) fn too_big(max: u64) -> ApiError {
    oci(
        StatusCode::PAYLOAD_TOO_LARGE,
        "SIZE_INVALID",
        format!(
            "blob larger than this registry's limit of {max} bytes; the upload was removed \
             (the controller's --max-blob-bytes sets the limit)"
        ),
    )
}

/// The request's Content-Length, if it has a valid one.
pub(super) fn content_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

pub(super) fn digest_mismatch(expected: &str, actual: &str) -> ApiError {
    oci(
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
        format!("the uploaded content has digest {actual}, not {expected}; nothing was stored"),
    )
}

pub(super) fn blob_created(name: &str, digest: &str) -> Response {
    empty(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{name}/blobs/{digest}")),
            (DIGEST_HEADER, digest.to_string()),
        ],
    )
}

/// `Range: 0-<last byte>` as the spec (and docker's registry) write it.
pub(super) fn range_header(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

pub(super) fn upload_accepted(status: StatusCode, name: &str, id: &str, size: u64) -> Response {
    empty(
        status,
        &[
            ("location", format!("/v2/{name}/blobs/uploads/{id}")),
            ("range", range_header(size)),
            (UPLOAD_UUID_HEADER, id.to_string()),
        ],
    )
}

pub(super) async fn start_upload(st: &AppState, name: &str, req: Request) -> ApiResult {
    let q = query(&req);
    if let Some(mount) = q.get("mount") {
        // A mount needs the blob in its `from` repository (whose read access the dispatch
        // checked); otherwise it falls back to an upload, as the spec says.
        let from = q.get("from");
        if digest_hex(mount).is_ok()
            && st.reg.blob_size(mount).await?.is_some()
            && match from {
                Some(from) => {
                    names::check_repo(from).is_ok() && st.reg.repo_has_blob(from, mount).await?
                }
                None => false,
            }
        {
            st.reg.link_blob(name, mount).await?;
            return Ok(blob_created(name, mount));
        }
    } else if let Some(expected) = q.get("digest") {
        digest_hex(expected)?;
        let max = st.reg.max_blob_bytes();
        if content_length(&req).is_some_and(|n| n > max) {
            return Err(too_big(max));
        }
        let mut w = BlobWriter::new(&st.reg).await?;
        let mut stream = req.into_body().into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(body_error)?;
            if w.size() + chunk.len() as u64 > max {
                // Dropping the writer removes its temporary file.
                return Err(too_big(max));
            }
            w.write(&chunk).await?;
        }
        let actual = w.digest();
        if &actual != expected {
            return Err(digest_mismatch(expected, &actual));
        }
        w.commit().await?;
        st.reg.link_blob(name, expected).await?;
        return Ok(blob_created(name, expected));
    }
    let id = st.reg.upload_create().await?;
    st.hashes.lock().expect("upload hash lock").insert(
        id.clone(),
        UploadHash {
            hasher: Sha256::new(),
            size: 0,
        },
    );
    Ok(upload_accepted(StatusCode::ACCEPTED, name, &id, 0))
}

pub(super) async fn upload_status(st: &AppState, name: &str, id: &str) -> ApiResult {
    let size = st.reg.upload_size(id).await?;
    Ok(upload_accepted(StatusCode::NO_CONTENT, name, id, size))
}

/// Appends a request body to an upload, keeping its running hash when it is in step with
/// the file. Returns the new size. An upload that would pass `--max-blob-bytes` is removed
/// (413).
pub(super) async fn append(
    st: &AppState,
    id: &str,
    size: u64,
    req: Request,
) -> Result<u64, ApiError> {
    let max = st.reg.max_blob_bytes();
    if content_length(&req).is_some_and(|n| size.saturating_add(n) > max) {
        drop_upload(st, id).await?;
        return Err(too_big(max));
    }
    let body = req.into_body();
    let mut hash = st
        .hashes
        .lock()
        .expect("upload hash lock")
        .remove(id)
        .filter(|h| h.size == size);
    let path = st.reg.upload_path(id)?;
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .await
        .map_err(store::io_err(format!("opening {}", path.display())))?;
    let mut stream = body.into_data_stream();
    let mut new_size = size;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(body_error)?;
        if new_size + chunk.len() as u64 > max {
            drop(file);
            drop_upload(st, id).await?;
            return Err(too_big(max));
        }
        file.write_all(&chunk)
            .await
            .map_err(store::io_err(format!("writing {}", path.display())))?;
        if let Some(h) = hash.as_mut() {
            h.hasher.update(&chunk);
            h.size += chunk.len() as u64;
        }
        new_size += chunk.len() as u64;
    }
    file.flush()
        .await
        .map_err(store::io_err(format!("writing {}", path.display())))?;
    if let Some(h) = hash {
        st.hashes
            .lock()
            .expect("upload hash lock")
            .insert(id.to_string(), h);
    }
    Ok(new_size)
}

pub(super) async fn patch_upload(st: &AppState, name: &str, id: &str, req: Request) -> ApiResult {
    let size = st.reg.upload_size(id).await?;
    if let Some(cr) = req.headers().get(header::CONTENT_RANGE) {
        let cr = String::from_utf8_lossy(cr.as_bytes());
        if let Err(why) = crate::ranges::chunk_continues(&cr, size, content_length(&req)) {
            let mut resp = upload_accepted(StatusCode::RANGE_NOT_SATISFIABLE, name, id, size);
            let body = serde_json::json!({"errors": [{"code": "BLOB_UPLOAD_INVALID",
                "message": format!("{why}; nothing was added to the upload")}]});
            *resp.body_mut() = Body::from(body.to_string());
            resp.headers_mut().remove(header::CONTENT_LENGTH);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return Ok(resp);
        }
    }
    let new_size = append(st, id, size, req).await?;
    Ok(upload_accepted(StatusCode::ACCEPTED, name, id, new_size))
}

pub(super) async fn put_upload(st: &AppState, name: &str, id: &str, req: Request) -> ApiResult {
    let size = st.reg.upload_size(id).await?;
    let Some(expected) = query(&req).get("digest").cloned() else {
        return Err(oci(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "finishing an upload needs ?digest=sha256:<hex>",
        ));
    };
    digest_hex(&expected)?;
    let size = append(st, id, size, req).await?;
    let hash = st.hashes.lock().expect("upload hash lock").remove(id);
    let actual = match hash {
        Some(h) if h.size == size => store::digest_of(h.hasher),
        _ => store::hash_file(&st.reg.upload_path(id)?).await?.0,
    };
    if actual != expected {
        st.reg.upload_delete(id).await?;
        return Err(digest_mismatch(&expected, &actual));
    }
    st.reg.upload_commit(id, &expected).await?;
    st.reg.link_blob(name, &expected).await?;
    Ok(blob_created(name, &expected))
}

pub(super) async fn delete_upload(st: &AppState, id: &str) -> ApiResult {
    drop_upload(st, id).await?;
    Ok(empty(StatusCode::NO_CONTENT, &[]))
}

/// Forgets an upload: its running hash and its file.
pub(super) async fn drop_upload(st: &AppState, id: &str) -> Result<(), ApiError> {
    st.hashes.lock().expect("upload hash lock").remove(id);
    st.reg.upload_delete(id).await?;
    Ok(())
}

/// How long an upload may go without a write before the periodic sweep removes it.
pub const UPLOAD_IDLE: std::time::Duration = std::time::Duration::from_secs(3600);
/// How often the periodic sweep runs.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes uploads in `dir` (`registry/uploads/<uuid>`, and `.tmp-*` files) last written
/// more than `idle` ago: chunked uploads a client abandoned or a killed controller or
/// builder cut. `idle` zero removes every upload written before this call (at start-up,
/// when no upload of this process exists yet). Returns how many were removed.
pub fn sweep_uploads(dir: &std::path::Path, idle: std::time::Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if !meta.is_file() || (!idle.is_zero() && age < idle) {
            continue;
        }
        if std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod sweep_tests {
    #[test]
    fn idle_uploads_go_and_fresh_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old-upload");
        std::fs::write(&old, b"cut").unwrap();
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        let fresh = dir.path().join("fresh-upload");
        std::fs::write(&fresh, b"going").unwrap();
        assert_eq!(super::sweep_uploads(dir.path(), super::UPLOAD_IDLE), 1);
        assert!(!old.exists() && fresh.exists());
        // At start-up every upload is a leftover.
        assert_eq!(
            super::sweep_uploads(dir.path(), std::time::Duration::ZERO),
            1
        );
        assert!(!fresh.exists());
    }
}
