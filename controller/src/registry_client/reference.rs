//! References to images in other registries (`HOST[:PORT]/REPO[:TAG|@sha256:…]`) and the
//! rule that tells them from names in paas's own registry.

use super::Error;
use crate::registry::names;

/// Docker Hub's names as people write them, and the host its API answers on.
const DOCKER_HUB: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// An image in another registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry as credentials are stored for it: `host[:port]`, lower-case, Docker
    /// Hub's aliases as `docker.io`.
    pub host: String,
    /// The repository there (`team/base`; Docker Hub's one-word names get `library/`).
    pub repo: String,
    /// A tag or a `sha256:…` digest.
    pub reference: String,
}

/// The registry part of a reference when it names one: a first path component with a `.`
/// or a `:`, or `localhost` (Docker's rule). `apps/web:1` and `bookworm` have none.
pub fn registry_host(image: &str) -> Option<&str> {
    let (first, _) = image.trim().split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

/// `host[:port]` as stored: lower-case, Docker Hub's aliases folded into `docker.io`.
pub fn normalize_host(host: &str) -> Result<String, Error> {
    let host = host.trim().trim_end_matches('/').to_ascii_lowercase();
    let host = host
        .strip_prefix("https://")
        .or_else(|| host.strip_prefix("http://"))
        .unwrap_or(&host)
        .to_string();
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        && !host.starts_with(['-', '.', ':']);
    if !ok {
        return Err(Error::BadReference(format!(
            "{host:?} is not a registry host: use HOST or HOST:PORT (e.g. registry.example.com:5000)"
        )));
    }
    Ok(if DOCKER_HUB.contains(&host.as_str()) {
        "docker.io".to_string()
    } else {
        host
    })
}

impl Reference {
    /// Parses `HOST[:PORT]/REPO[:TAG|@sha256:…]`; `None` when `image` names no registry
    /// (it is then a name in paas's own registry).
    pub fn parse(image: &str) -> Result<Option<Reference>, Error> {
        let image = image.trim();
        let Some(first) = registry_host(image) else {
            return Ok(None);
        };
        let host = normalize_host(first)?;
        let rest = &image[first.len() + 1..];
        let (repo, reference) = if let Some((repo, digest)) = rest.split_once('@') {
            (repo, digest.to_string())
        } else {
            match rest.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => (repo, tag.to_string()),
                _ => (rest, "latest".to_string()),
            }
        };
        let repo = if host == "docker.io" && !repo.contains('/') {
            format!("library/{repo}")
        } else {
            repo.to_string()
        };
        let bad = |why: String| {
            Error::BadReference(format!(
                "{image} is not an image reference ({why}): use HOST[:PORT]/REPO:TAG or \
                 HOST[:PORT]/REPO@sha256:…"
            ))
        };
        names::check_repo(&repo).map_err(|e| bad(e.to_string()))?;
        if names::is_digest(&reference) {
            names::digest_hex(&reference).map_err(|e| bad(e.to_string()))?;
        } else {
            names::check_tag(&reference).map_err(|e| bad(e.to_string()))?;
        }
        Ok(Some(Reference {
            host,
            repo,
            reference,
        }))
    }

    /// The `host[:port]` the registry API answers on.
    pub fn api_host(&self) -> &str {
        if self.host == "docker.io" {
            DOCKER_HUB_API
        } else {
            &self.host
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sep = if names::is_digest(&self.reference) {
            '@'
        } else {
            ':'
        };
        write!(f, "{}/{}{sep}{}", self.host, self.repo, self.reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap().unwrap()
    }

    #[test]
    fn hosts_ports_tags_and_digests() {
        let r = p("127.0.0.1:5000/team/base:1.2");
        assert_eq!(
            (r.host.as_str(), r.repo.as_str(), r.reference.as_str()),
            ("127.0.0.1:5000", "team/base", "1.2")
        );
        assert_eq!(r.api_host(), "127.0.0.1:5000");
        assert_eq!(r.to_string(), "127.0.0.1:5000/team/base:1.2");
        let r = p("Registry.Example.com/web");
        assert_eq!(
            (r.host.as_str(), r.reference.as_str()),
            ("registry.example.com", "latest")
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = p(&format!("localhost/a/b@{d}"));
        assert_eq!((r.repo.as_str(), r.reference.clone()), ("a/b", d.clone()));
        assert_eq!(r.to_string(), format!("localhost/a/b@{d}"));
    }

    #[test]
    fn docker_hub_names() {
        let r = p("docker.io/nginx:1.27");
        assert_eq!(
            (r.host.as_str(), r.repo.as_str()),
            ("docker.io", "library/nginx")
        );
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(p("index.docker.io/someone/app").repo, "someone/app");
        assert_eq!(
            normalize_host("https://INDEX.docker.io/").unwrap(),
            "docker.io"
        );
    }

    #[test]
    fn names_without_a_registry_are_paas_own() {
        assert_eq!(Reference::parse("apps/web:1").unwrap(), None);
        assert_eq!(Reference::parse("bookworm").unwrap(), None);
        assert_eq!(Reference::parse("stacks/tiny:latest").unwrap(), None);
        assert_eq!(registry_host("apps/web"), None);
        assert_eq!(registry_host("h.io/x"), Some("h.io"));
    }

    #[test]
    fn bad_references_say_what_to_write() {
        for bad in [
            "h.io/UPPER:1",
            "h.io/a/../b",
            "h.io/a@sha256:xyz",
            "h.io/a:bad tag",
            "h o.io/a",
        ] {
            let e = Reference::parse(bad).unwrap_err().to_string();
            assert!(e.contains("HOST"), "{bad}: {e}");
        }
    }
}
