//! `paas-controller router` as its own process against a controller data directory: it
//! serves the route table saved in the store as soon as it starts (no scheduler running),
//! picks up a new table and a new certificate from the store while running (it polls),
//! and serves HTTPS with SNI from the stored certificates.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use paas_controller::router::{Backend, Route};
use paas_controller::store::{CertRow, Store};

/// Kills the router process when the test ends, also on panic.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn backend(name: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = axum::Router::new().fallback(move || async move { name });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn route(app: &str, host: &str, addr: &str) -> Route {
    Route {
        app: app.into(),
        hosts: vec![host.into()],
        backends: vec![Backend {
            addr: addr.into(),
            job_id: format!("{app}-1"),
        }],
    }
}

/// GETs `host` through the router until `want` comes back (the router polls the store).
async fn wait_for(port: u16, host: &str, want: &str) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut last = String::new();
    for _ in 0..100 {
        match client
            .get(format!("http://127.0.0.1:{port}/"))
            .header("host", host)
            .send()
            .await
        {
            Ok(r) => {
                last = format!("{} {}", r.status(), r.text().await.unwrap_or_default());
                if last == format!("200 OK {want}") {
                    return;
                }
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{host} never answered {want:?} through the router process; last: {last}");
}

#[tokio::test]
async fn router_process_serves_routes_and_certs_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("paas.db")).await.unwrap();
    let (one, two) = (backend("one").await, backend("two").await);
    paas_controller::routing::save_routes(&store, &[route("one", "one.localhost", &one)]).await;

    let (http, https) = (free_port(), free_port());
    let _router = Killed(
        Command::new(env!("CARGO_BIN_EXE_paas-controller"))
            .arg("router")
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--listen", &format!("127.0.0.1:{http}")])
            .args(["--tls-listen", &format!("127.0.0.1:{https}")])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(http, "one.localhost", "one").await;

    // A new table in the store reaches the running router (two has a custom domain).
    let mut two_route = route("two", "two.localhost", &two);
    two_route.hosts.push("two.example.test".into());
    paas_controller::routing::save_routes(
        &store,
        &[route("one", "one.localhost", &one), two_route],
    )
    .await;
    wait_for(http, "two.localhost", "two").await;

    // A certificate of app two stored for two.example.test is presented for that SNI
    // name (a host of two, as the route table says).
    let made = rcgen::generate_simple_self_signed(vec!["two.example.test".to_string()]).unwrap();
    store_cert(&store, &made.cert.pem(), &made.signing_key.serialize_pem()).await;
    let want = made.cert.der().to_vec();
    let mut presented = Vec::new();
    for _ in 0..100 {
        presented = presented_cert(https, "two.example.test").await;
        if presented == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        presented, want,
        "the stored certificate was never presented"
    );
}

/// Stores a certificate for app `two` straight in the store (the API's checks are tested in
/// certs_api.rs); the app row comes first for the foreign key.
async fn store_cert(store: &Store, cert: &str, key: &str) {
    store.create_app("two").await.unwrap();
    store
        .add_cert(&CertRow {
            id: "c1".into(),
            app: "two".into(),
            names: vec!["two.example.test".into()],
            cert_pem: cert.into(),
            key_pem: key.into(),
            not_after: "2100-01-01T00:00:00Z".into(),
            subject: "CN=rcgen".into(),
            issuer: "CN=rcgen".into(),
            created_at: "2026-11-23T00:00:00Z".into(),
        })
        .await
        .unwrap();
}

/// The DER of the certificate the router presents for SNI `name` (any is accepted).
async fn presented_cert(port: u16, name: &str) -> Vec<u8> {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    #[derive(Debug)]
    struct Any(Arc<rustls::crypto::CryptoProvider>);
    impl ServerCertVerifier for Any {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Any(provider)))
        .with_no_client_auth();
    let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return Vec::new();
    };
    let Ok(tls) = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await
    else {
        return Vec::new();
    };
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}
