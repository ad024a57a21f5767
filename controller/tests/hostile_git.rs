//! Hostile `git push`es with the real git client against the controller's HTTP app: a
//! pack over `--max-push-bytes` (sent with a Content-Length, and chunked) is refused with
//! the limit in the message and stores nothing; refs other than main/master are refused by
//! the hook; a force push to main is accepted (as on Heroku) and deploys.

mod support;

use std::sync::Arc;

use paas_controller::config::Settings;
use paas_controller::state::Controller;
use support::{AppDir, FakeAgent, Running};
use tokio::net::TcpListener;

const LIMIT: u64 = 100 * 1024;

/// A controller with a small push limit (no agent: pushes that get as far as a build fail).
async fn start_small() -> (tempfile::TempDir, Arc<Controller>, String) {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = Settings::new(dir.path().to_path_buf(), addr, 1, "localhost").unwrap();
    settings.hook_exe = env!("CARGO_BIN_EXE_paas-controller").into();
    settings.max_push_bytes = LIMIT;
    let c = Controller::open(settings).await.unwrap();
    let app = paas_controller::http::app(Arc::clone(&c));
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (dir, c, addr.to_string())
}

/// Incompressible content, so the pack is about as big as the file.
fn noise(len: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect()
}

async fn git(app: &Arc<AppDir>, args: &[&str]) -> (bool, String) {
    let (me, args): (_, Vec<String>) = (
        Arc::clone(app),
        args.iter().map(|s| s.to_string()).collect(),
    );
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = me.git(&args);
        let mut text = String::from_utf8_lossy(&out.stdout).to_string();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    })
    .await
    .unwrap()
}

/// Refs and loose/packed objects of the app's server-side repository, and leftover
/// quarantine directories.
fn server_state(c: &Controller, app: &str) -> (String, Vec<String>) {
    let repo = c.settings.repo_path(app);
    let refs = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&repo)
        .args(["for-each-ref"])
        .output()
        .unwrap();
    let mut objects = vec![];
    for entry in walk(&repo.join("objects")) {
        objects.push(entry);
    }
    (String::from_utf8_lossy(&refs.stdout).to_string(), objects)
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("incoming")
            {
                out.push(p.display().to_string());
            }
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_over_the_limit_is_refused_and_stores_nothing() {
    let (_dir, c, host) = start_small().await;
    let token = c.tokens.admin().to_string();
    let url = format!("http://user:{token}@{host}/git/big.git");
    let app = Arc::new(AppDir::new());
    app.write("blob.txt", &noise(3 * LIMIT as usize));
    app.commit("big");

    // Chunked (git streams bodies over http.postBuffer): counted, cut, reported per ref.
    let (ok, out) = git(&app, &["-c", "http.postBuffer=65520", "push", &url, "main"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("--max-push-bytes"),
        "the limit is not named:\n{out}"
    );
    assert!(out.contains("[remote rejected] main -> main"), "{out}");
    let (refs, objects) = server_state(&c, "big");
    assert_eq!(refs, "", "a ref moved");
    assert_eq!(objects, Vec::<String>::new(), "objects were left behind");

    // With a Content-Length (bodies under http.postBuffer): 413 before git runs.
    let (ok, out) = git(
        &app,
        &["-c", "http.postBuffer=10000000", "push", &url, "main"],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(out.contains("413"), "{out}");
    let (refs, objects) = server_state(&c, "big");
    assert_eq!((refs.as_str(), objects.len()), ("", 0));

    // A small push gets past the limit (and is then refused by the hook: not main).
    let small = Arc::new(AppDir::new());
    small.write("index.html", "<h1>hi</h1>\n");
    small.commit("small");
    let (ok, out) = git(&small, &["push", &url, "main:feature"]).await;
    assert!(!ok, "{out}");
    assert!(!out.contains("--max-push-bytes"), "{out}");
    assert!(out.contains("paas deploys the main branch"), "{out}");
    let (ok, out) = git(&small, &["push", &url, "main:refs/tags/v1"]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("paas deploys the main branch"), "{out}");
    let (refs, _) = server_state(&c, "big");
    assert_eq!(refs, "", "a refused push moved a ref");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn force_push_to_main_is_accepted_and_deploys() {
    let running = Running::start(true).await;
    let (_agent, _tasks) = FakeAgent::join(&running).await;
    let token = running.c.tokens.admin().to_string();
    let url = running.git_url("forced", Some(&token));
    let app = Arc::new(AppDir::new());
    app.write("index.html", "<h1>v1</h1>\n");
    app.commit("v1");
    let (ok, out) = app.push(&url, "main").await;
    assert!(ok, "{out}");
    // Rewrite history: the new main does not contain the old one.
    app.write("index.html", "<h1>rewritten</h1>\n");
    assert!(app
        .git(&["commit", "-q", "--amend", "-a", "-m", "rewritten"])
        .status
        .success());
    let (ok, out) = app.push(&url, "main").await;
    assert!(
        !ok,
        "git itself refuses a non-fast-forward without --force:\n{out}"
    );
    let (ok, out) = app.push(&url, "+main").await;
    assert!(ok, "a force push was refused:\n{out}");
    assert!(out.contains("Releasing v2"), "{out}");
    let server = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(running.c.settings.repo_path("forced"))
        .args(["rev-parse", "refs/heads/main"])
        .output()
        .unwrap();
    assert_eq!(server.stdout, app.git(&["rev-parse", "HEAD"]).stdout);
}
