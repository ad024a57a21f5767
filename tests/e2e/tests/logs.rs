//! Journey: `paas run` and `paas logs` against a standalone paas with real containers: a
//! one-off job gets the release's config, its output reaches the terminal and its exit
//! code is the CLI's; `paas logs` shows the build and the web process in Heroku's format
//! with the timestamps the node agent gave each line, `--ps web -n 5` keeps the last 5 web
//! lines, `--ps` filters, and `-t` follows new lines.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use paas_e2e::{bins, require_root, AppDir, Paas};

fn paas(p: &Paas, args: &[&str]) -> std::process::Output {
    Command::new(&bins().cli)
        .args(args)
        .env("PAAS_URL", &p.api)
        .env("PAAS_TOKEN", &p.token)
        .env("HOME", p.data.path())
        .output()
        .expect("run paas")
}

/// The web job's records as its agent serves them (`timestamps=true`), asked with the
/// node token.
fn agent_records(p: &Paas) -> String {
    let nodes = p.get_json("/v1/nodes").unwrap();
    let url = nodes[0]["url"].as_str().unwrap().to_string();
    // A registered agent accepts only its own credential, not the shared node token.
    let token = std::fs::read_to_string(p.data.path().join("agent/api-token")).unwrap();
    let web = p
        .agent_jobs()
        .unwrap()
        .into_iter()
        .find(|j| j["labels"]["paas.dyno"] == "web.1")
        .expect("the web.1 job");
    p.client()
        .get(format!(
            "{url}/v1/jobs/{}/logs?timestamps=true",
            web["id"].as_str().unwrap()
        ))
        .bearer_auth(token.trim())
        .send()
        .unwrap()
        .text()
        .unwrap()
}

#[test]
fn run_and_logs() {
    if !require_root() {
        return;
    }
    let p = Paas::start();
    let app = AppDir::new();
    app.write("index.html", "<h1>logs</h1>\n");
    app.commit("v1");
    let push = app.push(&p.git_url("hello"), "main");
    assert!(push.ok, "push failed:\n{}", push.output);
    p.wait_for_body("hello", "logs", Duration::from_secs(30))
        .unwrap();

    // paas run: output, config (PORT), exit code; nothing left on the node.
    let out = paas(
        &p,
        &[
            "run",
            "-a",
            "hello",
            "--",
            "sh",
            "-c",
            "echo one-off $PORT; echo oops >&2; exit 7",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("one-off 5000"), "{stdout}");
    // Not a terminal: stdin is piped, stderr stays stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("oops"), "{stderr}");
    let left: Vec<_> = p
        .agent_jobs()
        .unwrap()
        .into_iter()
        .filter(|j| j["labels"]["paas.kind"] == "run")
        .collect();
    assert!(left.is_empty(), "one-off job removed: {left:?}");
    let out = paas(&p, &["run", "-a", "hello", "--", "true"]);
    assert_eq!(out.status.code(), Some(0));

    // A request makes the web process log a line.
    p.request_app("hello", "/").unwrap();
    let out = paas(&p, &["logs", "-a", "hello", "-n", "50"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.lines()
            .any(|l| l.contains(" app[build]: -----> Releasing v1")),
        "{text}"
    );
    let web: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" app[web.1]: "))
        .collect();
    assert!(!web.is_empty(), "{text}");
    // `2026-11-23T05:00:00.123456Z app[web.1]: …`: the agent's capture time.
    let ts = web[0].split(' ').next().unwrap();
    assert!(
        ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "{ts}"
    );

    // Three more requests, a moment apart; `--ps web -n 5` shows the last 5 web lines,
    // each with the timestamp the agent recorded for it.
    for path in ["/lg4-a", "/lg4-b", "/lg4-c"] {
        p.request_app("hello", path).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(500));
    let out = paas(&p, &["logs", "-a", "hello", "--ps", "web", "-n", "5"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines.iter().all(|l| l.contains(" app[web.1]: ")), "{text}");
    // busybox httpd -v logs one `response:<status>` line per request: the three 404s last.
    assert!(
        lines[2..].iter().all(|l| l.ends_with("response:404")),
        "the newest lines last: {text}"
    );
    let stamps: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{text}");
    let records = agent_records(&p);
    for l in &lines {
        let (ts, body) = l.split_once(" app[web.1]: ").unwrap();
        assert!(
            records
                .lines()
                .any(|r| r.starts_with(ts) && r.ends_with(body)),
            "{l:?} is not stamped as the agent captured it:\n{records}"
        );
    }

    let out = paas(&p, &["logs", "-a", "hello", "--ps", "web"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !text.contains("app[build]"),
        "--ps web leaves the build out: {text}"
    );

    // -t follows: a new request's line arrives on the open stream.
    let mut tail = Command::new(&bins().cli)
        .args(["logs", "-a", "hello", "-t", "-n", "0", "--ps", "web"])
        .env("PAAS_URL", &p.api)
        .env("PAAS_TOKEN", &p.token)
        .env("HOME", p.data.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = BufReader::new(tail.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    p.request_app("hello", "/followed").unwrap();
    let line = rx.recv_timeout(Duration::from_secs(15));
    let _ = tail.kill();
    let _ = tail.wait();
    let line = line.expect("a followed line");
    assert!(line.contains(" app[web.1]: "), "{line}");
}
