//! Journey: the CLI's newer commands against a standalone paas, each with `--json` and bad
//! input. `paas login` in a temporary HOME sets up git's credential helper, so a plain
//! `git push` (no token in the URL) deploys; then builds, builds:info, builds:output,
//! ps:resize (named, --memory, bad), ps:restart, ps:stop, --if-match (stale → 412 → exit
//! 1), apps:rename (the folder's remote follows), and the exit codes: 4 for an unknown
//! app or job, 3 when not logged in, 1 for bad input.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use paas_e2e::{bins, require_root, AppDir, Paas};

/// Runs paas with `home` as HOME (its config file holds the login) and no token in the
/// environment.
fn paas_in(p: &Paas, home: &Path, dir: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(&bins().cli);
    cmd.args(args)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("PAAS_TOKEN")
        .env_remove("PAAS_URL")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let _ = p;
    cmd.output().expect("run paas")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "{}", text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[track_caller]
fn fails(o: &Output, code: i32, needle: &str) {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(needle), "wanted {needle:?} in: {err}");
}

#[track_caller]
fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// The ids of the app's web jobs in state up.
fn up_web(p: &Paas, app: &str) -> Vec<String> {
    p.get_json(&format!("/v1/apps/{app}/jobs"))
        .map(|j| {
            j.as_array()
                .unwrap()
                .iter()
                .filter(|j| j["type"] == "web" && j["state"] == "up")
                .map(|j| j["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn cli_login_push_builds_resize_restart_rename() {
    if !require_root() {
        return;
    }
    let p = Paas::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();

    // Not logged in: exit 3 and what to do.
    fails(
        &paas_in(&p, h, None, &["apps", "--url", &p.api]),
        3,
        "paas login",
    );
    // Login stores the URL and token and registers the git credential helper.
    let out = ok(&paas_in(
        &p,
        h,
        None,
        &["login", "--url", &p.api, "--token", &p.token],
    ));
    assert!(out.contains("credential."), "{out}");
    let helper = Command::new("git")
        .args(["config", "--global", "--get-regexp", "credential"])
        .env("HOME", h)
        .output()
        .unwrap();
    assert!(
        text(&helper).contains("git-credential"),
        "{}",
        text(&helper)
    );
    // The helper answers with the token for the controller's host only.
    let mut cred = Command::new(&bins().cli)
        .args(["git-credential", "get"])
        .env("HOME", h)
        .env_remove("XDG_CONFIG_HOME")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let host = p.api.trim_start_matches("http://").to_string();
    std::io::Write::write_all(
        cred.stdin.as_mut().unwrap(),
        format!("protocol=http\nhost={host}\n\n").as_bytes(),
    )
    .unwrap();
    let answer = cred.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&answer.stdout).contains(&format!("password={}", p.token)),
        "{}",
        text(&answer)
    );

    ok(&paas_in(&p, h, None, &["apps:create", "cli2"]));
    // A real `git push` with HOME = the logged-in home: no token in the URL, no prompt.
    let app = AppDir::new();
    app.write("index.html", "<h1>cli2</h1>\n");
    app.commit("v1");
    let url = p.git_url_with("cli2", None);
    let push = Command::new("git")
        .current_dir(app.dir.path())
        .env("HOME", h)
        .env_remove("XDG_CONFIG_HOME")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["push", &url, "main"])
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "push with the helper failed: {}",
        text(&push)
    );
    p.wait_for_body("cli2", "cli2", Duration::from_secs(30))
        .unwrap();
    let dir = app.dir.path();
    Command::new("git")
        .current_dir(dir)
        .args(["remote", "add", "paas", &url])
        .output()
        .unwrap();

    // Lists in JSON, the app taken from the folder's `paas` remote.
    let apps = json(&paas_in(&p, h, Some(dir), &["apps", "--json"]));
    assert_eq!(apps[0]["name"], "cli2", "{apps}");
    let releases = json(&paas_in(&p, h, Some(dir), &["releases", "--json"]));
    assert_eq!(releases[0]["version"], 1, "{releases}");
    let builds = json(&paas_in(&p, h, Some(dir), &["builds", "--json"]));
    let build = builds[0]["id"].as_str().unwrap().to_string();
    assert_eq!(builds[0]["status"], "succeeded", "{builds}");
    let table = ok(&paas_in(&p, h, Some(dir), &["builds"]));
    assert!(
        table.starts_with("ID ") && table.contains(&build),
        "{table}"
    );
    let info = json(&paas_in(
        &p,
        h,
        Some(dir),
        &["builds:info", &build, "--json"],
    ));
    assert_eq!(info["release"], 1, "{info}");
    let out = ok(&paas_in(&p, h, Some(dir), &["builds:output", &build]));
    assert!(out.contains("----->"), "{out}");
    fails(
        &paas_in(&p, h, Some(dir), &["builds:info", "nope"]),
        4,
        "paas builds",
    );
    let ps = json(&paas_in(&p, h, Some(dir), &["ps", "--json"]));
    assert_eq!(ps["formation"][0]["size"], "standard-1x", "{ps}");

    // Resize: named, --memory, bad sizes (refused locally, listing the names).
    let f = json(&paas_in(
        &p,
        h,
        Some(dir),
        &["ps:resize", "web=basic", "--json"],
    ));
    assert_eq!(f[0]["memory_bytes"], 256 << 20, "{f}");
    let f = json(&paas_in(
        &p,
        h,
        Some(dir),
        &["ps:resize", "web", "--memory", "768M", "--json"],
    ));
    assert_eq!(f[0]["size"], "768M", "{f}");
    fails(
        &paas_in(&p, h, Some(dir), &["ps:resize", "web=huge"]),
        1,
        "standard-2x",
    );
    // The resize replaces the web job (zero downtime); the new one is up and serving.
    wait_until("one resized web job", 60, || up_web(&p, "cli2").len() == 1);
    p.wait_for_body("cli2", "cli2", Duration::from_secs(30))
        .unwrap();

    // Restart one type, then stop one job: each time a new job takes over.
    let before = up_web(&p, "cli2");
    let r = json(&paas_in(&p, h, Some(dir), &["ps:restart", "web", "--json"]));
    // The restart names every active web job, which can include ones the resize is still
    // draining; the one serving now must be among them.
    let named: Vec<&str> = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j.as_str())
        .collect();
    assert!(named.contains(&before[0].as_str()), "{r}");
    wait_until("a restarted web job", 60, || {
        let now = up_web(&p, "cli2");
        now.len() == 1 && now[0] != before[0]
    });
    let job = up_web(&p, "cli2")[0].clone();
    let out = ok(&paas_in(&p, h, Some(dir), &["ps:stop", &job]));
    assert!(out.contains(&job), "{out}");
    wait_until("a replacement for the stopped job", 60, || {
        let now = up_web(&p, "cli2");
        now.len() == 1 && now[0] != job
    });
    fails(
        &paas_in(&p, h, Some(dir), &["ps:stop", "cli2-v1-ffff"]),
        4,
        "paas ps",
    );
    fails(
        &paas_in(&p, h, Some(dir), &["ps:stop", "web"]),
        1,
        "paas ps",
    );

    // --if-match: a stale ETag is refused (412 → exit 1) and nothing changes.
    fails(
        &paas_in(
            &p,
            h,
            Some(dir),
            &["config:set", "A=1", "--if-match", "stale"],
        ),
        1,
        "read it again",
    );
    ok(&paas_in(
        &p,
        h,
        Some(dir),
        &["config:set", "A=1", "--if-match", "*"],
    ));
    fails(
        &paas_in(&p, h, Some(dir), &["config:set", "1BAD=x"]),
        1,
        "config key",
    );

    // Unknown app: exit 4 with the server's message.
    fails(
        &paas_in(&p, h, None, &["ps", "-a", "nope"]),
        4,
        "no app named",
    );

    // Rename: the folder's remote follows; the old name is gone.
    let out = ok(&paas_in(&p, h, Some(dir), &["apps:rename", "cli2-new"]));
    assert!(out.contains("Updated the `paas` git remote"), "{out}");
    let info = json(&paas_in(&p, h, Some(dir), &["apps:info", "--json"]));
    assert_eq!(info["name"], "cli2-new", "{info}");
    fails(
        &paas_in(&p, h, None, &["apps:info", "-a", "cli2"]),
        4,
        "no app named",
    );
    p.wait_for_body("cli2-new", "cli2", Duration::from_secs(60))
        .unwrap();
}
