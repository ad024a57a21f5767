//! Journey: the standalone controller runs its router as a process of its own. With an app
//! serving and a bounded loop of requests through the router, the controller is SIGKILLed
//! and restarted, and then replaced by another binary (an upgrade: a copy of it): every
//! request is answered 2xx, the restarted controller adopts the running router (same pid,
//! no second one), a request served while no controller ran shows in `paas logs --ps
//! router` after the restart (once: the history lives in the router), and a change made
//! after the restart (a new release) reaches the router by its feed. The router's saved
//! state is owner-only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use paas_e2e::{bins, require_root, AppDir, Paas};

/// Requests at most in one loop (one every 20 ms: the loop is bounded in count and time).
const MAX_REQUESTS: usize = 3000;

/// Sends requests to `hello` until `stop` (or MAX_REQUESTS); returns (answered 2xx, failures).
fn load(router: String, stop: Arc<AtomicBool>) -> thread::JoinHandle<(usize, Vec<String>)> {
    thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut ok = 0;
        let mut failures = Vec::new();
        for _ in 0..MAX_REQUESTS {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let result = client
                .get(format!("http://{router}/"))
                .header("host", "hello.localhost")
                .send()
                .and_then(|r| {
                    let status = r.status();
                    r.text().map(|body| (status, body))
                });
            match result {
                Ok((status, _)) if status.is_success() => ok += 1,
                Ok((status, body)) => failures.push(format!("{status}: {body}")),
                Err(e) => failures.push(format!("error: {e}")),
            }
            thread::sleep(Duration::from_millis(20));
        }
        (ok, failures)
    })
}

fn under_load(paas: &mut Paas, what: &str, action: impl FnOnce(&mut Paas)) {
    let stop = Arc::new(AtomicBool::new(false));
    let runner = load(paas.router_addr.clone(), Arc::clone(&stop));
    thread::sleep(Duration::from_millis(300));
    action(paas);
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (ok, failures) = runner.join().unwrap();
    assert!(ok > 10, "{what}: only {ok} requests ran");
    assert!(
        failures.is_empty(),
        "{what}: {} of {} requests failed: {:?}\n{}",
        failures.len(),
        ok + failures.len(),
        &failures[..failures.len().min(5)],
        paas.log()
    );
    eprintln!("{what}: {ok} requests, 0 failed");
}

/// The path of a request served while no controller runs.
const WHILE_DOWN: &str = "/served-while-the-controller-was-down";

#[test]
fn the_router_serves_through_a_controller_kill_restart_and_upgrade() {
    if !require_root() {
        return;
    }
    let mut paas = Paas::start();
    let router = paas.router_pid().expect("a paas-router process serves");
    let app = AppDir::new();
    app.write("index.html", "<h1>hello v1</h1>\n");
    app.commit("v1");
    let push = app.push(&paas.git_url("hello"), "main");
    assert!(push.ok, "first push failed:\n{}", push.output);
    paas.wait_for_body("hello", "hello v1", Duration::from_secs(30))
        .unwrap();

    // SIGKILL, 3 s with no controller at all (one request with a path of its own then),
    // then a restart.
    under_load(&mut paas, "controller SIGKILLed and restarted", |paas| {
        paas.kill_controller();
        let (status, _) = paas.request_app("hello", WHILE_DOWN).unwrap();
        assert_eq!(status, 404, "busybox httpd has no such file");
        thread::sleep(Duration::from_secs(3));
        paas.restart_controller(None);
    });
    // The router kept the access line of the request it served with no controller up, and
    // the restarted controller shows it in the app's log (asked of the router), once.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    while Instant::now() < deadline {
        let resp = paas
            .client()
            .get(format!(
                "{}/v1/apps/hello/logs?ps=router&lines=10000",
                paas.api
            ))
            .bearer_auth(&paas.token)
            .send()
            .unwrap();
        last = resp.text().unwrap();
        if last.contains(WHILE_DOWN) {
            break;
        }
        thread::sleep(Duration::from_millis(250));
    }
    let lines: Vec<&str> = last.lines().filter(|l| l.contains(WHILE_DOWN)).collect();
    assert_eq!(
        lines.len(),
        1,
        "the request served while no controller ran is in the router lines once:
{last}"
    );
    assert!(
        lines[0].contains("heroku[router]: at=info method=GET"),
        "{}",
        lines[0]
    );
    assert_eq!(
        paas.router_pid(),
        Some(router),
        "the restarted controller adopts the running router"
    );

    // An upgrade: the controller replaced by another binary (a copy of it).
    // (Its agent and router binaries are found next to it, as in an installation.)
    let new = paas.data.path().join("new-bin");
    std::fs::create_dir(&new).unwrap();
    let upgraded = new.join("paas-controller");
    std::fs::copy(&bins().controller, &upgraded).unwrap();
    std::os::unix::fs::symlink(&bins().agent, new.join("paas-agent")).unwrap();
    let router_bin = bins().controller.with_file_name("paas-router");
    std::os::unix::fs::symlink(router_bin, new.join("paas-router")).unwrap();
    under_load(&mut paas, "controller replaced by a new binary", |paas| {
        paas.kill_controller();
        paas.restart_controller(Some(&upgraded));
    });
    assert_eq!(paas.router_pid(), Some(router), "still the same router");
    let log = paas.log();
    assert!(
        !log.contains("paas-router exited during start-up"),
        "no second router was started:\n{log}"
    );

    // A change after the restarts reaches the router by its feed.
    app.write("index.html", "<h1>hello v2</h1>\n");
    app.commit("v2");
    let push = app.push(&paas.git_url("hello"), "main");
    assert!(push.ok, "second push failed:\n{}", push.output);
    paas.wait_for_body("hello", "hello v2", Duration::from_secs(30))
        .unwrap();

    let saved = paas.data.path().join("router/table.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&saved).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the saved router state is owner-only");
}
