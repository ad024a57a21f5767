//! A push whose source unpacks to more than `--max-source-bytes`, with the real git
//! client against the controller's HTTP app and its real hook: a 100 KB push of one
//! 64 MiB zero blob under 1600 names (a 100 GiB `git archive`) is refused while it
//! streams, with the limit and the flag in the `remote:` lines; the build is `failed`,
//! `builds/` is empty, no ref moved and the previous release keeps serving.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use support::{AppDir, FakeAgent, Running};

const LIMIT: u64 = 1 << 20;

/// Commits `count` paths that all name one blob of `size` zero bytes, without writing or
/// hashing `count` files (so the tree is huge and the commit is quick).
fn commit_one_blob_under_many_names(app: &AppDir, size: usize, count: usize) {
    let zeros = app.dir.path().join("..zeros");
    std::fs::write(&zeros, vec![0u8; size]).unwrap();
    let out = app.git(&["hash-object", "-w", zeros.to_str().unwrap()]);
    assert!(out.status.success());
    std::fs::remove_file(&zeros).unwrap();
    let blob = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut index = String::new();
    for i in 0..count {
        index.push_str(&format!("100644 {blob}\tdata/zeros-{i:04}\n"));
    }
    let mut child = Command::new("git")
        .current_dir(app.dir.path())
        .args(["update-index", "--add", "--index-info"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(index.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let out = app.git(&["commit", "-q", "-m", "a huge tree of one small blob"]);
    assert!(out.status.success(), "{out:?}");
}

fn main_ref(running: &Running, app: &str) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(running.c.settings.repo_path(app))
        .args(["rev-parse", "refs/heads/main"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_over_max_source_bytes_is_refused_while_it_streams() {
    let running = Running::start_with(true, |s| s.build_limits.max_source_bytes = LIMIT).await;
    let (_agent, _tasks) = FakeAgent::join(&running).await;
    let token = running.c.tokens.admin().to_string();
    let url = running.git_url("zip", Some(&token));

    let app = Arc::new(AppDir::new());
    app.write("Procfile", "web: fake-static-server\n");
    app.write("index.html", "v1\n");
    app.commit("v1");
    let (ok, out) = app.push(&url, "main").await;
    assert!(ok, "v1 did not deploy:\n{out}");
    let v1 = main_ref(&running, "zip");
    let (status, body) = running.request_app("zip").await;
    assert_eq!(status, 200, "{body}");

    // 64 MiB of zeros under 1600 names: about 100 KB pushed, a 100 GiB archive.
    commit_one_blob_under_many_names(&app, 64 << 20, 1600);
    let push = app.push(&url, "main");
    let (ok, out) = tokio::time::timeout(Duration::from_secs(300), push)
        .await
        .expect("the push did not end: the source was not cut while it streamed");
    assert!(!ok, "the huge source was accepted:\n{out}");
    for needle in [
        "remote:",
        "bigger than 1 MiB",
        "--max-source-bytes",
        "nothing was",
    ] {
        assert!(out.contains(needle), "no {needle:?} in:\n{out}");
    }
    assert!(out.contains("pre-receive hook declined"), "{out}");

    // Nothing stored, the build is failed, v1 still serves.
    let builds_dir = running.c.settings.builds_dir();
    let left: Vec<_> = std::fs::read_dir(&builds_dir).unwrap().flatten().collect();
    assert!(left.is_empty(), "builds/ holds {left:?}");
    let builds = running.c.store.list_builds("zip").await.unwrap();
    assert_eq!(builds.len(), 2, "{builds:?}");
    assert_eq!(builds[0].status, "failed", "{:?}", builds[0]);
    assert!(
        builds[0].log.contains("--max-source-bytes"),
        "{}",
        builds[0].log
    );
    assert_eq!(main_ref(&running, "zip"), v1, "the ref moved");
    let app_row = running.c.store.get_app("zip").await.unwrap().unwrap();
    assert_eq!(app_row.current_release, Some(1));
    assert!(!running.c.is_building("zip"));
    let (status, body) = running.request_app("zip").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello from"), "{body}");

    // A source under the limit still builds.
    let small = Arc::new(AppDir::new());
    small.write("Procfile", "web: fake-static-server\n");
    small.write("big.txt", &"x".repeat((LIMIT / 2) as usize));
    small.commit("half the limit");
    let (ok, out) = small
        .push(&running.git_url("half", Some(&token)), "main")
        .await;
    assert!(ok, "{out}");
}

/// Polls `check` every 50 ms for up to 30 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_goes_away_mid_upload_leaves_nothing() {
    use tokio::io::AsyncWriteExt;
    let running = Running::start(true).await;
    running.c.store.create_app("cut").await.unwrap();
    let mut s = tokio::net::TcpStream::connect(running.host())
        .await
        .unwrap();
    let head = format!(
        "POST /internal/hooks/pre-receive HTTP/1.1\r\nHost: x\r\n\
         x-paas-hook-token: {}\r\nx-paas-app: cut\r\nx-paas-rev: {}\r\n\
         Transfer-Encoding: chunked\r\n\r\n1000\r\n{}\r\n",
        running.c.hook_secret,
        "a".repeat(40),
        "x".repeat(0x1000)
    );
    s.write_all(head.as_bytes()).await.unwrap();
    eventually("the build was not recorded", async || {
        !running.c.store.list_builds("cut").await.unwrap().is_empty()
    })
    .await;
    drop(s);
    let c = &running.c;
    eventually("the build is not failed", async || {
        c.store.list_builds("cut").await.unwrap()[0].status == "failed"
    })
    .await;
    let left: Vec<_> = std::fs::read_dir(c.settings.builds_dir())
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "builds/ holds {left:?}");
}

#[tokio::test]
async fn a_restart_removes_the_dirs_of_builds_that_are_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let settings = || {
        let mut s = paas_controller::config::Settings::new(
            dir.path().to_path_buf(),
            "127.0.0.1:1".parse().unwrap(),
            1,
            "localhost",
        )
        .unwrap();
        s.hook_exe = env!("CARGO_BIN_EXE_paas-controller").into();
        s
    };
    let c = paas_controller::state::Controller::open(settings())
        .await
        .unwrap();
    c.store.create_app("crash").await.unwrap();
    c.store.create_build("b1", "crash", None).await.unwrap();
    for id in ["b1", "stray"] {
        let d = c.settings.build_dir(id);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("source.tar"), b"x").unwrap();
    }
    c.store.close().await;
    drop(c);
    // A controller stopped mid-build: b1 was building.
    let c = paas_controller::state::Controller::open(settings())
        .await
        .unwrap();
    let left: Vec<_> = std::fs::read_dir(c.settings.builds_dir())
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "builds/ holds {left:?}");
    assert_eq!(
        c.store.get_build("b1").await.unwrap().unwrap().status,
        "failed"
    );
}
