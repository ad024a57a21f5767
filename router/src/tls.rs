//! HTTPS for the router: the certificates it presents and the checks an uploaded one must
//! pass. [`TlsCerts`] is a shared, swappable set of certificates indexed by the app they
//! belong to and the DNS names they cover (`www.example.test`, `*.example.test`); it is
//! rustls' certificate resolver. For an SNI name it first finds the app that serves that
//! host (the route table tells it, [`TlsCerts::set_hosts`]), then that app's certificate
//! for the name (exact first, then the wildcard one label up), else the default one (a
//! self-signed `*.<domain>` made once and kept in the data directory). So one app's
//! certificate is never presented for another app's host, nor for a host no app serves,
//! whatever names it carries. Replacing the set takes effect for the next handshake; no
//! restart.
//!
//! [`check_cert`] validates an upload (PEM chain + key): it parses, the key matches the
//! first certificate, it is valid now, every DNS name it carries is one of the app's host
//! names (wildcards only when the caller may, i.e. admins), and it covers at least one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The largest PEM (chain or key) accepted, in bytes.
pub const MAX_PEM_BYTES: usize = 64 * 1024;
/// The most certificates in one chain.
pub const MAX_CHAIN: usize = 10;

/// Why a certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("the {what} is empty: send the PEM text (-----BEGIN …-----)")]
    Empty { what: &'static str },
    #[error("the {what} is {len} bytes; at most {MAX_PEM_BYTES} are accepted")]
    TooLarge { what: &'static str, len: usize },
    #[error(
        "the certificate is not PEM: expected one or more -----BEGIN CERTIFICATE----- blocks \
         ({0})"
    )]
    CertPem(String),
    #[error("the certificate chain has {0} certificates; at most {MAX_CHAIN} are accepted")]
    LongChain(usize),
    #[error(
        "the key is not a PEM private key: expected -----BEGIN PRIVATE KEY----- (PKCS#8), \
         RSA PRIVATE KEY or EC PRIVATE KEY ({0})"
    )]
    KeyPem(String),
    #[error("the certificate is not a valid X.509 certificate: {0}")]
    X509(String),
    #[error("the key cannot be used: {0} (RSA, ECDSA P-256/P-384 and Ed25519 keys work)")]
    Key(String),
    #[error(
        "the key does not belong to the certificate: upload the key the certificate was issued for"
    )]
    KeyMismatch,
    #[error("the certificate expired at {0}: renew it and upload the new one")]
    Expired(String),
    #[error("the certificate is not valid before {0}")]
    NotYetValid(String),
    #[error("the certificate names no DNS host (subjectAltName): a TLS client would refuse it")]
    NoNames,
    #[error(
        "the certificate covers {names} but none of the app's host names ({hosts}): add the \
         domain first (paas domains:add) or upload a certificate for one of them"
    )]
    NoAppHost { names: String, hosts: String },
    #[error(
        "the certificate also names {foreign}, which {why}: every name of an app's \
         certificate must be one of its host names ({hosts}). Add the domain to this app \
         first (paas domains:add), or use a certificate for its names only"
    )]
    ForeignNames {
        foreign: String,
        why: &'static str,
        hosts: String,
    },
    #[error("making the default certificate: {0}")]
    Generate(String),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A certificate that passed [`check_cert`].
#[derive(Debug, Clone)]
pub struct CheckedCert {
    /// The DNS names the certificate covers (lower case, `*.x` for wildcards).
    pub names: Vec<String>,
    /// Which of the app's host names it covers.
    pub covers: Vec<String>,
    /// RFC 3339, UTC.
    pub not_after: String,
    pub not_after_unix: i64,
    pub subject: String,
    pub issuer: String,
}

/// One certificate for the router: id, the app it belongs to, PEM chain and key (already
/// checked on upload).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PemCert {
    pub id: String,
    /// The app it is presented for (only for that app's hosts).
    pub app: String,
    pub cert_pem: String,
    pub key_pem: String,
}

fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

fn limit(what: &'static str, pem: &str) -> Result<(), CertError> {
    if pem.trim().is_empty() {
        return Err(CertError::Empty { what });
    }
    if pem.len() > MAX_PEM_BYTES {
        return Err(CertError::TooLarge {
            what,
            len: pem.len(),
        });
    }
    Ok(())
}

/// Parses a PEM chain and key into a rustls key, checking that they match.
pub fn certified_key(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, CertError> {
    limit("certificate", cert_pem)?;
    limit("key", key_pem)?;
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::CertPem(e.to_string()))?;
    if chain.is_empty() {
        return Err(CertError::CertPem("no CERTIFICATE block found".into()));
    }
    if chain.len() > MAX_CHAIN {
        return Err(CertError::LongChain(chain.len()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| CertError::KeyPem(e.to_string()))?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| CertError::Key(e.to_string()))?;
    let ck = CertifiedKey::new(chain, signing);
    match ck.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(ck),
        Err(rustls::Error::InconsistentKeys(_)) => Err(CertError::KeyMismatch),
        Err(e) => Err(CertError::X509(e.to_string())),
    }
}

/// True when the certificate name `name` (maybe `*.x`) covers `host`.
pub fn name_covers(name: &str, host: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == parent),
        None => name == host,
    }
}

/// Whether an upload may carry wildcard names (`*.example.test`): only admins' may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wildcards {
    Allowed,
    Refused,
}

/// The names of a certificate that are not hosts of the app: (foreign exact names,
/// wildcards when they are refused).
fn foreign_names(names: &[String], app_hosts: &[String], wildcards: Wildcards) -> Vec<String> {
    names
        .iter()
        .filter(|n| {
            if n.starts_with("*.") {
                wildcards == Wildcards::Refused
            } else {
                !app_hosts.contains(n)
            }
        })
        .cloned()
        .collect()
}

/// Checks an upload for an app served at `app_hosts`, at `now_unix` (seconds): every name
/// must be one of `app_hosts` (or a wildcard, when `wildcards` allows them).
pub fn check_cert(
    cert_pem: &str,
    key_pem: &str,
    app_hosts: &[String],
    wildcards: Wildcards,
    now_unix: i64,
) -> Result<CheckedCert, CertError> {
    let ck = certified_key(cert_pem, key_pem)?;
    let der = ck
        .end_entity_cert()
        .map_err(|e| CertError::X509(e.to_string()))?;
    let (_, x509) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| CertError::X509(e.to_string()))?;
    let validity = x509.validity();
    let fmt = |t: &x509_parser::time::ASN1Time| {
        crate::clock::rfc3339_from_ms(t.timestamp().saturating_mul(1000))
    };
    if validity.not_after.timestamp() < now_unix {
        return Err(CertError::Expired(fmt(&validity.not_after)));
    }
    if validity.not_before.timestamp() > now_unix {
        return Err(CertError::NotYetValid(fmt(&validity.not_before)));
    }
    let names = cert_names(&x509);
    if names.is_empty() {
        return Err(CertError::NoNames);
    }
    let covers: Vec<String> = app_hosts
        .iter()
        .filter(|h| names.iter().any(|n| name_covers(n, h)))
        .cloned()
        .collect();
    if covers.is_empty() {
        return Err(CertError::NoAppHost {
            names: names.join(", "),
            hosts: app_hosts.join(", "),
        });
    }
    let foreign = foreign_names(&names, app_hosts, wildcards);
    if !foreign.is_empty() {
        let why = if foreign.iter().all(|n| n.starts_with("*.")) {
            "are wildcards (only admins may upload those)"
        } else if wildcards == Wildcards::Refused && foreign.iter().any(|n| n.starts_with("*.")) {
            "are not this app's hosts (and wildcards are for admins only)"
        } else {
            "are not this app's hosts"
        };
        return Err(CertError::ForeignNames {
            foreign: foreign.join(", "),
            why,
            hosts: app_hosts.join(", "),
        });
    }
    Ok(CheckedCert {
        names,
        covers,
        not_after: fmt(&validity.not_after),
        not_after_unix: validity.not_after.timestamp(),
        subject: x509.subject().to_string(),
        issuer: x509.issuer().to_string(),
    })
}

/// The DNS names of a certificate's subjectAltName, lower case.
fn cert_names(x509: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(Some(san)) = x509.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if !d.is_empty() && !names.contains(&d) {
                    names.push(d);
                }
            }
        }
    }
    names
}

/// One version of the certificate set: (app, DNS name) → certificate.
#[derive(Debug, Default)]
struct CertSet {
    by_app_name: HashMap<(String, String), Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

/// The router's certificates: shared, swappable, and rustls' resolver. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TlsCerts {
    inner: Arc<RwLock<Arc<CertSet>>>,
    /// Host → the app that serves it (from the route table).
    hosts: Arc<RwLock<Arc<HashMap<String, String>>>>,
    /// The certificates as last given to [`TlsCerts::replace`] (what the router process
    /// is fed and saves).
    pems: Arc<RwLock<Arc<Vec<PemCert>>>>,
}

impl TlsCerts {
    pub fn new() -> TlsCerts {
        TlsCerts::default()
    }

    /// Sets the certificate for names no uploaded certificate covers.
    pub fn set_default(&self, key: CertifiedKey) {
        let mut guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let next = CertSet {
            by_app_name: guard.by_app_name.clone(),
            default: Some(Arc::new(key)),
        };
        *guard = Arc::new(next);
    }

    /// The certificates as last given to [`TlsCerts::replace`].
    pub fn pem_certs(&self) -> Arc<Vec<PemCert>> {
        Arc::clone(&self.pems.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Sets which app serves each host (lower case, no port): only that app's
    /// certificates are presented for it. The route table calls it on every change.
    pub fn set_hosts(&self, hosts: HashMap<String, String>) {
        *self.hosts.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(hosts);
    }

    /// Replaces the uploaded certificates (the default stays). A certificate that does not
    /// parse is skipped with a warning; returns how many were loaded. Where two of one app
    /// cover one name, the later one wins.
    pub fn replace(&self, certs: &[PemCert]) -> usize {
        *self.pems.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(certs.to_vec());
        let mut by_app_name = HashMap::new();
        let mut loaded = 0;
        for c in certs {
            let key = match certified_key(&c.cert_pem, &c.key_pem) {
                Ok(k) => Arc::new(k),
                Err(e) => {
                    tracing::warn!(id = %c.id, error = %e, "skipping a stored certificate");
                    continue;
                }
            };
            let names = key
                .end_entity_cert()
                .ok()
                .and_then(|der| {
                    x509_parser::parse_x509_certificate(der.as_ref())
                        .ok()
                        .map(|(_, x)| cert_names(&x))
                })
                .unwrap_or_default();
            for n in names {
                by_app_name.insert((c.app.clone(), n), Arc::clone(&key));
            }
            loaded += 1;
        }
        let mut guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let next = CertSet {
            by_app_name,
            default: guard.default.clone(),
        };
        *guard = Arc::new(next);
        loaded
    }

    /// The certificate presented for `server_name` (None: no SNI), as a handshake picks it:
    /// a certificate of the app serving that host that covers it, else the default.
    pub fn pick(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let set = Arc::clone(&self.inner.read().unwrap_or_else(|e| e.into_inner()));
        let hosts = Arc::clone(&self.hosts.read().unwrap_or_else(|e| e.into_inner()));
        if let Some(name) = server_name {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Some(app) = hosts.get(&name) {
                let own = |n: String| set.by_app_name.get(&(app.clone(), n)).cloned();
                if let Some(k) = own(name.clone()) {
                    return Some(k);
                }
                if let Some((_, parent)) = name.split_once('.') {
                    if let Some(k) = own(format!("*.{parent}")) {
                        return Some(k);
                    }
                }
            }
        }
        set.default.clone()
    }

    /// A rustls server configuration that resolves through this set and offers h2 and
    /// http/1.1 by ALPN.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self.clone()));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for TlsCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name())
    }
}

/// The default certificate for `*.<domain>` and `<domain>`: read from `dir/default.crt` and
/// `dir/default.key`, or made (self-signed, rcgen) and written there on first use.
pub fn default_cert(dir: &Path, domain: &str) -> Result<CertifiedKey, CertError> {
    let crt = dir.join("default.crt");
    let key = dir.join("default.key");
    let io = |action, path: &Path| {
        let path = path.display().to_string();
        move |source| CertError::Io {
            action,
            path,
            source,
        }
    };
    if crt.is_file() && key.is_file() {
        let c = std::fs::read_to_string(&crt).map_err(io("reading", &crt))?;
        let k = std::fs::read_to_string(&key).map_err(io("reading", &key))?;
        return certified_key(&c, &k);
    }
    let gen = |e: rcgen::Error| CertError::Generate(e.to_string());
    let names = vec![format!("*.{domain}"), domain.to_string()];
    let mut params = rcgen::CertificateParams::new(names).map_err(gen)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, format!("*.{domain}"));
    dn.push(
        rcgen::DnType::OrganizationName,
        "paas router (self-signed default)",
    );
    params.distinguished_name = dn;
    let signing_key = rcgen::KeyPair::generate().map_err(gen)?;
    let cert = params.self_signed(&signing_key).map_err(gen)?;
    // 0700: it holds the key (made with its mode, whatever the umask).
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .map_err(io("creating", dir))?;
    let (c, k) = (cert.pem(), signing_key.serialize_pem());
    write_private(&key, &k).map_err(io("writing", &key))?;
    std::fs::write(&crt, &c).map_err(io("writing", &crt))?;
    tracing::info!(path = %crt.display(), "made a self-signed default certificate for *.{domain}");
    certified_key(&c, &k)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(names: &[&str]) -> (String, String) {
        let c = rcgen::generate_simple_self_signed(
            names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn wildcard_names() {
        assert!(name_covers("*.example.test", "www.example.test"));
        assert!(!name_covers("*.example.test", "example.test"));
        assert!(!name_covers("*.example.test", "a.b.example.test"));
        assert!(name_covers("www.example.test", "www.example.test"));
    }

    #[test]
    fn checks_uploads() {
        let hosts = vec![
            "hello.localhost".to_string(),
            "www.example.test".to_string(),
        ];
        let (c, k) = make(&["www.example.test"]);
        let ok = check_cert(&c, &k, &hosts, Wildcards::Refused, now()).unwrap();
        assert_eq!(ok.covers, vec!["www.example.test"]);
        let (_, other_key) = make(&["www.example.test"]);
        assert!(matches!(
            check_cert(&c, &other_key, &hosts, Wildcards::Refused, now()),
            Err(CertError::KeyMismatch)
        ));
        assert!(matches!(
            check_cert("garbage", &k, &hosts, Wildcards::Refused, now()),
            Err(CertError::CertPem(_))
        ));
        assert!(matches!(
            check_cert(&c, "garbage", &hosts, Wildcards::Refused, now()),
            Err(CertError::KeyPem(_))
        ));
        let (c2, k2) = make(&["other.test"]);
        assert!(matches!(
            check_cert(&c2, &k2, &hosts, Wildcards::Refused, now()),
            Err(CertError::NoAppHost { .. })
        ));
        assert!(matches!(
            check_cert(
                &c,
                &k,
                &hosts,
                Wildcards::Refused,
                now() + 3_000 * 365 * 86_400
            ),
            Err(CertError::Expired(_))
        ));
        let huge = "A".repeat(MAX_PEM_BYTES + 1);
        assert!(matches!(
            check_cert(&huge, &k, &hosts, Wildcards::Refused, now()),
            Err(CertError::TooLarge { .. })
        ));
    }

    #[test]
    fn every_name_must_be_the_apps_and_wildcards_are_for_admins() {
        let hosts = vec!["mal.localhost".to_string(), "www.mal.test".to_string()];
        let (c, k) = make(&["mal.localhost", "vic2.localhost", "*.localhost"]);
        let err = check_cert(&c, &k, &hosts, Wildcards::Refused, now()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CertError::ForeignNames { .. }), "{msg}");
        assert!(msg.contains("vic2.localhost, *.localhost"), "{msg}");
        assert!(msg.contains("wildcards are for admins only"), "{msg}");
        // An admin's wildcard passes; a foreign exact name still does not.
        let (c, k) = make(&["www.mal.test", "*.mal.test"]);
        assert!(check_cert(&c, &k, &hosts, Wildcards::Allowed, now()).is_ok());
        let err = check_cert(&c, &k, &hosts, Wildcards::Refused, now()).unwrap_err();
        assert!(err.to_string().contains("only admins"), "{err}");
        let (c, k) = make(&["www.mal.test", "www.vic.test"]);
        let err = check_cert(&c, &k, &hosts, Wildcards::Allowed, now()).unwrap_err();
        assert!(err
            .to_string()
            .contains("www.vic.test, which are not this app's hosts"));
    }

    #[test]
    fn an_apps_certificate_is_presented_only_for_its_own_hosts() {
        let certs = TlsCerts::new();
        let (dc, dk) = make(&["*.localhost"]);
        certs.set_default(certified_key(&dc, &dk).unwrap());
        // Stored before the strict upload check, or kept across a rename: mal's
        // certificate names vic2's host and every *.localhost.
        let (mc, mk) = make(&["mal.localhost", "vic2.localhost", "*.localhost"]);
        let mk2 = mk.clone();
        let (vc, vk) = make(&["vic2.localhost"]);
        certs.replace(&[
            PemCert {
                id: "m".into(),
                app: "mal".into(),
                cert_pem: mc.clone(),
                key_pem: mk,
            },
            PemCert {
                id: "v".into(),
                app: "vic2".into(),
                cert_pem: vc.clone(),
                key_pem: vk,
            },
        ]);
        certs.set_hosts(HashMap::from([
            ("mal.localhost".to_string(), "mal".to_string()),
            ("vic2.localhost".to_string(), "vic2".to_string()),
            ("other.localhost".to_string(), "other".to_string()),
        ]));
        let der = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let pick = |n: &str| certs.pick(Some(n)).unwrap().cert[0].clone();
        assert_eq!(pick("mal.localhost"), der(&mc));
        assert_eq!(pick("vic2.localhost"), der(&vc), "vic2's own, never mal's");
        assert_eq!(
            pick("other.localhost"),
            der(&dc),
            "an app without one: the default"
        );
        assert_eq!(
            pick("nobody.localhost"),
            der(&dc),
            "a host no app serves: the default"
        );
        // vic2 loses its certificate: still never mal's.
        certs.replace(&[PemCert {
            id: "m".into(),
            app: "mal".into(),
            cert_pem: mc.clone(),
            key_pem: mk2,
        }]);
        assert_eq!(pick("vic2.localhost"), der(&dc));
    }

    #[test]
    fn picks_exact_then_wildcard_then_default() {
        let certs = TlsCerts::new();
        let (dc, dk) = make(&["*.localhost"]);
        certs.set_default(certified_key(&dc, &dk).unwrap());
        let (ac, ak) = make(&["a.example.test"]);
        let (wc, wk) = make(&["*.example.test"]);
        let n = certs.replace(&[
            PemCert {
                id: "1".into(),
                app: "a".into(),
                cert_pem: ac.clone(),
                key_pem: ak,
            },
            PemCert {
                id: "2".into(),
                app: "a".into(),
                cert_pem: wc.clone(),
                key_pem: wk,
            },
        ]);
        assert_eq!(n, 2);
        certs.set_hosts(HashMap::from([
            ("a.example.test".to_string(), "a".to_string()),
            ("b.example.test".to_string(), "a".to_string()),
            ("hello.localhost".to_string(), "hello".to_string()),
        ]));
        let der = |pem: &str| CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let pick = |n: Option<&str>| certs.pick(n).unwrap().cert[0].clone();
        assert_eq!(pick(Some("A.example.test")), der(&ac));
        assert_eq!(pick(Some("b.example.test")), der(&wc));
        assert_eq!(pick(Some("hello.localhost")), der(&dc));
        assert_eq!(pick(None), der(&dc));
    }

    #[test]
    fn default_cert_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = default_cert(dir.path(), "localhost").unwrap();
        let b = default_cert(dir.path(), "localhost").unwrap();
        assert_eq!(a.cert[0], b.cert[0]);
    }
}
