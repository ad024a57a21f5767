//! The router's access lines in an app's log history (`GET /v1/apps/{app}/logs`): a real
//! router (`router::serve`, both its threads) in front of a real backend on 127.0.0.1, a
//! fake node agent whose job records are stamped as the test goes. The router's lines sit
//! between the job's lines by time, `ps=router` gives only them (and a tail then goes on
//! without repeating one), and the kept number is bounded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::router::{Backend, HistoryLimits, Route};
use crate::state::Controller;
use crate::store::{job_state, JobRow};
use crate::util::{rfc3339_from_micros, unix_micros};

/// A node agent whose one job has `records` as its log (`<stamp> stdout <text>` each).
async fn fake_agent(records: Arc<Mutex<Vec<String>>>) -> String {
    let logs = move || {
        let records = Arc::clone(&records);
        async move {
            let records = records.lock().unwrap().clone();
            records.iter().map(|r| format!("{r}\n")).collect::<String>()
        }
    };
    let router = Router::new()
        .route("/v1/jobs", get(|| async { "[]" }))
        .route("/v1/jobs/{id}/logs", get(logs));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

/// Adds a job record stamped now.
fn say(records: &Mutex<Vec<String>>, text: &str) {
    let stamp = rfc3339_from_micros(unix_micros());
    records
        .lock()
        .unwrap()
        .push(format!("{stamp} stdout {text}"));
}

struct Setup {
    _dir: tempfile::TempDir,
    c: Arc<Controller>,
    records: Arc<Mutex<Vec<String>>>,
    router: String,
    client: reqwest::Client,
}

/// A controller with app `hello` (web job `hello-web-1` on a fake agent) and its router
/// serving `hello.localhost` from a backend answering `hi`.
async fn setup(limits: HistoryLimits) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::config::Settings::new(
        dir.path().to_path_buf(),
        "127.0.0.1:8080".parse().unwrap(),
        8000,
        "localhost",
    )
    .unwrap();
    let c = Controller::open(settings).await.unwrap();
    let records = Arc::new(Mutex::new(Vec::new()));
    let url = fake_agent(Arc::clone(&records)).await;
    c.store.create_app("hello").await.unwrap();
    c.store
        .upsert_node("n1", &url, 1 << 30, crate::util::unix_ms())
        .await
        .unwrap();
    let now = crate::util::now_rfc3339();
    c.store
        .insert_job(&JobRow {
            id: "hello-web-1".into(),
            app: "hello".into(),
            release: 1,
            process_type: "web".into(),
            node: "n1".into(),
            state: job_state::UP.into(),
            addr: None,
            exit_reason: None,
            created_at: now.clone(),
            updated_at: now,
        })
        .await
        .unwrap();

    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_addr = backend.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        axum::serve(backend, Router::new().fallback(|| async { "hi" }))
            .await
            .unwrap()
    });
    c.routes.access_log().set_history_limits(limits);
    c.routes.replace(vec![Route {
        app: "hello".into(),
        hosts: vec!["hello.localhost".into()],
        backends: vec![Backend {
            addr: backend_addr,
            job_id: "hello-web-1".into(),
        }],
    }]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let router = listener.local_addr().unwrap().to_string();
    tokio::spawn(crate::router::serve(listener, c.routes.clone()));
    // A new connection per request, so the router deals them to both its threads.
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    Setup {
        _dir: dir,
        c,
        records,
        router,
        client,
    }
}

impl Setup {
    async fn get(&self, path: &str) {
        let resp = self
            .client
            .get(format!("http://{}{path}", self.router))
            .header("host", "hello.localhost")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "hi");
    }

    fn logs_request(&self, query: &str) -> http::Request<Body> {
        http::Request::get(format!("/v1/apps/hello/logs?{query}"))
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.c.tokens.admin()),
            )
            .body(Body::empty())
            .unwrap()
    }

    /// The history's lines (no tail).
    async fn logs(&self, query: &str) -> Vec<String> {
        let resp = crate::http::app(Arc::clone(&self.c))
            .oneshot(self.logs_request(query))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec())
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The history once it has `n` router lines (a request's line is kept when its
    /// response body is dropped, which may be just after the client has the response).
    async fn logs_with_router_lines(&self, query: &str, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.logs(query).await;
            let router = lines.iter().filter(|l| is_router(l)).count();
            if router >= n || tokio::time::Instant::now() > deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn is_router(line: &str) -> bool {
    line.contains(" heroku[router]: ")
}

/// The quoted path of a router line.
fn path_of(line: &str) -> &str {
    line.split("path=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
}

#[tokio::test]
async fn router_lines_sit_between_the_job_lines_by_time() {
    let s = setup(HistoryLimits::default()).await;
    say(&s.records, "before");
    tokio::time::sleep(Duration::from_millis(5)).await;
    for path in ["/a", "/b", "/c"] {
        s.get(path).await;
    }
    // The last line is kept when its body is dropped: wait for it before stamping "after".
    s.logs_with_router_lines("", 3).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    say(&s.records, "after");

    let lines = s.logs("lines=100").await;
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(lines[0].ends_with(" app[web]: before"), "{lines:#?}");
    assert!(lines[4].ends_with(" app[web]: after"), "{lines:#?}");
    for (line, path) in lines[1..4].iter().zip(["/a", "/b", "/c"]) {
        assert!(is_router(line), "{line}");
        assert_eq!(path_of(line), path, "{lines:#?}");
        assert!(
            line.contains(&format!(
                " heroku[router]: at=info method=GET path=\"{path}\" \
                 host=hello.localhost protocol=http status=200 bytes=2 service="
            )),
            "{line}"
        );
        assert!(line.contains("ms job=hello-web-1 request_id="), "{line}");
    }
    // µs stamps, in order.
    let stamps: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert!(stamps.iter().all(|t| t.len() == 27), "{stamps:?}");
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
    // `lines` cuts the merged history from the old end.
    let last2 = s.logs("lines=2").await;
    assert_eq!(last2, lines[3..], "the newest two");
}

#[tokio::test]
async fn ps_router_gives_only_the_router_lines_and_a_tail_goes_on_after_them() {
    let s = setup(HistoryLimits::default()).await;
    say(&s.records, "from the job");
    for path in ["/a", "/b"] {
        s.get(path).await;
    }
    let lines = s.logs_with_router_lines("ps=router", 2).await;
    let paths: Vec<&str> = lines.iter().map(|l| path_of(l)).collect();
    assert_eq!(paths, ["/a", "/b"], "{lines:#?}");
    assert!(lines.iter().all(|l| is_router(l)), "{lines:#?}");
    let web = s.logs("ps=web").await;
    assert_eq!(web.len(), 1, "{web:#?}");
    assert!(web[0].ends_with(" app[web]: from the job"), "{web:#?}");

    // A tail: the history, then only new lines (the history's are not repeated).
    let resp = crate::http::app(Arc::clone(&s.c))
        .oneshot(s.logs_request("ps=router&tail=true"))
        .await
        .unwrap();
    let mut body = resp.into_body();
    let mut text = String::new();
    let mut next_line = async || loop {
        if let Some(end) = text.find('\n') {
            let line: String = text.drain(..=end).collect();
            return line.trim_end().to_string();
        }
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("a line within 10 s")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
    };
    assert_eq!(path_of(&next_line().await), "/a");
    assert_eq!(path_of(&next_line().await), "/b");
    s.get("/c").await;
    let line = next_line().await;
    assert!(is_router(&line), "{line}");
    assert_eq!(path_of(&line), "/c", "{line}");
}

#[tokio::test]
async fn the_router_history_keeps_only_the_last_lines() {
    let s = setup(HistoryLimits { lines: 5, apps: 4 }).await;
    // More requests than all router threads together may keep.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let requests = threads * 5 + 3;
    for i in 0..requests {
        s.get(&format!("/{i}")).await;
    }
    let newest = format!("/{}", requests - 1);
    // Each request's line is kept when its body is dropped: wait for the last one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines = s.logs("ps=router&lines=100").await;
        if lines.iter().any(|l| path_of(l) == newest) || tokio::time::Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let paths: Vec<&str> = lines.iter().map(|l| path_of(l)).collect();
    let want: Vec<String> = (requests - 5..requests).map(|i| format!("/{i}")).collect();
    assert_eq!(paths, want, "the newest 5 of all threads: {lines:#?}");
    // What the threads hold: at most 5 each, however many requests came.
    let kept = s.c.routes.access_log().kept("hello").await;
    assert!(
        (5..=threads * 5).contains(&kept.len()),
        "{} lines kept by {threads} threads",
        kept.len()
    );
}
