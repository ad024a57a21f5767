//! Registry token auth (the Docker/OCI token flow that `docker`, `skopeo` and `crane`
//! follow):
//!
//! 1. A request without credentials gets 401 with
//!    `WWW-Authenticate: Bearer realm="http://HOST/v2/token",service="paas"` (plus
//!    `scope="repository:NAME:pull[,push]"` on a repository path), and a
//!    `Basic realm="paas"` challenge after it for clients that only speak Basic.
//! 2. The client calls `GET /v2/token?service=paas&scope=repository:NAME:pull,push` with
//!    Basic credentials (any user name and an API token as the password); the
//!    controller's usual access check decides, per scope, which of `pull` and `push` it may
//!    have, and answers `{"token", "access_token", "expires_in", "issued_at"}`.
//! 3. The client sends `Authorization: Bearer <token>`; the registry accepts it for the
//!    repositories and actions it grants until it expires ([`TOKEN_TTL`]).
//!
//! Tokens are `paasreg.<base64url claims>.<base64url HMAC-SHA256>`, keyed by a key derived
//! from the node token, so every controller sharing that token accepts them. Basic auth
//! (and API tokens as Bearer) keeps working on every call.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// How long an issued token is valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(300);
/// What every registry token starts with (so it is never mistaken for an API token).
pub const PREFIX: &str = "paasreg.";
/// The `service` of the challenge and the tokens.
pub const SERVICE: &str = "paas";
/// The actions a token may grant.
pub const PULL: &str = "pull";
pub const PUSH: &str = "push";

/// Why a registry token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the registry token is malformed: get a new one from /v2/token")]
    Malformed,
    #[error("the registry token's signature is wrong: get a new one from /v2/token")]
    BadSignature,
    #[error("the registry token expired: get a new one from /v2/token")]
    Expired,
}

/// One repository and the actions granted on it (possibly none: asked for, denied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub name: String,
    pub actions: Vec<String>,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    pub access: Vec<Grant>,
}

/// What a token allows on a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// The token does not mention the repository: the client should get another token.
    NotInToken,
    /// The token was issued without this action (the access check refused it).
    Denied,
}

impl Claims {
    /// May the holder pull (`write` false) or push (`write` true) `repo`?
    pub fn decide(&self, repo: &str, write: bool) -> Decision {
        let action = if write { PUSH } else { PULL };
        let mut mentioned = false;
        for grant in self.access.iter().filter(|g| g.name == repo) {
            mentioned = true;
            if grant.actions.iter().any(|a| a == action || a == "*") {
                return Decision::Allowed;
            }
        }
        if mentioned {
            Decision::Denied
        } else {
            Decision::NotInToken
        }
    }
}

/// Signs and checks registry tokens.
#[derive(Clone)]
pub struct TokenIssuer {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenIssuer { .. }")
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenIssuer {
    /// An issuer whose key derives from `secret` (the node token).
    pub fn new(secret: &[u8]) -> TokenIssuer {
        let mut h = Sha256::new();
        h.update(b"paas registry token key v1\0");
        h.update(secret);
        TokenIssuer {
            key: h.finalize().into(),
        }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload);
        mac
    }

    /// A token for `sub` granting `access`, valid for [`TOKEN_TTL`] from `now` (seconds).
    pub fn issue(&self, sub: &str, access: Vec<Grant>, now: u64) -> String {
        let claims = Claims {
            sub: sub.to_string(),
            exp: now + TOKEN_TTL.as_secs(),
            access,
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let sig = URL_SAFE_NO_PAD.encode(self.mac(payload.as_bytes()).finalize().into_bytes());
        format!("{PREFIX}{payload}.{sig}")
    }

    /// The claims of a valid, unexpired token.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
        let (payload, sig) = rest.split_once('.').ok_or(TokenError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenError::Malformed)?;
        self.mac(payload.as_bytes())
            .verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// [`TokenIssuer::verify`] at the current time.
    pub fn verify_now(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify(token, now_secs())
    }

    /// [`TokenIssuer::issue`] at the current time; also returns the issue time.
    pub fn issue_now(&self, sub: &str, access: Vec<Grant>) -> (String, u64) {
        let now = now_secs();
        (self.issue(sub, access, now), now)
    }
}

/// The registry token in an `Authorization: Bearer paasreg.…` header, if any.
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && rest.starts_with(PREFIX)).then_some(rest)
}

/// The `repository:NAME:ACTIONS` scopes of a token request (each `scope` parameter may
/// hold several, space-separated). Other resource types (`registry:catalog:*`) are ignored.
pub fn parse_scopes(scopes: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for scope in scopes.iter().flat_map(|s| s.split_whitespace()) {
        let Some(rest) = scope.strip_prefix("repository:") else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        let mut wanted: Vec<String> = Vec::new();
        for action in actions.split(',') {
            let expanded: &[&str] = match action {
                "*" => &[PULL, PUSH],
                PULL => &[PULL],
                PUSH => &[PUSH],
                _ => &[],
            };
            for a in expanded {
                if !wanted.iter().any(|w| w == a) {
                    wanted.push(a.to_string());
                }
            }
        }
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, have)) => {
                for a in wanted {
                    if !have.contains(&a) {
                        have.push(a);
                    }
                }
            }
            None => out.push((name.to_string(), wanted)),
        }
    }
    out
}

/// The scopes asked for in a token request's query parameters (`scope`, repeated).
pub fn requested(params: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    parse_scopes(&scopes)
}

/// The token endpoint's JSON answer for `grants` (the subject is the `account` parameter,
/// else `paas`).
pub fn answer(
    issuer: &TokenIssuer,
    params: &[(String, String)],
    grants: Vec<Grant>,
) -> serde_json::Value {
    let sub = params
        .iter()
        .find(|(k, _)| k == "account")
        .map(|(_, v)| v.as_str())
        .unwrap_or("paas");
    let (token, issued) = issuer.issue_now(sub, grants);
    let issued_at =
        paas_api::clock::rfc3339_from_ms(i64::try_from(issued).unwrap_or(0).saturating_mul(1000));
    serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": TOKEN_TTL.as_secs(),
        "issued_at": issued_at,
    })
}

/// Replaces the `WWW-Authenticate` of a 401 with [`challenges`] for the request.
pub fn set_challenges(
    resp: &mut http::HeaderMap,
    req: &http::HeaderMap,
    uri: &http::Uri,
    write: bool,
) {
    let host = req
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    let scheme = req
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .or_else(|| uri.scheme_str())
        .unwrap_or("http");
    let insufficient = bearer_token(req).is_some();
    resp.remove(http::header::WWW_AUTHENTICATE);
    for value in challenges(scheme, host, uri.path(), write, insufficient) {
        if let Ok(v) = http::HeaderValue::from_str(&value) {
            resp.append(http::header::WWW_AUTHENTICATE, v);
        }
    }
}

/// The repository a `/v2/NAME/…` path addresses, read from its end like the router does.
fn repo_of_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/")?;
    for marker in ["/tags/list", "/manifests/", "/blobs/"] {
        if let Some(i) = rest.rfind(marker) {
            return Some(&rest[..i]).filter(|n| !n.is_empty());
        }
    }
    None
}

/// `text` as the inside of an RFC 9110 quoted-string (`"` and `\` escaped, controls
/// dropped), so a value from the request cannot end the string and add parameters.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `WWW-Authenticate` values of a 401 for a request to `path` on `host`: the Bearer
/// challenge (with the scope a repository path needs, and `error` when a token lacked it)
/// and a Basic one. Only a valid repository name becomes a scope: a path such as
/// `/v2/x",realm="http://elsewhere/manifests/1` adds nothing to the challenge.
pub fn challenges(
    scheme: &str,
    host: &str,
    path: &str,
    write: bool,
    insufficient: bool,
) -> Vec<String> {
    let mut bearer = format!(
        "Bearer realm=\"{}://{}/v2/token\",service=\"{SERVICE}\"",
        quoted(scheme),
        quoted(host)
    );
    if let Some(repo) = repo_of_path(path).filter(|r| super::names::check_repo(r).is_ok()) {
        let actions = if write { "pull,push" } else { "pull" };
        bearer.push_str(&format!(",scope=\"repository:{repo}:{actions}\""));
        if insufficient {
            bearer.push_str(",error=\"insufficient_scope\"");
        }
    }
    vec![bearer, "Basic realm=\"paas\"".to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(name: &str, actions: &[&str]) -> Grant {
        Grant {
            name: name.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering_other_keys_and_expiry() {
        let issuer = TokenIssuer::new(b"node-token");
        let token = issuer.issue("alice", vec![grant("apps/a", &[PULL, PUSH])], 1000);
        assert!(token.starts_with(PREFIX));
        let claims = issuer.verify(&token, 1001).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.exp, 1000 + TOKEN_TTL.as_secs());
        assert_eq!(
            issuer.verify(&token, 1000 + TOKEN_TTL.as_secs()),
            Err(TokenError::Expired)
        );
        assert_eq!(
            TokenIssuer::new(b"other").verify(&token, 1001),
            Err(TokenError::BadSignature)
        );
        // A payload granting more, with the old signature.
        let forged_claims = Claims {
            sub: "alice".into(),
            exp: 1000 + TOKEN_TTL.as_secs(),
            access: vec![grant("apps/b", &[PUSH])],
        };
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
        let sig = token.rsplit_once('.').unwrap().1;
        let forged = format!("{PREFIX}{forged_payload}.{sig}");
        assert_eq!(issuer.verify(&forged, 1001), Err(TokenError::BadSignature));
        for bad in ["", "paasreg.", "paasreg.x", "paasreg.x.!!", "Bearer x"] {
            assert!(issuer.verify(bad, 1001).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn claims_decide_per_repository_and_action() {
        let claims = Claims {
            sub: "u".into(),
            exp: 0,
            access: vec![
                grant("apps/a", &[PULL, PUSH]),
                grant("apps/b", &[PULL]),
                grant("apps/c", &[]),
            ],
        };
        assert_eq!(claims.decide("apps/a", true), Decision::Allowed);
        assert_eq!(claims.decide("apps/b", false), Decision::Allowed);
        assert_eq!(claims.decide("apps/b", true), Decision::Denied);
        assert_eq!(claims.decide("apps/c", false), Decision::Denied);
        assert_eq!(claims.decide("apps/d", false), Decision::NotInToken);
    }

    #[test]
    fn scopes_parse_merge_and_expand() {
        let scopes = parse_scopes(&[
            "repository:apps/a:pull,push".into(),
            "repository:stacks/tiny:pull repository:apps/a:pull".into(),
            "repository:host:5000/x:*".into(),
            "registry:catalog:*".into(),
            "repository:bad".into(),
        ]);
        assert_eq!(
            scopes,
            vec![
                (
                    "apps/a".to_string(),
                    vec!["pull".to_string(), "push".to_string()]
                ),
                ("stacks/tiny".to_string(), vec!["pull".to_string()]),
                (
                    "host:5000/x".to_string(),
                    vec!["pull".to_string(), "push".to_string()]
                ),
            ]
        );
    }

    #[test]
    fn challenges_name_the_realm_service_and_scope() {
        let c = challenges("http", "127.0.0.1:8080", "/v2/", false, false);
        assert_eq!(
            c[0],
            "Bearer realm=\"http://127.0.0.1:8080/v2/token\",service=\"paas\""
        );
        assert_eq!(c[1], "Basic realm=\"paas\"");
        let c = challenges("http", "h", "/v2/apps/a/blobs/uploads/", true, true);
        assert_eq!(
            c[0],
            "Bearer realm=\"http://h/v2/token\",service=\"paas\",scope=\"repository:apps/a:pull,push\",error=\"insufficient_scope\""
        );
        assert_eq!(repo_of_path("/v2/a/b/manifests/latest"), Some("a/b"));
        assert_eq!(repo_of_path("/v2/a/tags/list"), Some("a"));
        assert_eq!(repo_of_path("/v2/token"), None);
        // Found by registry_prop: a quote in the path ended the scope's quoted-string.
        let c = challenges(
            "http",
            "h\"x",
            "/v2/x\",realm=\"http://elsewhere/manifests/1",
            false,
            false,
        );
        assert_eq!(
            c[0],
            "Bearer realm=\"http://h\\\"x/v2/token\",service=\"paas\""
        );
    }

    #[test]
    fn only_registry_bearer_tokens_are_picked_up() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer paasreg.a.b".parse().unwrap(),
        );
        assert_eq!(bearer_token(&h), Some("paasreg.a.b"));
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer apitoken".parse().unwrap(),
        );
        assert_eq!(bearer_token(&h), None);
        h.insert(http::header::AUTHORIZATION, "Basic eDp5".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
    }
}
