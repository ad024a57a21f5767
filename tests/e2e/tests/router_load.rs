//! Journey: a `git push` of a new release while the app is under load (~200 requests/s
//! through the router, to 127.0.0.1 with the app's Host header) drops no request and
//! answers nothing but 2xx, and the new release serves at the end; the same for a
//! scale-down, a `ps:restart web` and a rollback; then a custom domain routes to the app
//! until it is removed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use paas_e2e::{require_root, AppDir, Paas};

/// Load-generating threads; each sends one request every `PERIOD` over keep-alive.
const THREADS: u64 = 4;
const PERIOD: Duration = Duration::from_millis(20);
/// How long the load may run after the push returned (the switch happens in this window).
const AFTER_PUSH: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    v2: AtomicU64,
    failures: Mutex<Vec<String>>,
}

fn load(router: String, stop: Arc<AtomicBool>, tally: Arc<Tally>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let result = client
                .get(format!("http://{router}/"))
                .header("host", "hello.localhost")
                .send()
                .and_then(|r| {
                    let status = r.status();
                    r.text().map(|body| (status, body))
                });
            match result {
                Ok((status, body)) if status.is_success() => {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                    if body.contains("hello v2") {
                        tally.v2.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok((status, body)) => tally
                    .failures
                    .lock()
                    .unwrap()
                    .push(format!("{status}: {body}")),
                Err(e) => tally.failures.lock().unwrap().push(format!("error: {e}")),
            }
            next += PERIOD;
            let now = Instant::now();
            if next > now {
                thread::sleep(next - now);
            } else {
                next = now;
            }
        }
    })
}

fn up_jobs(paas: &Paas) -> usize {
    paas.agent_jobs()
        .map(|jobs| jobs.iter().filter(|j| j["state"] == "up").count())
        .unwrap_or(usize::MAX)
}

/// Runs `action` under load; the load goes on until `done` holds (then 1 s more), at most
/// AFTER_PUSH after `action` returned. Panics on any failed or non-2xx request.
fn under_load(
    paas: &Paas,
    what: &str,
    action: impl FnOnce(),
    done: impl Fn(&Tally) -> bool,
) -> Arc<Tally> {
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            load(
                paas.router_addr.clone(),
                Arc::clone(&stop),
                Arc::clone(&tally),
            )
        })
        .collect();
    action();
    let deadline = Instant::now() + AFTER_PUSH;
    let mut finished = false;
    while Instant::now() < deadline {
        if done(&tally) {
            finished = true;
            thread::sleep(Duration::from_secs(1));
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let ok = tally.ok.load(Ordering::Relaxed);
    let failures = tally.failures.lock().unwrap().clone();
    eprintln!(
        "{what} under load: {ok} ok, {} failed in {secs:.1} s ({:.0} req/s), {} served by v2",
        failures.len(),
        ok as f64 / secs,
        tally.v2.load(Ordering::Relaxed)
    );
    assert!(
        failures.is_empty(),
        "{what}: {} of {} requests failed, first: {:?}",
        failures.len(),
        ok as usize + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok > 100, "{what}: the load generator ran ({ok} requests)");
    assert!(finished, "{what} did not finish within {AFTER_PUSH:?}");
    tally
}

fn scale(paas: &Paas, count: u32) {
    let resp = paas
        .client()
        .put(format!("{}/v1/apps/hello/formation/web", paas.api))
        .bearer_auth(&paas.token)
        .body(format!("{{\"count\": {count}}}"))
        .header("content-type", "application/json")
        .send()
        .unwrap();
    assert!(
        resp.status().is_success(),
        "scale: {}",
        resp.text().unwrap()
    );
}

/// The up web jobs on the node: (id, release label).
fn up_web_jobs(paas: &Paas) -> Vec<(String, String)> {
    paas.agent_jobs()
        .unwrap_or_default()
        .iter()
        .filter(|j| j["state"] == "up" && j["labels"]["paas.type"] == "web")
        .map(|j| {
            (
                j["id"].as_str().unwrap_or_default().to_string(),
                j["labels"]["paas.release"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn post(paas: &Paas, path: &str) {
    let resp = paas
        .client()
        .post(format!("{}{path}", paas.api))
        .bearer_auth(&paas.token)
        .send()
        .unwrap();
    assert!(
        resp.status().is_success(),
        "POST {path}: {}",
        resp.text().unwrap()
    );
}

#[test]
fn push_and_scale_down_under_load_drop_no_request_and_domains_route() {
    if !require_root() {
        return;
    }
    // Through the `paas-router` process (issue 16: it serves from its fed table).
    let paas = Paas::start();
    let app = AppDir::new();
    app.write("index.html", "<h1>hello v1</h1>\n");
    app.commit("v1");
    let push = app.push(&paas.git_url("hello"), "main");
    assert!(push.ok, "first push failed:\n{}", push.output);
    paas.wait_for_body("hello", "hello v1", Duration::from_secs(30))
        .unwrap();

    // A new release: v2 takes over, v1's job drains and goes.
    under_load(
        &paas,
        "git push of v2",
        || {
            app.write("index.html", "<h1>hello v2</h1>\n");
            app.commit("v2");
            let push = app.push(&paas.git_url("hello"), "main");
            assert!(push.ok, "second push failed:\n{}", push.output);
        },
        |t| t.v2.load(Ordering::Relaxed) > 0 && up_jobs(&paas) == 1,
    );
    paas.wait_for_body("hello", "hello v2", Duration::from_secs(10))
        .unwrap();

    // Scale to 2, then down to 1 under load.
    scale(&paas, 2);
    let deadline = Instant::now() + Duration::from_secs(30);
    while up_jobs(&paas) != 2 {
        assert!(Instant::now() < deadline, "no second web job within 30 s");
        thread::sleep(Duration::from_millis(200));
    }
    thread::sleep(Duration::from_secs(2));
    under_load(
        &paas,
        "scale-down 2 → 1",
        || scale(&paas, 1),
        |_| up_jobs(&paas) == 1,
    );
    paas.wait_for_body("hello", "hello v2", Duration::from_secs(10))
        .unwrap();

    // A restart (`paas ps:restart web`): a new job starts, takes over, the old one drains.
    let before = up_web_jobs(&paas);
    assert_eq!(before.len(), 1, "{before:?}");
    under_load(
        &paas,
        "ps:restart web",
        || post(&paas, "/v1/apps/hello/restart?type=web"),
        |_| {
            let now = up_web_jobs(&paas);
            now.len() == 1 && now[0].0 != before[0].0
        },
    );
    // A rollback to v1 (a new release v3 with v1's image) under load.
    under_load(
        &paas,
        "rollback to v1",
        || post(&paas, "/v1/apps/hello/rollback"),
        |_| {
            let now = up_web_jobs(&paas);
            now.len() == 1 && now[0].1 == "3"
        },
    );
    paas.wait_for_body("hello", "hello v1", Duration::from_secs(10))
        .unwrap();
    // A custom domain reaches the app once added, and no longer once removed.
    let domains = format!("{}/v1/apps/hello/domains", paas.api);
    let resp = paas
        .client()
        .post(&domains)
        .bearer_auth(&paas.token)
        .header("content-type", "application/json")
        .body(r#"{"hostname": "www.hello.test"}"#)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().unwrap());
    let by_domain = |expect: u16| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let resp = paas
                .client()
                .get(format!("http://{}/", paas.router_addr))
                .header("host", "WWW.hello.test:80")
                .send()
                .unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().unwrap();
            if status == expect && (expect != 200 || body.contains("hello v1")) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "www.hello.test answered {status} instead of {expect}: {body}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    };
    by_domain(200);
    let resp = paas
        .client()
        .delete(format!("{domains}/www.hello.test"))
        .bearer_auth(&paas.token)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    by_domain(404);
}
