//! Who is calling: the admin token (full access) or the node token (heartbeats, registry,
//! build inputs under `/internal/`), sent as `Authorization: Bearer <token>` or as HTTP
//! Basic auth with any user name and the token as password (what `git` and `skopeo` send).
//! Tokens are compared in constant time.
//!
//! Users, API tokens, collaborators and per-node tokens live in the store; [`Caller`]
//! resolves any of these credentials and is what handlers check (`caller.require_admin()`,
//! `caller.require_app(&c, &app).await`). Submodules: `caller` (the extractor and checks),
//! `password` (argon2 and token secrets), `limit` (failure limits per source and per user
//! name that never refuse a valid credential), `login` (password logins within them).

mod caller;
pub mod limit;
pub mod login;
pub mod password;

pub use caller::{
    failure_response, log_refusal, source_of, AppAccess, AuthFailure, Caller, Principal, Source,
    BOOTSTRAP_ADMIN,
};
pub use limit::FailureLimiter;

use std::sync::Arc;

use base64::Engine as _;
use http::HeaderMap;

/// The two tokens the controller knows.
#[derive(Clone)]
pub struct Tokens {
    admin: String,
    node: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

/// What a valid token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Heartbeats, the registry and the build inputs.
    Node,
}

impl Tokens {
    pub fn new(admin: String, node: String) -> Tokens {
        Tokens { admin, node }
    }

    pub fn admin(&self) -> &str {
        &self.admin
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// The role of the credentials in `headers`, if they are valid.
    pub fn role(&self, headers: &HeaderMap) -> Option<Role> {
        let presented = presented_token(headers)?;
        // Check both so the time taken does not say which token came close.
        let is_admin = constant_time_eq(presented.as_bytes(), self.admin.as_bytes());
        let is_node = constant_time_eq(presented.as_bytes(), self.node.as_bytes());
        if is_admin {
            Some(Role::Admin)
        } else if is_node {
            Some(Role::Node)
        } else {
            None
        }
    }

    /// True for the admin token.
    pub fn is_admin(&self, headers: &HeaderMap) -> bool {
        self.role(headers) == Some(Role::Admin)
    }

    /// True for the node token or the admin token.
    pub fn is_node_or_admin(&self, headers: &HeaderMap) -> bool {
        self.role(headers).is_some()
    }

    /// The check the registry runs on every request: node or admin token.
    pub fn registry_check(&self) -> crate::registry::AuthCheck {
        let tokens = self.clone();
        Arc::new(move |headers: &HeaderMap| tokens.is_node_or_admin(headers))
    }
}

/// The registry's per-repository check: resolves the caller like the API does; admins and
/// nodes may pull and push everything, members pull and push `apps/<app>` of the apps they
/// collaborate on and pull `stacks/…`.
pub fn registry_access(c: Arc<crate::state::Controller>) -> crate::registry::RepoCheck {
    use crate::registry::RepoAccess;
    Arc::new(move |headers, source, repo, write| {
        let c = Arc::clone(&c);
        Box::pin(async move {
            let path = format!("/v2/{}", repo.as_deref().unwrap_or(""));
            let caller = match Caller::resolve(&c, &headers, source, &path).await {
                Ok(caller) => caller,
                Err(f) => {
                    return match failure_response(f, source, &path) {
                        crate::api_error::ApiError::RateLimited(s) => RepoAccess::Limited(s),
                        _ => RepoAccess::Unauthorized,
                    }
                }
            };
            let Some(repo) = repo else {
                return RepoAccess::Allowed;
            };
            match may_use_repository(&c, &caller, &repo, write).await {
                Ok(true) => return RepoAccess::Allowed,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!("registry access check: {e}");
                    return RepoAccess::Forbidden("the access check failed".into());
                }
            }
            let reason = format!("{} may not access repository {repo}", caller.name());
            log_refusal(403, source, &path, &reason);
            RepoAccess::Forbidden(format!(
                "{reason}: members use only the repositories of apps they collaborate on"
            ))
        })
    })
}

/// The registry's rule for one repository, also used by every other place that takes a
/// repository from a caller (an image deploy): admins and nodes may pull and push
/// everything; members pull and push `apps/<app>` of the apps they collaborate on, and
/// pull `stacks/…`.
pub async fn may_use_repository(
    c: &crate::state::Controller,
    caller: &Caller,
    repo: &str,
    write: bool,
) -> Result<bool, crate::api_error::ApiError> {
    if caller.is_admin() || caller.is_node() {
        return Ok(true);
    }
    if !write && repo.starts_with("stacks/") {
        return Ok(true);
    }
    match repo.strip_prefix("apps/").filter(|a| !a.contains('/')) {
        Some(app) => caller.can_use_app(c, app).await,
        None => Ok(false),
    }
}

/// The token in a Bearer or Basic `Authorization` header.
pub fn presented_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.to_string())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_user, password) = text.split_once(':')?;
        Some(password.to_string())
    } else {
        None
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimizer from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    fn basic(user: &str, password: &str) -> String {
        let raw = format!("{user}:{password}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    #[test]
    fn bearer_and_basic_map_to_roles() {
        let t = Tokens::new("admintok".into(), "nodetok".into());
        assert_eq!(t.role(&headers("Bearer admintok")), Some(Role::Admin));
        assert_eq!(t.role(&headers("bearer nodetok")), Some(Role::Node));
        assert_eq!(
            t.role(&headers(&basic("anyone", "admintok"))),
            Some(Role::Admin)
        );
        assert_eq!(t.role(&headers(&basic("", "nodetok"))), Some(Role::Node));
        assert_eq!(t.role(&headers("Bearer admintokx")), None);
        assert_eq!(t.role(&headers(&basic("admintok", ""))), None);
        assert_eq!(t.role(&headers("Token admintok")), None);
        assert_eq!(t.role(&headers("Basic !!!")), None);
        assert_eq!(t.role(&HeaderMap::new()), None);
        assert!(t.is_admin(&headers("Bearer admintok")));
        assert!(!t.is_admin(&headers("Bearer nodetok")));
        assert!(t.is_node_or_admin(&headers("Bearer nodetok")));
        assert!((t.registry_check())(&headers(&basic("u", "nodetok"))));
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
