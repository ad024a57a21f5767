//! ACME HTTP-01 answers: while the controller orders a certificate for a host, the CA asks
//! `GET http://<host>/.well-known/acme-challenge/<token>` and must get the key
//! authorization back. [`Challenges`] is the shared map `token → (host, key authorization)`
//! the ACME client fills and the proxy reads. The proxy looks only at requests whose path
//! starts with [`PREFIX`] (one `starts_with` per request); everything else never touches
//! the map or its lock.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

/// The path prefix of HTTP-01 challenge requests (RFC 8555 §8.3).
pub const PREFIX: &str = "/.well-known/acme-challenge/";

/// Pending HTTP-01 challenges. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Challenges {
    inner: Arc<RwLock<HashMap<String, (String, Bytes)>>>,
    changed: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Challenges {
    /// Answers `GET PREFIX<token>` on `host` with `key_authorization` until removed.
    pub fn insert(&self, token: &str, host: &str, key_authorization: &str) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.insert(
            token.to_string(),
            (
                host.to_ascii_lowercase(),
                Bytes::copy_from_slice(key_authorization.as_bytes()),
            ),
        );
        drop(map);
        self.changed.send_modify(|v| *v += 1);
    }

    /// Stops answering for `token`.
    pub fn remove(&self, token: &str) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.remove(token);
        drop(map);
        self.changed.send_modify(|v| *v += 1);
    }

    /// Every pending challenge as (token, host, key authorization), sorted by token.
    pub fn list(&self) -> Vec<(String, String, String)> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<(String, String, String)> = map
            .iter()
            .map(|(t, (h, ka))| {
                (
                    t.clone(),
                    h.clone(),
                    String::from_utf8_lossy(ka).into_owned(),
                )
            })
            .collect();
        all.sort();
        all
    }

    /// Replaces every pending challenge with `all` (token, host, key authorization).
    pub fn replace(&self, all: &[(String, String, String)]) {
        let next = all
            .iter()
            .map(|(t, h, ka)| {
                (
                    t.clone(),
                    (
                        h.to_ascii_lowercase(),
                        Bytes::copy_from_slice(ka.as_bytes()),
                    ),
                )
            })
            .collect();
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = next;
        self.changed.send_modify(|v| *v += 1);
    }

    /// Turns when a challenge is added or removed (for the router process's feed).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// How many challenges are answered now.
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when no challenge is answered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key authorization for a request to `host` (normalized) with `path` (which starts
    /// with [`PREFIX`]), if a challenge is pending for that token and host.
    pub(crate) fn answer(&self, host: &str, path: &str) -> Option<Bytes> {
        let token = path.strip_prefix(PREFIX)?;
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        match map.get(token) {
            Some((h, ka)) if h == host => Some(ka.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_only_its_host_and_token() {
        let c = Challenges::default();
        c.insert("tok", "WWW.example.test", "tok.thumb");
        let p = format!("{PREFIX}tok");
        assert_eq!(c.answer("www.example.test", &p).unwrap(), "tok.thumb");
        assert!(c.answer("other.example.test", &p).is_none());
        assert!(c
            .answer("www.example.test", &format!("{PREFIX}nope"))
            .is_none());
        c.remove("tok");
        assert!(c.answer("www.example.test", &p).is_none());
        assert!(c.is_empty());
    }
}
