//! Every kind of app deploys as on Heroku (issue 15), with real pushes, a real standalone
//! paas and real containers on the tiny stack (root): worker-only, console-only and
//! typeless apps; app.json with comments, formation, scripts, env and cron; a crash at
//! start (web or worker) showing the process's own last lines; sizes that set CPU.

use std::time::{Duration, Instant};

use paas_e2e::{require_root, AppDir, Paas};
use serde_json::{json, Value};

const WEB: &str = "web: sh -c 'mkdir -p /tmp/w && echo serving-$GREETING > /tmp/w/index.html && exec httpd -f -p $PORT -h /tmp/w'\n";

fn api(paas: &Paas, method: &str, path: &str, body: Option<Value>) -> (u16, Value, String) {
    let a = paas.call(Some(&paas.token), method, path, body.as_ref());
    (a.status, a.json(), a.body)
}

fn formation(paas: &Paas, app: &str) -> Value {
    api(paas, "GET", &format!("/v1/apps/{app}/formation"), None).1
}

fn entry<'a>(formation: &'a Value, t: &str) -> &'a Value {
    formation
        .as_array()
        .and_then(|l| l.iter().find(|e| e["type"] == t))
        .unwrap_or_else(|| panic!("no {t} in {formation}"))
}

fn release_status(paas: &Paas, app: &str) -> (Value, String) {
    let info = paas.get_json(&format!("/v1/apps/{app}")).unwrap();
    let v = info["current_release"].clone();
    let r = paas
        .get_json(&format!("/v1/apps/{app}/releases/{v}"))
        .unwrap();
    (v, r["status"].as_str().unwrap_or_default().to_string())
}

/// The agent's running jobs of `app` and `process_type`.
fn jobs_of(paas: &Paas, app: &str, process_type: &str) -> Vec<Value> {
    paas.agent_jobs()
        .unwrap_or_default()
        .into_iter()
        .filter(|j| {
            j["labels"]["paas.app"] == app
                && j["labels"]["paas.type"] == process_type
                && j["state"] == "up"
        })
        .collect()
}

fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

/// `cpu.cfs_quota_us` (v1) or the quota of `cpu.max` (v2), and `cpu.shares` (v1) when
/// there, of the cgroup the process `pid` is in.
fn cpu_of(pid: i64) -> (Option<String>, Option<String>) {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.split(',').any(|c| c == "cpu") {
            let dir = format!("/sys/fs/cgroup/{controllers}{path}");
            let read = |f: &str| {
                std::fs::read_to_string(format!("{dir}/{f}"))
                    .ok()
                    .map(|s| s.trim().to_string())
            };
            return (read("cpu.cfs_quota_us"), read("cpu.shares"));
        }
        if controllers.is_empty() {
            let dir = format!("/sys/fs/cgroup/unified{path}");
            if let Ok(v) = std::fs::read_to_string(format!("{dir}/cpu.max")) {
                let quota = v.split_whitespace().next().map(str::to_string);
                return (quota, None);
            }
        }
    }
    (None, None)
}

fn web_pid(paas: &Paas, app: &str) -> i64 {
    let jobs = jobs_of(paas, app, "web");
    jobs.first()
        .and_then(|j| j["pid"].as_i64())
        .unwrap_or_else(|| panic!("no running web job of {app}: {jobs:?}"))
}

#[test]
fn worker_only_console_only_and_typeless_apps_deploy() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();

    // Worker-only: released at once with worker=0 (Heroku's default), then scaled.
    let app = AppDir::new();
    app.write(
        "Procfile",
        "worker: sh -c 'while true; do echo worker-tick; sleep 2; done'\n",
    );
    app.commit("worker only");
    let push = app.push(&paas.git_url("wk"), "main");
    assert!(push.ok, "worker-only push failed:\n{}", push.output);
    assert!(
        push.output.contains("No web process type"),
        "{}",
        push.output
    );
    assert!(
        push.output.contains("The formation starts no process"),
        "{}",
        push.output
    );
    assert_eq!(release_status(&paas, "wk"), (json!(1), "succeeded".into()));
    assert_eq!(entry(&formation(&paas, "wk"), "worker")["quantity"], 0);
    let (status, _, body) = api(
        &paas,
        "PATCH",
        "/v1/apps/wk/formation",
        Some(json!({"worker": {"quantity": 1}})),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        eventually(Duration::from_secs(30), || !jobs_of(&paas, "wk", "worker")
            .is_empty()),
        "the scaled worker never ran"
    );
    // A second push waits for the worker (now scaled to 1) and succeeds.
    app.write(
        "Procfile",
        "worker: sh -c 'while true; do echo v2-tick; sleep 2; done'\n",
    );
    app.commit("v2");
    let push = app.push(&paas.git_url("wk"), "main");
    assert!(push.ok, "worker v2 push failed:\n{}", push.output);
    assert!(push.output.contains("Starting worker"), "{}", push.output);

    // Console-only.
    let app = AppDir::new();
    app.write("Procfile", "console: sh\n");
    app.commit("console only");
    let push = app.push(&paas.git_url("con"), "main");
    assert!(push.ok, "console-only push failed:\n{}", push.output);
    assert_eq!(release_status(&paas, "con").1, "succeeded");

    // No process types at all: released, and `paas run` works on it.
    let app = AppDir::new();
    app.write("Procfile", "# nothing runs here\n");
    app.write("task.sh", "echo ran-in-typeless-$1\n");
    app.commit("no types");
    let push = app.push(&paas.git_url("none"), "main");
    assert!(push.ok, "typeless push failed:\n{}", push.output);
    assert!(push.output.contains("No process types"), "{}", push.output);
    assert_eq!(release_status(&paas, "none").1, "succeeded");
    let info = paas.get_json("/v1/apps/none").unwrap();
    assert_eq!(info["status"], "idle", "nothing runs: {info}");
    let out = paas.cli_as(
        &paas.token,
        &["run", "-a", "none", "--", "sh", "task.sh", "ok"],
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ran-in-typeless-ok"), "{text}");

    // A one-off job in progress is listed with the app's jobs (`paas ps`), as Heroku
    // lists run.N, and no longer once it is removed.
    let (status, started, body) = api(
        &paas,
        "POST",
        "/v1/apps/none/run",
        Some(serde_json::json!({"command": "sleep 120"})),
    );
    assert_eq!(status, 201, "{body}");
    let id = started["id"].as_str().unwrap().to_string();
    let (_, jobs, body) = api(&paas, "GET", "/v1/apps/none/jobs", None);
    let listed = jobs
        .as_array()
        .and_then(|l| l.iter().find(|j| j["id"] == id.as_str()))
        .unwrap_or_else(|| panic!("the one-off job {id} is not listed: {body}"));
    assert_eq!(listed["type"], "run", "{listed}");
    assert_eq!(listed["state"], "up", "{listed}");
    let ps = paas.cli_as(&paas.token, &["ps", "-a", "none"]);
    let ps_text = String::from_utf8_lossy(&ps.stdout).to_string();
    assert!(ps_text.contains(&id), "paas ps:\n{ps_text}");
    let (status, _, body) = api(&paas, "DELETE", &format!("/v1/apps/none/run/{id}"), None);
    assert_eq!(status, 200, "{body}");
    let (_, jobs, body) = api(&paas, "GET", "/v1/apps/none/jobs", None);
    assert!(!body.contains(&id), "removed, still listed: {jobs}");
}

const APP_JSON: &str = r#"// app.json with comments, as Dokku accepts it
{
  "name": "aj",
  /* the first deploy's formation */
  "formation": {
    "web": {"quantity": 1, "size": "basic"},
    "worker": {"quantity": 1}, // trailing comma next
  },
  "scripts": {
    "dokku": {"predeploy": "echo predeploy-ran-with-$GREETING", "postdeploy": "echo postdeploy-ran"},
  },
  "env": {
    "GREETING": {"description": "shown on the page", "value": "hello"},
    "SECRET_KEY": {"generator": "secret"},
    "API_TOKEN": {"description": "the vendor's token", "required": true},
    "OPTIONAL": {"required": false}
  },
  "cron": [{"command": "echo cron-ran-$DYNO", "schedule": "* * * * *"}],
  "addons": ["heroku-postgresql"]
}
"#;

#[test]
fn app_json_with_comments_sets_formation_env_scripts_and_cron() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();
    let app = AppDir::new();
    app.write(
        "Procfile",
        &format!("{WEB}worker: sh -c 'while true; do sleep 5; done'\n"),
    );
    app.write("app.json", APP_JSON);
    app.commit("v1");
    let url = paas.git_url("aj");

    // The required var is missing: the first push fails naming it.
    let push = app.push(&url, "main");
    assert!(!push.ok, "the push should fail:\n{}", push.output);
    assert!(
        push.output.contains("API_TOKEN (the vendor's token)")
            && push.output.contains("paas config:set API_TOKEN="),
        "{}",
        push.output
    );
    let (status, _, body) = api(
        &paas,
        "PATCH",
        "/v1/apps/aj/config",
        Some(json!({"API_TOKEN": "t0k"})),
    );
    assert_eq!(status, 200, "{body}");

    let push = app.push(&url, "main");
    assert!(push.ok, "push failed:\n{}", push.output);
    for needle in [
        "app.json: \"addons\" is not supported by paas, ignored",
        "Setting config vars from app.json: GREETING, SECRET_KEY",
        "Formation from app.json: web=1:basic",
        "Formation from app.json: worker=1",
        "predeploy-ran-with-hello",
        "postdeploy-ran",
        "Starting web, worker",
    ] {
        assert!(push.output.contains(needle), "{needle}:\n{}", push.output);
    }
    paas.wait_for_body("aj", "serving-hello", Duration::from_secs(30))
        .unwrap();
    let config = paas.get_json("/v1/apps/aj/config").unwrap();
    assert_eq!(config["GREETING"], "hello");
    let secret = config["SECRET_KEY"].as_str().unwrap();
    assert_eq!(secret.len(), 64, "{secret}");
    assert!(config.get("OPTIONAL").is_none(), "{config}");
    let f = formation(&paas, "aj");
    assert_eq!(entry(&f, "web")["size"], "basic", "{f}");
    assert_eq!(entry(&f, "worker")["quantity"], 1, "{f}");
    assert!(!jobs_of(&paas, "aj", "worker").is_empty());

    // basic is half a core: the web job's cgroup says so.
    let (quota, shares) = cpu_of(web_pid(&paas, "aj"));
    assert_eq!(quota.as_deref(), Some("50000"), "basic: 0.5 core of 100 ms");
    if let Some(shares) = shares {
        assert_eq!(shares, "512");
    }
    // ps:resize changes memory and CPU.
    let (status, _, body) = api(
        &paas,
        "PATCH",
        "/v1/apps/aj/formation",
        Some(json!({"web": {"size": "performance-m"}})),
    );
    assert_eq!(status, 200, "{body}");
    // 5 cores: a quota on a node with more, none on a node with 5 or fewer (a quota of
    // every core limits nothing; the agent leaves it out, node-agent jobs/prepare.rs).
    // SAFETY: sysconf reads a system value; no pointers are involved.
    let node_cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let five_cores = if node_cpus > 5 { "500000" } else { "-1" };
    let mut seen = None;
    assert!(
        eventually(Duration::from_secs(60), || {
            seen = jobs_of(&paas, "aj", "web")
                .first()
                .and_then(|j| j["pid"].as_i64())
                .map(cpu_of);
            seen.as_ref().is_some_and(|(quota, shares)| {
                let quota = quota.as_deref().map(|q| if q == "max" { "-1" } else { q });
                quota == Some(five_cores) && shares.as_deref().is_none_or(|s| s == "5120")
            })
        }),
        "the resized web job never got 5 cores ({node_cpus} on the node): {seen:?}"
    );

    // Cron: listed with its next run, and it runs within a minute or so.
    let (status, cron, body) = api(&paas, "GET", "/v1/apps/aj/cron", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(cron[0]["schedule"], "* * * * *", "{cron}");
    assert!(
        cron[0]["next_run"].as_str().unwrap().ends_with(":00Z"),
        "{cron}"
    );
    let mut logs = String::new();
    let ran = eventually(Duration::from_secs(100), || {
        logs = api(&paas, "GET", "/v1/apps/aj/logs?lines=500", None).2;
        logs.contains("cron-ran-cron.1")
    });
    assert!(ran, "the cron entry never ran; logs:\n{logs}");

    // A later deploy keeps what ps:scale set; a failing predeploy keeps the old release.
    let (status, _, body) = api(
        &paas,
        "PATCH",
        "/v1/apps/aj/formation",
        Some(json!({"worker": {"quantity": 0}})),
    );
    assert_eq!(status, 200, "{body}");
    let before = release_status(&paas, "aj").0;
    app.write(
        "app.json",
        &APP_JSON.replace(
            "echo predeploy-ran-with-$GREETING",
            "echo predeploy-fails; exit 3",
        ),
    );
    app.commit("v3");
    let push = app.push(&url, "main");
    assert!(!push.ok, "{}", push.output);
    assert!(
        push.output.contains("predeploy-fails")
            && push
                .output
                .contains("scripts.dokku.predeploy failed (exited 3"),
        "{}",
        push.output
    );
    assert_eq!(release_status(&paas, "aj").0, before);
    assert_eq!(entry(&formation(&paas, "aj"), "worker")["quantity"], 0);
    // A config:set release keeps the app.json (its cron is still listed).
    let (status, _, _) = api(
        &paas,
        "PATCH",
        "/v1/apps/aj/config",
        Some(json!({"X": "1"})),
    );
    assert_eq!(status, 200);
    let (_, cron, _) = api(&paas, "GET", "/v1/apps/aj/cron", None);
    assert_eq!(cron.as_array().map(Vec::len), Some(1), "{cron}");
}

#[test]
fn a_crash_at_start_shows_the_process_own_last_lines() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();
    let app = AppDir::new();
    app.write(
        "Procfile",
        "web: sh -c 'echo about-to-fail; echo line-two >&2; nosuchcommand-xyz'\n",
    );
    app.commit("crashes");
    let push = app.push(&paas.git_url("crash"), "main");
    assert!(!push.ok, "{}", push.output);
    for needle in [
        "Last lines of web (exited 127",
        "| about-to-fail",
        "| line-two",
        "nosuchcommand-xyz",
    ] {
        assert!(push.output.contains(needle), "{needle}:\n{}", push.output);
    }

    // A worker the formation starts that crash-loops fails the deploy like a web, and
    // the previous release keeps serving.
    let app = AppDir::new();
    app.write("Procfile", WEB);
    app.write("app.json", r#"{"env": {"GREETING": "v1"}}"#);
    app.commit("v1");
    let url = paas.git_url("wcrash");
    let push = app.push(&url, "main");
    assert!(push.ok, "{}", push.output);
    paas.wait_for_body("wcrash", "serving-v1", Duration::from_secs(30))
        .unwrap();
    let (status, _, body) = api(
        &paas,
        "PUT",
        "/v1/apps/wcrash/formation/worker",
        Some(json!({"count": 1})),
    );
    assert_eq!(status, 200, "{body}");
    app.write(
        "Procfile",
        &format!("{WEB}worker: sh -c 'echo worker-dies-now; exit 3'\n"),
    );
    app.commit("v2");
    let push = app.push(&url, "main");
    assert!(!push.ok, "{}", push.output);
    for needle in [
        "worker process crashed",
        "Last lines of worker (exited 3",
        "| worker-dies-now",
        "Rolled back to v1",
    ] {
        assert!(push.output.contains(needle), "{needle}:\n{}", push.output);
    }
    let (code, body) = paas.request_app("wcrash", "/").unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("serving-v1"), "{body}");
}
