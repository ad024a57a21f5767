//! What a router is fed: the whole route table, the apps redirected to HTTPS, the app
//! certificates and the pending ACME challenges, as one JSON document ([`Feed`]).
//!
//! The controller sends one per line (the full state first, then again after each change)
//! on `GET /internal/router/feed`; the router process applies each and saves it in its
//! state dir ([`save`]: owner-only, written whole then renamed), so a restarted router
//! serves the last state at once, with no controller up ([`load`]).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::tls::PemCert;
use crate::{Backend, Route, RouteTable};

/// The file in the router's state dir that holds the last [`Feed`].
pub const SAVED: &str = "table.json";

/// Why a feed could not be read or saved.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("the router state {path} is not a valid route table ({source}); delete it and the router waits for a controller to feed it")]
    Json {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One backend on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireBackend {
    pub addr: String,
    pub job_id: String,
}

/// One route on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRoute {
    pub app: String,
    pub hosts: Vec<String>,
    pub backends: Vec<WireBackend>,
}

/// One pending ACME HTTP-01 challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireChallenge {
    pub token: String,
    pub host: String,
    pub key_authorization: String,
}

/// Everything a router needs to serve.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feed {
    pub routes: Vec<WireRoute>,
    /// Apps whose plain HTTP requests are redirected to HTTPS.
    #[serde(default)]
    pub https_redirects: Vec<String>,
    #[serde(default)]
    pub certs: Vec<PemCert>,
    #[serde(default)]
    pub challenges: Vec<WireChallenge>,
    /// Every app's permanent number by name (None from a controller that sends none): a
    /// name whose number changed is another app (the access history of the old one is
    /// forgotten), a number under a new name a rename (its history moves along).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_ids: Option<std::collections::BTreeMap<String, u64>>,
}

/// Routes as they go on the wire.
pub fn wire_routes(routes: &[Route]) -> Vec<WireRoute> {
    routes
        .iter()
        .map(|r| WireRoute {
            app: r.app.clone(),
            hosts: r.hosts.clone(),
            backends: r
                .backends
                .iter()
                .map(|b| WireBackend {
                    addr: b.addr.clone(),
                    job_id: b.job_id.clone(),
                })
                .collect(),
        })
        .collect()
}

/// Routes from the wire.
pub fn routes_of(wire: Vec<WireRoute>) -> Vec<Route> {
    wire.into_iter()
        .map(|r| Route {
            app: r.app,
            hosts: r.hosts,
            backends: r
                .backends
                .into_iter()
                .map(|b| Backend {
                    addr: b.addr,
                    job_id: b.job_id,
                })
                .collect(),
        })
        .collect()
}

impl Feed {
    /// The state `table` serves now.
    pub fn of(table: &RouteTable) -> Feed {
        Feed {
            routes: wire_routes(&table.routes()),
            https_redirects: table.https_redirects(),
            certs: table.certs().pem_certs().as_ref().clone(),
            challenges: table
                .challenges()
                .list()
                .into_iter()
                .map(|(token, host, key_authorization)| WireChallenge {
                    token,
                    host,
                    key_authorization,
                })
                .collect(),
            app_ids: None,
        }
    }

    /// Makes `table` serve this state (certificates first, so a new host has its
    /// certificate when it appears; then redirects and routes).
    pub fn apply(&self, table: &RouteTable) {
        if table.certs().pem_certs().as_slice() != self.certs.as_slice() {
            table.certs().replace(&self.certs);
        }
        let challenges: Vec<(String, String, String)> = self
            .challenges
            .iter()
            .map(|c| (c.token.clone(), c.host.clone(), c.key_authorization.clone()))
            .collect();
        if table.challenges().list() != challenges {
            table.challenges().replace(&challenges);
        }
        if let Some(ids) = &self.app_ids {
            table.access_log().set_app_ids(ids);
        }
        table.set_https_redirects(&self.https_redirects);
        let routes = routes_of(self.routes.clone());
        if table.routes() != routes {
            table.replace(routes);
        }
    }
}

/// Saves `feed` as `<dir>/table.json`, owner-only (it holds certificate keys), written
/// to a temporary file first and renamed over the old one so a crash leaves one or the
/// other whole.
pub fn save(dir: &Path, feed: &Feed) -> Result<(), FeedError> {
    let path = dir.join(SAVED);
    let tmp = dir.join(format!("{SAVED}.tmp"));
    let io = |what, p: &PathBuf| {
        let path = p.display().to_string();
        move |source| FeedError::Io { what, path, source }
    };
    let json = serde_json::to_vec(feed).map_err(|source| FeedError::Json {
        path: path.display().to_string(),
        source,
    })?;
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("writing the router state", &tmp))?;
    f.write_all(&json)
        .and_then(|()| f.sync_all())
        .map_err(io("writing the router state", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("saving the router state", &path))?;
    Ok(())
}

/// The feed saved in `dir` (None: nothing saved yet). A file others may read is made
/// owner-only again.
pub fn load(dir: &Path) -> Result<Option<Feed>, FeedError> {
    let path = dir.join(SAVED);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(FeedError::Io {
                what: "reading the router state",
                path: path.display().to_string(),
                source,
            })
        }
    };
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|source| FeedError::Json {
            path: path.display().to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Feed {
        Feed {
            routes: vec![WireRoute {
                app: "a".into(),
                hosts: vec!["a.localhost".into()],
                backends: vec![WireBackend {
                    addr: "127.0.0.1:1".into(),
                    job_id: "j1".into(),
                }],
            }],
            https_redirects: vec!["a".into()],
            certs: vec![],
            challenges: vec![WireChallenge {
                token: "t".into(),
                host: "a.localhost".into(),
                key_authorization: "t.k".into(),
            }],
            app_ids: None,
        }
    }

    #[test]
    fn a_feed_applied_is_what_the_table_serves() {
        let table = RouteTable::new();
        let feed = sample();
        feed.apply(&table);
        assert_eq!(Feed::of(&table), feed);
    }

    #[test]
    fn saved_state_is_owner_only_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        save(dir.path(), &sample()).unwrap();
        let mode = std::fs::metadata(dir.path().join(SAVED))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load(dir.path()).unwrap(), Some(sample()));
        std::fs::write(dir.path().join(SAVED), "{not json").unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a valid route table"), "{err}");
    }

    #[tokio::test]
    async fn changes_turn_on_replace_and_challenges() {
        let table = RouteTable::new();
        let mut routes = table.changes();
        let challenges = table.challenges().changes();
        sample().apply(&table);
        assert!(routes.has_changed().unwrap());
        assert!(challenges.has_changed().unwrap());
        routes.mark_unchanged();
        sample().apply(&table);
        assert!(
            !routes.has_changed().unwrap(),
            "the same state changes nothing"
        );
    }
}
