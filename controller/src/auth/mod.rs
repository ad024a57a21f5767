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
pub mod tokens;

pub use caller::{
    failure_response, log_refusal, source_of, AppAccess, AuthFailure, Caller, Principal, Source,
};
pub use limit::FailureLimiter;
pub use tokens::BOOTSTRAP_ADMIN;
pub use tokens::{constant_time_eq, presented_token, Role, Tokens};

use std::sync::Arc;

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
