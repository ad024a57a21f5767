//! The built `paas` binary against a real in-process controller (see `support`): each
//! command goes through the routes the server mounts, with a real store. Each test gets its
//! own controller, HOME and working folder.

mod support;

use std::net::TcpListener;

use paas_api::{App, Release};
use support::{git, Real, Run, Sandbox};

#[test]
fn apps_prints_a_table() {
    let real = Real::start();
    real.releases("hello", 2, None);
    real.releases("myapp", 1, None);
    let run = Sandbox::new().as_user(&real, &real.admin, &["apps"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{run:?}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "RELEASE", "STATUS", "URL"], "{run:?}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..2], ["hello", "v2"], "{run:?}");
    assert!(row[3].starts_with("http://hello.localhost"), "{run:?}");
    // Columns line up: the URL starts at the same offset in every line.
    assert_eq!(lines[0].find("URL"), lines[1].find("http://"), "{run:?}");
}

#[test]
fn json_output_parses() {
    let real = Real::start();
    real.releases("hello", 2, None);
    real.releases("myapp", 1, None);
    let sandbox = Sandbox::new();
    let run = sandbox.as_user(&real, &real.admin, &["--json", "apps"]);
    assert_eq!(run.code, 0, "{run:?}");
    let apps: Vec<App> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(apps.len(), 2);
    assert_eq!(apps[0].name, "hello");

    let run = sandbox.as_user(&real, &real.admin, &["apps:info", "-a", "hello", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let app: App = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(app.current_release, Some(2));

    let run = sandbox.as_user(&real, &real.admin, &["releases", "-a", "hello", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let releases: Vec<Release> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(releases.len(), 2);
}

#[test]
fn create_with_a_bad_name_fails_before_calling_the_controller() {
    let real = Real::start();
    let run = Sandbox::new().as_user(&real, &real.admin, &["apps:create", "My_App"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.starts_with("error: invalid app name \"My_App\""),
        "{run:?}"
    );
    assert!(run.stderr.contains("lowercase letters"), "{run:?}");
    assert!(real.block_on(real.c.store.list_apps()).unwrap().is_empty());
}

#[test]
fn create_then_list() {
    let real = Real::start();
    let sandbox = Sandbox::new();
    let run = sandbox.as_user(&real, &real.admin, &["apps:create", "new-app"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Created app new-app"), "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("git remote add paas {}/git/new-app.git", real.url)),
        "{run:?}"
    );
    let run = sandbox.as_user(&real, &real.admin, &["apps"]);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("new-app ") && l.contains(" - ")),
        "{run:?}"
    );
    // A second create of the same name: the controller's conflict, exit 1.
    let run = sandbox.as_user(&real, &real.admin, &["apps:create", "new-app"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("new-app"), "{run:?}");
}

/// A 404 exits with 4 (not found) and prints the server's message.
#[test]
fn unknown_app_shows_the_server_message() {
    let real = Real::start();
    let run = Sandbox::new().as_user(&real, &real.admin, &["apps:info", "-a", "nope"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.starts_with("error: "), "{run:?}");
    assert!(run.stderr.contains("no app named nope"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[test]
fn missing_or_wrong_token_exits_3() {
    let real = Real::start();
    let sandbox = Sandbox::new();
    let run = sandbox.paas(&["apps", "--url", &real.url]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("paas login"), "{run:?}");
    assert!(run.stderr.contains("PAAS_TOKEN"), "{run:?}");

    let run = sandbox.paas(&["apps", "--url", &real.url, "--token", "wrong"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("refused the token"), "{run:?}");
}

#[test]
fn unreachable_controller_exits_2_and_names_the_url() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = Sandbox::new()
        .command(&["apps"])
        .env("PAAS_URL", &url)
        .env("PAAS_TOKEN", "paas_x")
        .output()
        .map(Run::from)
        .unwrap();
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains(&url), "{run:?}");
    assert!(run.stderr.contains("PAAS_URL"), "{run:?}");
    assert!(run.stderr.contains("--url"), "{run:?}");
}

#[test]
fn app_comes_from_the_paas_git_remote() {
    let real = Real::start();
    real.releases("hello", 1, None);
    real.releases("myapp", 2, None);
    let sandbox = Sandbox::new();
    git(sandbox.work.path(), &["init", "-q"]);
    git(
        sandbox.work.path(),
        &["remote", "add", "paas", "http://x/git/myapp.git"],
    );
    let run = sandbox
        .command(&["releases"])
        .env("PAAS_URL", &real.url)
        .env("PAAS_TOKEN", &real.admin)
        .output()
        .map(Run::from)
        .unwrap();
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["VERSION", "STATUS", "DESCRIPTION", "CREATED"]
    );
    assert!(
        lines[1].starts_with("v2 ") && lines[1].contains("Deploy number 2"),
        "{run:?}"
    );
    assert!(lines[2].starts_with("v1 "), "newest first: {run:?}");

    // -a wins over the remote.
    let run = sandbox.as_user(&real, &real.admin, &["apps:info", "-a", "hello"]);
    assert!(run.stdout.starts_with("=== hello\n"), "{run:?}");
}

#[test]
fn no_app_and_no_remote_is_a_usage_error() {
    let real = Real::start();
    let run = Sandbox::new().as_user(&real, &real.admin, &["releases"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr.trim_end(),
        "error: no app given: use -a APP or run inside a folder whose `paas` git remote points \
         at the app",
        "{run:?}"
    );
}

#[test]
fn login_checks_the_token_and_saves_a_private_config() {
    use std::os::unix::fs::PermissionsExt;

    let real = Real::start();
    real.releases("hello", 1, None);
    let sandbox = Sandbox::new();
    let config = sandbox.home.path().join(".config/paas/config.json");

    let run = sandbox.paas(&["login", "--url", &real.url, "--token", "wrong"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(!config.exists(), "a refused token is not saved");

    let run = sandbox.paas(&["login", "--url", &real.url, "--token", &real.admin]);
    assert_eq!(run.code, 0, "{run:?}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(
        saved,
        serde_json::json!({"url": real.url, "token": real.admin})
    );
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // Later commands need neither flags nor environment.
    let run = sandbox.paas(&["apps"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("hello"), "{run:?}");
}

#[test]
fn usage_errors_exit_1_not_clap_s_2() {
    let run = Sandbox::new().paas(&["apps:info", "--no-such-flag"]);
    assert_eq!(run.code, 1, "{run:?}");
    let run = Sandbox::new().paas(&["--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("apps:create"), "{run:?}");
    assert!(run.stdout.contains("buildpacks:add"), "{run:?}");
    assert!(run.stdout.contains("git:clone"), "{run:?}");
}

#[test]
fn ps_exec_takes_the_job_as_an_argument_or_with_job() {
    let real = Real::start();
    real.releases("hello", 1, None);
    // The global flags go first: everything after -- is the command.
    let exec = |args: &[&str]| {
        let mut all: Vec<&str> = vec![
            "--url",
            &real.url,
            "--token",
            &real.admin,
            "ps:exec",
            "-a",
            "hello",
        ];
        all.extend_from_slice(args);
        Sandbox::new().paas(&all)
    };

    // The job is asked for by name: the controller has none of that name.
    let run = exec(&["web-1a2b", "--", "ls", "-l"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("web-1a2b"), "{run:?}");
    let run = exec(&["--job", "web-3c4d", "--", "true"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("web-3c4d"), "{run:?}");

    // No job: the app's first web job, of which there is none; a dashed command after --
    // is not taken for a job.
    let run = exec(&["--", "-x"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("hello has no running job") && run.stderr.contains("ps:scale"),
        "{run:?}"
    );

    // Usage errors, before any request: both forms at once, or no command.
    let run = exec(&["web-1", "--job", "web-2", "--", "true"]);
    assert_eq!(run.code, 1, "{run:?}");
    let run = exec(&["web-1"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("after --"), "{run:?}");
}

#[test]
fn nodes_remove_deletes_the_node_or_shows_why_not() {
    let real = Real::start();
    real.releases("hello", 1, None);
    real.node("old", "hello", 0);
    real.node("busy", "hello", 1);
    let sandbox = Sandbox::new();
    let run = sandbox.as_user(&real, &real.admin, &["nodes:remove", "old"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Removed old"), "{run:?}");
    let run = sandbox.as_user(&real, &real.admin, &["nodes:remove", "busy"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("paas nodes:drain busy"), "{run:?}");
    let run = sandbox.as_user(&real, &real.admin, &["nodes:remove", "ghost"]);
    assert_eq!(run.code, 4, "{run:?}");
    let names: Vec<String> = real
        .block_on(real.c.store.list_nodes())
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["busy"]);
}

#[test]
fn config_set_refuses_values_over_32_kb_and_shows_the_controllers_limit() {
    let real = Real::start();
    real.releases("hello", 1, None);
    let sandbox = Sandbox::new();
    let big = format!("BIG={}", "x".repeat(40_000));
    let run = sandbox.as_user(&real, &real.admin, &["config:set", &big, "-a", "hello"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("BIG is 40000 bytes, over the limit of 32 KB (32768 bytes)"),
        "{run:?}"
    );
    assert!(real
        .block_on(real.c.store.config_vars("hello"))
        .unwrap()
        .is_empty());
    // Two 30 KB values fit; a third passes the app's 64 KB in all: the controller says so.
    for key in ["A", "B"] {
        let pair = format!("{key}={}", "y".repeat(30_000));
        let run = sandbox.as_user(&real, &real.admin, &["config:set", &pair, "-a", "hello"]);
        assert_eq!(run.code, 0, "{run:?}");
    }
    let pair = format!("C={}", "z".repeat(30_000));
    let run = sandbox.as_user(&real, &real.admin, &["config:set", &pair, "-a", "hello"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("64 KB"), "{run:?}");
}

#[test]
fn releases_show_which_failed_and_why() {
    let real = Real::start();
    let reason = "its web process crashed 3 times in a row (last: exited 127)";
    real.releases("broken", 2, Some((2, reason)));
    let sandbox = Sandbox::new();
    let run = sandbox.as_user(&real, &real.admin, &["releases", "-a", "broken"]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let v2: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&v2[..2], ["v2", "failed"], "{run:?}");
    let v1: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(&v1[..2], ["v1", "succeeded"], "{run:?}");
    assert!(
        run.stdout.contains(&format!("v2 failed: {reason}")),
        "{run:?}"
    );
    let run = sandbox.as_user(&real, &real.admin, &["releases:info", "v2", "-a", "broken"]);
    assert!(
        run.stdout.contains("failed") && run.stdout.contains("crashed 3 times"),
        "{run:?}"
    );
}
