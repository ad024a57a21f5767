//! The controller's two tokens (admin and node), how a request presents one, and the
//! bootstrap admin's user name. Nothing here reads the store or the controller's state:
//! the shared state holds a [`Tokens`], and `Caller` (in `caller`) builds on it.

use std::sync::Arc;

use base64::Engine as _;
use http::HeaderMap;

/// The user the admin token acts as: the first admin, whose first password is the admin
/// token.
pub const BOOTSTRAP_ADMIN: &str = "admin";

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
