//! ETags for config vars and the formation: a `GET` (and every `PATCH`) answers with
//! `ETag: "<hash of the JSON body>"`; a `PATCH` with `If-Match` that no longer matches is
//! refused with 412 `precondition_failed`, nothing changed. Conditional PATCHes are
//! serialized in the controller, so check-then-write cannot interleave.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderMap, HeaderValue};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, MutexGuard};

use super::ApiError;

static CONDITIONAL: Mutex<()> = Mutex::const_new(());

/// The ETag of a JSON value: a quoted prefix of the sha256 of its serialization.
pub fn of<T: Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    format!("\"{}\"", &hex::encode(Sha256::digest(&bytes))[..16])
}

/// The value as JSON with its ETag.
pub fn json<T: Serialize>(value: T) -> Response {
    let tag = of(&value);
    let mut resp = Json(value).into_response();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// When the request has `If-Match`: a guard that serializes conditional updates. Take it
/// before reading the current value, then call [`check`].
pub async fn lock_if_conditional(headers: &HeaderMap) -> Option<MutexGuard<'static, ()>> {
    if headers.contains_key(header::IF_MATCH) {
        Some(CONDITIONAL.lock().await)
    } else {
        None
    }
}

/// Refuses the update when `If-Match` is given and matches neither `*` nor `current`.
pub fn check<T: Serialize>(headers: &HeaderMap, current: &T, what: &str) -> Result<(), ApiError> {
    let Some(want) = headers.get(header::IF_MATCH) else {
        return Ok(());
    };
    let want = want.to_str().unwrap_or_default();
    let now = of(current);
    let matches = want
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == now);
    if matches {
        Ok(())
    } else {
        Err(ApiError::PreconditionFailed(format!(
            "the {what} changed since you read it (If-Match {want}, now {now}): read it \
             again and retry"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_is_checked_against_the_current_value() {
        let v = serde_json::json!({"A": "1"});
        let tag = of(&v);
        let mut h = HeaderMap::new();
        assert!(check(&h, &v, "config").is_ok());
        h.insert(header::IF_MATCH, HeaderValue::from_str(&tag).unwrap());
        assert!(check(&h, &v, "config").is_ok());
        let changed = serde_json::json!({"A": "2"});
        let e = check(&h, &changed, "config").unwrap_err();
        assert!(e.to_string().contains("read it again"), "{e}");
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        assert!(check(&h, &changed, "config").is_ok());
    }
}
