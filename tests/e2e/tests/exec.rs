//! Journey: `paas ps:exec` into the web job of a pushed app and `paas run` with stdin,
//! against a standalone paas with real containers: the command runs inside the job (its
//! pid 1 is the web process), output and exit codes come back through controller and
//! agent, piped stdin reaches a one-off job, and no one-off job is left behind.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use paas_e2e::{bins, require_root, AppDir, Paas};

fn paas(p: &Paas, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(&bins().cli)
        .args(args)
        .env("PAAS_URL", &p.api)
        .env("PAAS_TOKEN", &p.token)
        .env("HOME", p.data.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run paas");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn ps_exec_and_run_with_stdin() {
    if !require_root() {
        return;
    }
    let p = Paas::start();
    let app = AppDir::new();
    app.write("index.html", "<h1>exec</h1>\n");
    app.commit("v1");
    let push = app.push(&p.git_url("hello"), "main");
    assert!(push.ok, "push failed:\n{}", push.output);
    p.wait_for_body("hello", "exec", Duration::from_secs(30))
        .unwrap();

    // ps:exec into the first web job: pid 1 there is the web process.
    let o = paas(
        &p,
        &["ps:exec", "-a", "hello", "--", "cat", "/proc/1/cmdline"],
        b"",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let cmdline = String::from_utf8_lossy(&o.stdout).replace('\0', " ");
    assert!(
        cmdline.contains("httpd") || cmdline.contains("sh"),
        "{}",
        text(&o)
    );

    // Exit codes and stderr come back; a named job works too.
    let o = paas(
        &p,
        &[
            "ps:exec",
            "-a",
            "hello",
            "--",
            "sh",
            "-c",
            "echo hi; echo err >&2; exit 4",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("err"),
        "{}",
        text(&o)
    );
    let jobs = p.get_json("/v1/apps/hello/jobs").unwrap();
    let id = jobs[0]["id"].as_str().unwrap().to_string();
    let o = paas(
        &p,
        &[
            "ps:exec",
            "-a",
            "hello",
            "--job",
            &id,
            "--",
            "sh",
            "-c",
            "read x; echo got-$x",
        ],
        b"typed\n",
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "got-typed\n");

    // A command that does not exist: 127 and a message; an unknown job: an API error.
    let o = paas(&p, &["ps:exec", "-a", "hello", "--", "no-such-cmd"], b"");
    assert_eq!(o.status.code(), Some(127), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no-such-cmd"),
        "{}",
        text(&o)
    );
    let o = paas(
        &p,
        &["ps:exec", "-a", "hello", "--job", "nosuch", "--", "true"],
        b"",
    );
    // Exit 4: not found (docs/cli.md).
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no job nosuch"),
        "{}",
        text(&o)
    );

    // paas run with piped stdin: `echo hi | paas run -a hello cat`.
    let o = paas(&p, &["run", "-a", "hello", "cat"], b"hi\n");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n", "{}", text(&o));
    let o = paas(
        &p,
        &["run", "-a", "hello", "--", "sh", "-c", "wc -l; exit 6"],
        b"a\nb\nc\n",
    );
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "3",
        "{}",
        text(&o)
    );
    let left: Vec<_> = p
        .agent_jobs()
        .unwrap()
        .into_iter()
        .filter(|j| j["labels"]["paas.kind"] == "run")
        .collect();
    assert!(left.is_empty(), "one-off jobs removed: {left:?}");
}
