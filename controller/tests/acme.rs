//! Automatic certificates against a real ACME CA on loopback: Debian's Pebble (the ACME
//! test server), a tiny DNS responder in this test that answers 127.0.0.1 for every name
//! (NXDOMAIN for names starting with `nxdomain`), and the controller with its router on
//! 127.0.0.1. `certs:auto on` orders a certificate for the app's custom domain; Pebble
//! validates HTTP-01 against the router's plain port; the router then presents a chain
//! that verifies against Pebble's root for that SNI name. Renewal (less than 30 days left)
//! replaces the certificate; a domain the CA cannot reach ends `failed` with a reason.
//! Needs the `pebble` binary (deploy/install-deps installs it): skipped without it, a
//! failure when CI=true. Root is not needed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use paas_controller::acme::AcmeSettings;
use paas_controller::config::Settings;
use paas_controller::state::Controller;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const APP: &str = "acm4app";
const HOST: &str = "www.acm4.test";
const BAD_HOST: &str = "nxdomain.acm4.test";

/// A child process killed when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pebble_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("pebble"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A DNS answer for `query`: A 127.0.0.1 for an A question, no records for other types,
/// NXDOMAIN for names whose first label starts with `nxdomain`.
fn dns_answer(q: &[u8]) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    let mut i = 12;
    let mut first_label = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        if len == 0 {
            i += 1;
            break;
        }
        if len & 0xC0 != 0 {
            return None;
        }
        if first_label.is_empty() {
            first_label = q.get(i + 1..i + 1 + len)?.to_ascii_lowercase();
        }
        i += 1 + len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let question = q.get(12..i + 4)?;
    let nx = first_label.starts_with(b"nxdomain");
    let answers = u16::from(qtype == 1 && !nx);
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&q[0..2]);
    // QR, AA, RD copied, RA; rcode 3 (NXDOMAIN) or 0.
    out.push(0x84 | (q[2] & 0x01));
    out.push(0x80 | if nx { 3 } else { 0 });
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&answers.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    if answers == 1 {
        out.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(out)
}

/// Answers DNS queries on a UDP port of 127.0.0.1 until the task is dropped.
async fn dns_responder() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                continue;
            };
            if let Some(answer) = dns_answer(&buf[..n]) {
                let _ = sock.send_to(&answer, from).await;
            }
        }
    });
    (addr, task)
}

/// A CA and a certificate for 127.0.0.1 signed by it, for Pebble's own HTTPS: writes
/// `ca.pem`, `pebble.pem`, `pebble.key` into `dir`.
fn pebble_tls(dir: &Path) -> PathBuf {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "acm4 test CA for Pebble's API");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    std::fs::write(dir.join("pebble.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("pebble.key"), key.serialize_pem()).unwrap();
    ca
}

fn roots_from_pem(pem: &str) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    roots
}

fn client_config(roots: RootCertStore) -> Arc<rustls::ClientConfig> {
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// Connects with TLS (SNI `name`, verified against `roots`) and sends `GET path` as
/// HTTP/1.0; returns the peer's chain and the response body.
async fn https_get(
    port: u16,
    name: &str,
    roots: RootCertStore,
    path: &str,
) -> (Vec<CertificateDer<'static>>, String) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config(roots));
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    let mut tls = connector
        .connect(server_name, tcp)
        .await
        .unwrap_or_else(|e| panic!("TLS handshake with {name} on port {port}: {e}"));
    let chain = tls
        .get_ref()
        .1
        .peer_certificates()
        .unwrap()
        .iter()
        .map(|c| c.clone().into_owned())
        .collect();
    tls.write_all(format!("GET {path} HTTP/1.0\r\nHost: {name}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (chain, body)
}

async fn send(
    c: &Arc<Controller>,
    method: &str,
    path: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", c.tokens.admin()),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = paas_controller::http::app(Arc::clone(c))
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

fn domain_state<'a>(v: &'a serde_json::Value, host: &str) -> &'a serde_json::Value {
    v["domains"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["hostname"] == host))
        .unwrap_or(&serde_json::Value::Null)
}

/// Waits (bounded) until `host` leaves `pending`; returns the app's ACME status then.
async fn wait_settled(c: &Arc<Controller>, host: &str, log: &Path) -> serde_json::Value {
    for _ in 0..300 {
        let (s, v) = send(c, "GET", &format!("/v1/apps/{APP}/acme"), "").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let state = domain_state(&v, host)["state"].as_str().unwrap_or("");
        if state == "issued" || state == "failed" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "{host} stayed pending for 60 s; Pebble's log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_issues_and_renews_and_the_router_presents_it() {
    let Some(pebble) = pebble_bin() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "pebble is not installed: deploy/install-deps installs it (apt-get install pebble)"
            );
        }
        eprintln!("skipping: pebble is not installed (apt-get install pebble)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_file = pebble_tls(dir.path());
    let (dns, _dns_task) = dns_responder().await;

    // The router first: Pebble validates HTTP-01 on its plain port.
    let router = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let router_port = router.local_addr().unwrap().port();
    let router_tls = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_port = router_tls.local_addr().unwrap().port();

    let (acme_port, mgmt_port) = (free_port(), free_port());
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": dir.path().join("pebble.pem"),
            "privateKey": dir.path().join("pebble.key"),
            "httpPort": router_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    let config_path = dir.path().join("pebble-config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let log = dir.path().join("pebble.log");
    let out = std::fs::File::create(&log).unwrap();
    let _pebble = Kill(
        Command::new(&pebble)
            .arg("-config")
            .arg(&config_path)
            .arg("-dnsserver")
            .arg(dns.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("starting pebble"),
    );
    let mut up = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", acme_port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        up,
        "pebble did not listen within 20 s:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let mut settings = Settings::new(
        dir.path().join("data"),
        "127.0.0.1:8080".parse().unwrap(),
        router_port,
        "localhost",
    )
    .unwrap();
    settings.acme = Some(AcmeSettings {
        directory: format!("https://127.0.0.1:{acme_port}/dir"),
        email: Some("ops@acm4.test".into()),
        ca_file: Some(ca_file.clone()),
    });
    let c = Controller::open(settings).await.unwrap();
    let _http = tokio::spawn(paas_controller::router::serve(router, c.routes.clone()));
    let _https = tokio::spawn(paas_controller::router::serve_tls(
        router_tls,
        c.routes.clone(),
    ));

    let (s, v) = send(&c, "POST", "/v1/apps", &format!(r#"{{"name":"{APP}"}}"#)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = send(
        &c,
        "POST",
        &format!("/v1/apps/{APP}/domains"),
        &format!(r#"{{"hostname":"{HOST}"}}"#),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The route table (no scheduler here) says the app serves HOST: the router presents
    // an app's certificates only for its own hosts.
    c.routes.replace(vec![paas_controller::router::Route {
        app: APP.into(),
        hosts: vec![format!("{APP}.localhost"), HOST.into()],
        backends: Vec::new(),
    }]);
    let (s, v) = send(&c, "GET", &format!("/v1/apps/{APP}/acme"), "").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["enabled"], false);
    assert_eq!(v["available"], true);

    let (s, v) = send(
        &c,
        "PUT",
        &format!("/v1/apps/{APP}/acme"),
        r#"{"enabled":true}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["enabled"], true);
    let v = wait_settled(&c, HOST, &log).await;
    let d = domain_state(&v, HOST);
    assert_eq!(
        d["state"],
        "issued",
        "{v}\nPebble's log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let first_id = d["cert_id"].as_str().unwrap().to_string();
    assert!(!first_id.is_empty());
    assert!(
        c.routes.challenges().is_empty(),
        "challenges are removed after the order"
    );

    // Listed like an uploaded certificate.
    let (s, certs) = send(&c, "GET", &format!("/v1/apps/{APP}/certs"), "").await;
    assert_eq!(s, StatusCode::OK);
    let listed = certs.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{certs}");
    assert_eq!(listed[0]["id"], first_id.as_str());
    assert_eq!(listed[0]["names"], serde_json::json!([HOST]));
    assert!(
        listed[0]["issuer"].as_str().unwrap().contains("Pebble"),
        "{certs}"
    );

    // The router presents it for the SNI name, and it verifies against Pebble's root.
    let ca_roots = roots_from_pem(&std::fs::read_to_string(&ca_file).unwrap());
    let (_, pebble_root) = https_get(mgmt_port, "127.0.0.1", ca_roots, "/roots/0").await;
    assert!(pebble_root.contains("BEGIN CERTIFICATE"), "{pebble_root}");
    let (chain, _) = https_get(tls_port, HOST, roots_from_pem(&pebble_root), "/").await;
    let (_, leaf) = x509_parser::parse_x509_certificate(chain[0].as_ref()).unwrap();
    let issuer = leaf.issuer().to_string();
    assert!(issuer.contains("Pebble"), "issuer {issuer}");
    let first_der = chain[0].clone();

    // Renewal: with less than 30 days left, the next pass orders a new certificate and the
    // old one is removed.
    let mut rows = c.store.acme_domains(Some(APP)).await.unwrap();
    let row = rows.iter_mut().find(|r| r.hostname == HOST).unwrap();
    let now = paas_controller::util::unix_ms() / 1000;
    row.not_after = now + 86_400;
    c.store.put_acme_domain(row).await.unwrap();
    paas_controller::acme::run_app(&c, APP).await.unwrap();
    let (_, v) = send(&c, "GET", &format!("/v1/apps/{APP}/acme"), "").await;
    let d = domain_state(&v, HOST);
    assert_eq!(d["state"], "issued", "{v}");
    let second_id = d["cert_id"].as_str().unwrap();
    assert_ne!(second_id, first_id, "renewed");
    let ids: Vec<String> = c
        .store
        .certs(Some(APP))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        ids,
        vec![second_id.to_string()],
        "the old certificate is gone"
    );
    let rows = c.store.acme_domains(Some(APP)).await.unwrap();
    assert!(rows[0].not_after - now > 30 * 86_400, "{rows:?}");
    let (chain, _) = https_get(tls_port, HOST, roots_from_pem(&pebble_root), "/").await;
    assert_ne!(
        chain[0], first_der,
        "the router presents the renewed certificate"
    );

    // Two passes at once (the timer and `certs:auto on` again) order it once.
    let mut rows = c.store.acme_domains(Some(APP)).await.unwrap();
    rows[0].not_after = now + 86_400;
    c.store.put_acme_domain(&rows[0]).await.unwrap();
    let (a, b) = tokio::join!(
        paas_controller::acme::run_app(&c, APP),
        paas_controller::acme::run_app(&c, APP)
    );
    a.unwrap();
    b.unwrap();
    let certs = c.store.certs(Some(APP)).await.unwrap();
    assert_eq!(certs.len(), 1, "{certs:?}");
    assert_ne!(certs[0].id, second_id);

    // A domain the CA cannot resolve: failed, with the CA's reason.
    let (s, v) = send(
        &c,
        "POST",
        &format!("/v1/apps/{APP}/domains"),
        &format!(r#"{{"hostname":"{BAD_HOST}"}}"#),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    paas_controller::acme::run_app(&c, APP).await.unwrap();
    let (_, v) = send(&c, "GET", &format!("/v1/apps/{APP}/acme"), "").await;
    let d = domain_state(&v, BAD_HOST);
    assert_eq!(d["state"], "failed", "{v}");
    assert!(!d["reason"].as_str().unwrap().is_empty(), "{v}");
    eprintln!("{BAD_HOST}: failed: {}", d["reason"]);
    assert_eq!(domain_state(&v, HOST)["state"], "issued", "{v}");

    // Off removes the issued certificate; the router falls back to the default.
    let (s, v) = send(
        &c,
        "PUT",
        &format!("/v1/apps/{APP}/acme"),
        r#"{"enabled":false}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["enabled"], false);
    assert!(c.store.certs(Some(APP)).await.unwrap().is_empty());
    assert!(c.routes.certs().pick(Some(HOST)).is_none());
}

#[tokio::test]
async fn off_without_a_directory_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::new(
        dir.path().to_path_buf(),
        "127.0.0.1:8080".parse().unwrap(),
        8000,
        "localhost",
    )
    .unwrap();
    let c = Controller::open(settings).await.unwrap();
    let (s, _) = send(&c, "POST", "/v1/apps", r#"{"name":"acm4off"}"#).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = send(&c, "PUT", "/v1/apps/acm4off/acme", r#"{"enabled":true}"#).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v.to_string().contains("--acme-directory"), "{v}");
    let (s, v) = send(&c, "GET", "/v1/apps/acm4off/acme", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["enabled"], false);
    assert_eq!(v["available"], false);
    let (s, _) = send(&c, "PUT", "/v1/apps/acm4off/acme", "nope").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = send(&c, "GET", "/v1/apps/nope/acme", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A challenge is answered only for its host and token, before routing (no app needed).
    c.routes
        .challenges()
        .insert("tok123", "www.acm4.test", "tok123.thumb");
    let router = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = router.local_addr().unwrap().port();
    let _r = tokio::spawn(paas_controller::router::serve(router, c.routes.clone()));
    let get = |host: &'static str, path: &'static str| async move {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    let ok = get("www.acm4.test", "/.well-known/acme-challenge/tok123").await;
    assert!(ok.starts_with("HTTP/1.0 200"), "{ok}");
    assert!(ok.ends_with("\r\n\r\ntok123.thumb"), "{ok}");
    let other = get("other.acm4.test", "/.well-known/acme-challenge/tok123").await;
    assert!(other.contains(" 404 "), "{other}");
    let wrong = get("www.acm4.test", "/.well-known/acme-challenge/nope").await;
    assert!(wrong.contains(" 404 "), "{wrong}");
}
