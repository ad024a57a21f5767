//! `paas login --user --password-stdin`, `whoami`, `tokens:create`, `access:add`,
//! `users:add` and `apps:access-api` against a real in-process controller (see
//! `support`): the password goes in on stdin, the token that comes back is saved and used,
//! and each command changes what the controller holds.

mod support;

use std::io::Write as _;
use std::process::{Command, Stdio};

use support::Real;

fn paas(home: &std::path::Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_paas"))
        .args(args)
        .current_dir(home)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("PAAS_URL")
        .env_remove("PAAS_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn password_login_saves_a_token_that_later_commands_use() {
    let real = Real::start();
    let url = real.url.clone();
    real.member("ann");
    let home = tempfile::tempdir().unwrap();
    let h = home.path();

    let (code, out, err) = paas(
        h,
        &["login", "--url", &url, "--user", "ann", "--password-stdin"],
        "nope\n",
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("wrong user name or password"), "{err}");

    let (code, out, err) = paas(
        h,
        &["login", "--url", &url, "--user", "ann", "--password-stdin"],
        "ann-password\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("as ann"), "{out}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(h.join(".config/paas/config.json")).unwrap())
            .unwrap();
    let token = saved["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("paas_"), "{saved}");

    let (code, out, err) = paas(h, &["whoami"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ann (member, via api-token)"), "{out}");

    let (code, out, err) = paas(
        h,
        &["tokens:create", "--name", "ci", "--expires", "30d"],
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    let first = out.lines().next().unwrap_or("");
    assert!(
        first.starts_with("paas_") && !first.contains(' '),
        "the token comes first, alone on its line: {out}"
    );
    let tokens = real
        .block_on(real.c.store.list_tokens(Some("ann")))
        .unwrap();
    assert!(tokens.iter().any(|t| t.name == "ci"), "{tokens:?}");
    let (code, _, err) = paas(h, &["tokens:create", "--expires", "3w"], "");
    assert_eq!(code, 1, "{err}");

    // ann makes an app and adds bob; a member may not add users.
    let (code, out, err) = paas(h, &["apps:create", "myapp"], "");
    assert_eq!(code, 0, "{out}{err}");
    real.block_on(real.c.store.create_user("bob", "member", None))
        .unwrap();
    let (code, out, err) = paas(h, &["access:add", "-a", "myapp", "bob"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(real
        .block_on(real.c.store.is_collaborator("myapp", "bob"))
        .unwrap());
    let (code, _, err) = paas(
        h,
        &["users:add", "carl", "--role", "admin", "--password-stdin"],
        "carl-password\n",
    );
    assert_ne!(code, 0, "{err}");

    // The admin adds an admin with a password, who can then log in.
    let admin_home = tempfile::tempdir().unwrap();
    let a = admin_home.path();
    let (code, out, err) = paas(a, &["login", "--url", &url, "--token", &real.admin], "");
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = paas(
        a,
        &["users:add", "carl", "--role", "admin", "--password-stdin"],
        "carl-password\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    let carl = real
        .block_on(real.c.store.verify_password("carl", "carl-password"))
        .unwrap()
        .unwrap();
    assert_eq!(carl.role, "admin");
}

#[test]
fn ac4_apps_access_api_shows_and_sets_the_switch() {
    let real = Real::start();
    let url = real.url.clone();
    real.member("ann");
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (code, out, err) = paas(
        h,
        &["login", "--url", &url, "--user", "ann", "--password-stdin"],
        "ann-password\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = paas(h, &["apps:create", "web"], "");
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = paas(h, &["apps:access-api", "-a", "web"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "web: API access off\n");
    // Only an admin turns it on (the fake server this suite once ran against let a member).
    let (code, _, err) = paas(h, &["apps:access-api", "-a", "web", "on"], "");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("only admins"), "{err}");
    let admin_home = tempfile::tempdir().unwrap();
    let h = admin_home.path();
    let (code, out, err) = paas(h, &["login", "--url", &url, "--token", &real.admin], "");
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = paas(h, &["apps:access-api", "-a", "web", "on"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("may now reach"), "{out}");
    let (code, out, err) = paas(h, &["apps:access-api", "-a", "web"], "");
    assert_eq!((code, out.as_str()), (0, "web: API access on\n"), "{err}");
    let (code, out, err) = paas(h, &["apps:access-api", "-a", "web", "off"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("can no longer reach"), "{out}");
    let (code, _, err) = paas(h, &["apps:access-api", "-a", "web", "maybe"], "");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("possible values: on, off"), "{err}");
}
