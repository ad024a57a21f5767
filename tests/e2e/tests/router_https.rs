//! Journey: HTTPS through the router of a standalone paas with a real app container, with
//! curl as the client: the app answers over HTTPS with the self-signed default certificate
//! (`*.localhost`), over HTTP/2 when curl asks by ALPN; `paas certs:add` with an openssl
//! certificate for a custom domain makes the router present it for that SNI name; `paas
//! certs:redirect on` turns plain HTTP into a 308 to HTTPS; and `paas logs -t` shows the
//! router's access lines for these requests.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use paas_e2e::{bins, require_root, AppDir, Paas};

fn paas(p: &Paas, args: &[&str]) -> Output {
    Command::new(&bins().cli)
        .args(args)
        .env("PAAS_URL", &p.api)
        .env("PAAS_TOKEN", &p.token)
        .env("HOME", p.data.path())
        .output()
        .expect("run paas")
}

fn ok(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// `curl -k -v` of `https://HOST:PORT/` with HOST resolved to the router: (stdout, stderr).
fn curl(p: &Paas, scheme: &str, host: &str, extra: &[&str]) -> (String, String) {
    let addr = if scheme == "https" {
        &p.router_tls_addr
    } else {
        &p.router_addr
    };
    let port = addr.rsplit(':').next().unwrap();
    let out = Command::new("curl")
        .args(["-sS", "-k", "-v", "--max-time", "10", "--noproxy", "*"])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(extra)
        .arg(format!("{scheme}://{host}:{port}/"))
        .output()
        .expect("curl is installed (deploy/install-deps)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn https_with_certificates_redirect_and_access_lines() {
    if !require_root() {
        return;
    }
    // The default router (the paas-router process): `paas logs` shows its access lines,
    // asked of it on its internal endpoint.
    let p = Paas::start();
    let app = AppDir::new();
    app.write("index.html", "<h1>secure</h1>\n");
    app.commit("v1");
    let push = app.push(&p.git_url("hello"), "main");
    assert!(push.ok, "push failed:\n{}", push.output);
    p.wait_for_body("hello", "secure", Duration::from_secs(30))
        .unwrap();

    // Follow the app's log from now on.
    let mut tail = Command::new(&bins().cli)
        .args(["logs", "-t", "-n", "0", "-a", "hello"])
        .env("PAAS_URL", &p.api)
        .env("PAAS_TOKEN", &p.token)
        .env("HOME", p.data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stdout = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_secs(1));

    // HTTPS with the default certificate, HTTP/2 by ALPN.
    let (body, verbose) = curl(&p, "https", "hello.localhost", &["--http2"]);
    assert!(body.contains("<h1>secure</h1>"), "{body}\n{verbose}");
    assert!(verbose.contains("ALPN: server accepted h2"), "{verbose}");
    assert!(verbose.contains("HTTP/2 200"), "{verbose}");
    assert!(
        verbose.contains("CN=*.localhost"),
        "default certificate: {verbose}"
    );

    // A certificate for a custom domain, made with openssl, presented for that name.
    let dir = p.data.path().join("cert-test");
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=www.example.test"])
        .args(["-addext", "subjectAltName=DNS:www.example.test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    // Refused before the app has the domain, with the reason.
    let refused = paas(
        &p,
        &[
            "certs:add",
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
            "-a",
            "hello",
        ],
    );
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("none of the app's host names"), "{why}");
    ok(&paas(
        &p,
        &["domains:add", "-a", "hello", "www.example.test"],
    ));
    ok(&paas(
        &p,
        &[
            "certs:add",
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
            "-a",
            "hello",
        ],
    ));
    let listed = ok(&paas(&p, &["certs", "-a", "hello"]));
    assert!(listed.contains("www.example.test"), "{listed}");
    let (body, verbose) = curl(&p, "https", "www.example.test", &[]);
    assert!(body.contains("<h1>secure</h1>"), "{body}\n{verbose}");
    assert!(
        verbose.contains("CN=www.example.test"),
        "uploaded certificate: {verbose}"
    );

    // Redirect plain HTTP to HTTPS.
    ok(&paas(&p, &["certs:redirect", "on", "-a", "hello"]));
    let (_, verbose) = curl(&p, "http", "hello.localhost", &[]);
    assert!(verbose.contains("< HTTP/1.1 308"), "{verbose}");
    let port = p.router_tls_addr.rsplit(':').next().unwrap();
    let want = format!("< location: https://hello.localhost:{port}/");
    assert!(verbose.to_ascii_lowercase().contains(&want), "{verbose}");

    // The access lines of these requests reached `paas logs -t`.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) {
            seen.push(line);
        }
        let router: Vec<&String> = seen
            .iter()
            .filter(|l| l.contains("heroku[router]"))
            .collect();
        if router
            .iter()
            .any(|l| l.contains("protocol=https status=200"))
            && router.iter().any(|l| l.contains("status=308"))
        {
            break;
        }
    }
    let _ = tail.kill();
    let _ = tail.wait();
    let router: Vec<&String> = seen
        .iter()
        .filter(|l| l.contains("heroku[router]"))
        .collect();
    assert!(
        router
            .iter()
            .any(|l| l
                .contains("method=GET path=\"/\" host=hello.localhost protocol=https status=200")),
        "{seen:#?}"
    );
    assert!(
        router
            .iter()
            .any(|l| l.contains("host=www.example.test protocol=https status=200")),
        "{seen:#?}"
    );
    assert!(router.iter().any(|l| l.contains("status=308")), "{seen:#?}");
}
