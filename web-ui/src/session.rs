//! Sessions without server-side state: a cookie `paas_session` holding the user, an expiry
//! and a CSRF token, signed with HMAC-SHA256 under the controller's session key
//! ([`crate::Dashboard::session_key`]). A restart keeps sessions valid as long as the key is
//! kept. Logging out clears the cookie (a copied cookie stays valid until it expires).
//!
//! CSRF: every POST form carries `csrf`, which must equal the token inside the signed
//! session cookie. The login form (no session yet) uses a double-submit cookie
//! `paas_login_csrf`. Cookies are `HttpOnly; SameSite=Strict; Path=/`, plus `Secure` when
//! the request came over https (`X-Forwarded-Proto: https`).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use crate::Dashboard;

/// The session cookie's name.
pub const COOKIE: &str = "paas_session";
/// The login form's double-submit cookie.
pub const LOGIN_CSRF_COOKIE: &str = "paas_login_csrf";
/// How long a session lasts.
pub const TTL_SECS: u64 = 12 * 3600;

/// A logged-in user, from a valid session cookie. As an extractor it redirects to
/// `/login` when there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    pub expires: u64,
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Compares without stopping at the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A random token, 32 hex characters.
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Session {
    /// A fresh session for `user` with a new CSRF token.
    pub fn new(user: &str) -> Session {
        Session {
            user: user.to_string(),
            csrf: random_token(),
            expires: now_secs() + TTL_SECS,
        }
    }

    /// The signed cookie value: `v1.<hex user>.<expiry>.<csrf>.<hex mac>`.
    pub fn encode(&self, key: &[u8]) -> String {
        let body = format!(
            "v1.{}.{}.{}",
            hex::encode(&self.user),
            self.expires,
            self.csrf
        );
        let mac = hmac_sha256(key, body.as_bytes());
        format!("{body}.{}", hex::encode(mac))
    }

    /// Parses and checks a cookie value; `None` when it is forged, malformed or expired.
    pub fn decode(value: &str, key: &[u8]) -> Option<Session> {
        let (body, mac) = value.rsplit_once('.')?;
        let mac = hex::decode(mac).ok()?;
        if !constant_time_eq(&mac, &hmac_sha256(key, body.as_bytes())) {
            return None;
        }
        let mut parts = body.split('.');
        if parts.next()? != "v1" {
            return None;
        }
        let user = String::from_utf8(hex::decode(parts.next()?).ok()?).ok()?;
        let expires: u64 = parts.next()?.parse().ok()?;
        let csrf = parts.next()?.to_string();
        if parts.next().is_some() || expires < now_secs() || csrf.is_empty() {
            return None;
        }
        Some(Session {
            user,
            csrf,
            expires,
        })
    }

    /// Whether a submitted form token matches this session's.
    pub fn csrf_ok(&self, submitted: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), submitted.as_bytes())
    }
}

/// One cookie's value from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request reached us over https (directly or through a proxy that says so).
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

impl<D: Dashboard> FromRequestParts<Arc<D>> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<D>) -> Result<Self, Self::Rejection> {
        cookie(&parts.headers, COOKIE)
            .and_then(|v| Session::decode(v, &d.session_key()))
            .ok_or_else(|| Redirect::to("/login").into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sessions_round_trip_and_reject_tampering() {
        let key = b"0123456789abcdef0123456789abcdef";
        let s = Session::new("admin");
        let v = s.encode(key);
        assert_eq!(Session::decode(&v, key), Some(s.clone()));
        assert_eq!(
            Session::decode(&v, b"another key, another key, anothe"),
            None
        );
        let forged = v.replacen(&hex::encode("admin"), &hex::encode("root"), 1);
        assert_eq!(Session::decode(&forged, key), None);
        let expired = Session {
            expires: 1,
            ..s.clone()
        };
        assert_eq!(Session::decode(&expired.encode(key), key), None);
        assert!(s.csrf_ok(&s.csrf));
        assert!(!s.csrf_ok("nope"));
        assert!(!s.csrf_ok(""));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; paas_session=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(set_cookie("n", "v", 5, true).ends_with("; Secure"));
        assert!(set_cookie("n", "v", 5, false).contains("HttpOnly; SameSite=Strict"));
    }
}
