//! Journey: the CLI's config vars, releases:info and rollback against a standalone paas.
//! `cli_config_before_deploy` needs no push (vars are stored for the first build; bad
//! input and auth errors); `cli_config_release_rollback` pushes an app, sets a var (a new
//! release whose jobs see it), and rolls back.

use std::process::{Command, Output};
use std::time::Duration;

use paas_e2e::{bins, require_root, AppDir, Paas};

fn paas_with(p: &Paas, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(&bins().cli);
    cmd.args(args)
        .env("PAAS_URL", &p.api)
        .env("HOME", p.data.path())
        .env_remove("PAAS_TOKEN");
    if let Some(t) = token {
        cmd.env("PAAS_TOKEN", t);
    }
    cmd.output().expect("run paas")
}

fn paas(p: &Paas, args: &[&str]) -> Output {
    paas_with(p, Some(&p.token), args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(o), stderr(o));
    stdout(o)
}

#[test]
fn cli_config_before_deploy() {
    if !require_root() {
        return;
    }
    let p = Paas::start();
    ok(&paas(&p, &["apps:create", "cfg"]));

    let text = ok(&paas(&p, &["config", "-a", "cfg"]));
    assert!(text.contains("no config vars"), "{text}");

    let text = ok(&paas(&p, &["config:set", "-a", "cfg", "A=1", "B=x=y"]));
    assert!(text.contains("A:") && text.contains("x=y"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&paas(&p, &["config", "-a", "cfg", "--json"]))).unwrap();
    assert_eq!(json, serde_json::json!({"A": "1", "B": "x=y"}));
    assert_eq!(ok(&paas(&p, &["config:get", "-a", "cfg", "B"])), "x=y\n");
    ok(&paas(&p, &["config:unset", "-a", "cfg", "A"]));
    let json = p.get_json("/v1/apps/cfg/config").unwrap();
    assert_eq!(json, serde_json::json!({"B": "x=y"}));
    // No release was made: the vars wait for the first build.
    let releases = p.get_json("/v1/apps/cfg/releases").unwrap();
    assert_eq!(releases, serde_json::json!([]));

    // Bad input: a missing var, a bad key (CLI and API), no `=`, an unknown app.
    let o = paas(&p, &["config:get", "-a", "cfg", "A"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("config:set A=value"), "{}", stderr(&o));
    let o = paas(&p, &["config:set", "-a", "cfg", "1BAD=x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("invalid config key"), "{}", stderr(&o));
    let resp = p
        .client()
        .patch(format!("{}/v1/apps/cfg/config", p.api))
        .bearer_auth(&p.token)
        .json(&serde_json::json!({"A-B": "x"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["error"]["code"], "invalid_config_key", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("A-B"));
    let o = paas(&p, &["config:set", "-a", "cfg", "NOEQUALS"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("KEY=value"), "{}", stderr(&o));
    let o = paas(&p, &["config", "-a", "nope"]);
    assert_eq!(o.status.code(), Some(4), "not found");
    assert!(stderr(&o).contains("no app named nope"), "{}", stderr(&o));

    // Releases: none to show or roll back to yet; a bad version.
    let o = paas(&p, &["rollback", "-a", "cfg"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no earlier release"), "{}", stderr(&o));
    let o = paas(&p, &["releases:info", "-a", "cfg"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("git push"), "{}", stderr(&o));
    let o = paas(&p, &["releases:info", "-a", "cfg", "vx"]);
    assert_eq!(o.status.code(), Some(1));
    let o = paas(&p, &["releases:info", "-a", "cfg", "v9"]);
    assert_eq!(o.status.code(), Some(4), "not found");
    assert!(stderr(&o).contains("no release v9"), "{}", stderr(&o));

    // ps before a deploy: nothing to show or scale.
    let text = ok(&paas(&p, &["ps", "-a", "cfg"]));
    assert!(text.contains("no processes yet"), "{text}");
    let o = paas(&p, &["ps:scale", "-a", "cfg", "web=2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("git push"), "{}", stderr(&o));

    // git:remote sets the folder's remote; commands then find the app without -a.
    let dir = AppDir::new();
    let in_dir = |args: &[&str]| {
        Command::new(&bins().cli)
            .args(args)
            .current_dir(dir.dir.path())
            .env("PAAS_URL", &p.api)
            .env("PAAS_TOKEN", &p.token)
            .env("HOME", p.data.path())
            .env_remove("DISPLAY")
            .output()
            .unwrap()
    };
    let text = ok(&in_dir(&["git:remote", "-a", "cfg"]));
    assert!(text.contains("/git/cfg.git"), "{text}");
    assert_eq!(ok(&in_dir(&["config:get", "B"])), "x=y\n");
    let text = ok(&in_dir(&["open"]));
    assert!(
        text.trim_end().ends_with("cfg.localhost") || text.contains("cfg."),
        "{text}"
    );
    let o = paas(&p, &["git:remote", "-a", "nope"]);
    assert_eq!(o.status.code(), Some(4), "not found");

    // Not logged in: exit code 3.
    let o = paas_with(&p, None, &["config", "-a", "cfg"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));

    // Nodes: the standalone agent is listed up; draining and undraining it round-trips.
    let text = ok(&paas(&p, &["nodes"]));
    assert!(text.contains("local") && text.contains("up"), "{text}");
    ok(&paas(&p, &["nodes:drain", "local"]));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&paas(&p, &["nodes", "--json"]))).unwrap();
    assert_eq!(json[0]["state"], "draining", "{json}");
    ok(&paas(&p, &["nodes:undrain", "local"]));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&paas(&p, &["nodes", "--json"]))).unwrap();
    assert_eq!(json[0]["state"], "up", "{json}");
    let o = paas(&p, &["nodes:drain", "no-such-node"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
}

#[test]
fn cli_config_release_rollback() {
    if !require_root() {
        return;
    }
    let p = Paas::start();
    let app = AppDir::new();
    app.write("index.html", "<h1>cfg</h1>\n");
    app.commit("v1");
    let push = app.push(&p.git_url("hello"), "main");
    assert!(push.ok, "push failed:\n{}", push.output);
    p.wait_for_body("hello", "cfg", Duration::from_secs(30))
        .unwrap();

    let text = ok(&paas(
        &p,
        &["config:set", "-a", "hello", "GREETING=hi there"],
    ));
    assert!(text.contains("hi there"), "{text}");
    let info: serde_json::Value =
        serde_json::from_str(&ok(&paas(&p, &["releases:info", "-a", "hello", "--json"]))).unwrap();
    assert_eq!(info["version"], 2, "{info}");
    assert_eq!(info["description"], "Set GREETING", "{info}");
    // The new release's jobs get the var; the app keeps serving.
    let o = paas(
        &p,
        &["run", "-a", "hello", "--", "sh", "-c", "echo g=$GREETING"],
    );
    assert!(ok(&o).contains("g=hi there"), "{}", stdout(&o));
    p.wait_for_body("hello", "cfg", Duration::from_secs(30))
        .unwrap();

    // Rollback (default: the previous release) drops the var again.
    let text = ok(&paas(&p, &["rollback", "-a", "hello"]));
    assert!(
        text.contains("Rollback to v1") && text.contains("v3"),
        "{text}"
    );
    let text = ok(&paas(&p, &["releases:info", "-a", "hello", "v3"]));
    assert!(text.contains("Rollback to v1"), "{text}");
    let o = paas(
        &p,
        &["run", "-a", "hello", "--", "sh", "-c", "echo g=$GREETING."],
    );
    assert!(ok(&o).contains("g=."), "{}", stdout(&o));
    assert_eq!(
        p.get_json("/v1/apps/hello/config").unwrap(),
        serde_json::json!({})
    );
    p.wait_for_body("hello", "cfg", Duration::from_secs(30))
        .unwrap();

    // ps / ps:scale: the formation and jobs; bad types, quantities and sizes.
    let text = ok(&paas(&p, &["ps", "-a", "hello"]));
    assert!(
        text.contains("web") && text.contains("standard-1x"),
        "{text}"
    );
    let text = ok(&paas(&p, &["ps:scale", "-a", "hello", "web=2"]));
    assert!(
        text.lines()
            .any(|l| l.starts_with("web") && l.contains(" 2 ")),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&paas(&p, &["ps", "-a", "hello", "--json"]))).unwrap();
    assert_eq!(json["formation"][0]["quantity"], 2, "{json}");
    assert!(json["jobs"].is_array(), "{json}");
    // The scheduler runs the second web job.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let jobs = p.get_json("/v1/apps/hello/jobs").unwrap();
        let up = jobs
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["type"] == "web" && j["state"] == "up")
            .count();
        if up == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "2 web jobs up: {jobs}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let o = paas(&p, &["ps:scale", "-a", "hello", "worker=1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("its release has web"), "{}", stderr(&o));
    let o = paas(&p, &["ps:scale", "-a", "hello", "web=two"]);
    assert_eq!(o.status.code(), Some(1));
    let o = paas(&p, &["ps:resize", "-a", "hello", "web=2T"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("standard-1x"), "{}", stderr(&o));
    ok(&paas(&p, &["ps:scale", "-a", "hello", "web=1"]));

    let o = paas(&p, &["rollback", "-a", "hello", "v2", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&ok(&o)).unwrap();
    assert_eq!(json["description"], "Rollback to v2", "{json}");

    // apps:destroy: refused without --confirm (CLI and API), then the app, its jobs and
    // its repository go.
    let o = paas(&p, &["apps:destroy", "hello"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--confirm hello"), "{}", stderr(&o));
    let resp = p
        .client()
        .delete(format!("{}/v1/apps/hello", p.api))
        .bearer_auth(&p.token)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["error"]["code"], "confirmation_required", "{body}");
    assert!(p.data.path().join("git/hello.git").exists());
    let text = ok(&paas(&p, &["apps:destroy", "hello", "--confirm", "hello"]));
    assert!(text.contains("Destroyed hello"), "{text}");
    let o = paas(&p, &["apps:info", "-a", "hello"]);
    assert_eq!(o.status.code(), Some(4), "not found");
    assert!(!p.data.path().join("git/hello.git").exists());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left: Vec<_> = p
            .agent_jobs()
            .unwrap()
            .into_iter()
            .filter(|j| j["labels"]["paas.app"] == "hello")
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "hello's jobs stopped: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
