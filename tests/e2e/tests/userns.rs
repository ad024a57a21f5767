//! Journey: every job of a pushed app runs in a user namespace of its own app's range,
//! against a standalone paas with real containers. `paas run` shows a uid map that is not
//! the host's (`0 0 4294967295`), two apps show different ranges, `ps:exec` lands in the
//! web job's namespace, root in the job owns `/app` and writes it, and nothing in a job
//! can change a host device node. On the bookworm stack, a Node.js app with an npm
//! dependency builds and serves in its user namespace, writing into `/app` at start.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use paas_e2e::{bins, bookworm_stacks_dir, require_root, AppDir, Paas};

/// Runs the CLI against `p` (no stdin); its output.
fn paas(p: &Paas, args: &[&str]) -> Output {
    Command::new(&bins().cli)
        .args(args)
        .env("PAAS_URL", &p.api)
        .env("PAAS_TOKEN", &p.token)
        .env("HOME", p.data.path())
        .stdin(Stdio::null())
        .output()
        .expect("run paas")
}

/// The stdout of a CLI call that must succeed.
fn ok(p: &Paas, args: &[&str]) -> String {
    let o = paas(p, args);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(
        o.status.code(),
        Some(0),
        "paas {args:?}\nstdout: {out}\nstderr: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        p.log()
    );
    out
}

/// (container id, host id, count) of the first line of a uid map.
fn uid_map(text: &str) -> (u64, u64, u64) {
    let f: Vec<u64> = text
        .lines()
        .find(|l| l.split_whitespace().count() == 3)
        .unwrap_or_else(|| panic!("no uid map in {text:?}"))
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    (f[0], f[1], f[2])
}

fn push_static(p: &Paas, name: &str, body: &str) {
    let app = AppDir::new();
    app.write("index.html", body);
    app.commit("v1");
    let push = app.push(&p.git_url(name), "main");
    assert!(push.ok, "push of {name} failed:\n{}", push.output);
    p.wait_for_body(name, body.trim(), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", p.log()));
}

#[test]
fn each_apps_jobs_run_in_a_user_namespace_of_their_own() {
    if !require_root() {
        return;
    }
    let p = Paas::start();
    push_static(&p, "una", "app una\n");
    push_static(&p, "unb", "app unb\n");

    let a = uid_map(&ok(
        &p,
        &["run", "-a", "una", "--", "cat", "/proc/self/uid_map"],
    ));
    assert_ne!(
        a,
        (0, 0, 4_294_967_295),
        "the job runs without a user namespace"
    );
    assert_eq!((a.0, a.2), (0, 65_536), "{a:?}");
    assert!(a.1 >= 65_536, "container root is a low host uid: {a:?}");
    let b = uid_map(&ok(
        &p,
        &["run", "-a", "unb", "--", "cat", "/proc/self/uid_map"],
    ));
    assert!(
        a.1.abs_diff(b.1) >= 65_536,
        "two apps share ids: {a:?} {b:?}"
    );
    let again = uid_map(&ok(
        &p,
        &["run", "-a", "una", "--", "cat", "/proc/self/uid_map"],
    ));
    assert_eq!(again, a, "the same app, the same range");

    // The web job (ps:exec joins it) is in the app's range too.
    let web = uid_map(&ok(
        &p,
        &["ps:exec", "-a", "una", "--", "cat", "/proc/self/uid_map"],
    ));
    assert_eq!(web, a);

    // Root in the job owns the app's files and writes /app (a copy-up in the job).
    let out = ok(
        &p,
        &[
            "run",
            "-a",
            "una",
            "--",
            "sh",
            "-c",
            "id -u; stat -c '%u %g' /app /app/index.html; echo more >> /app/index.html && \
             touch /app/new && mkdir -p /app/tmp/x && echo app-writable",
        ],
    );
    assert!(
        out.starts_with("0\n0 0\n0 0\n") && out.contains("app-writable"),
        "{out}"
    );

    // Nothing in a job changes a host device node.
    let host = |n: &str| {
        let m = std::fs::metadata(format!("/dev/{n}")).unwrap();
        (m.uid(), m.gid(), m.mode())
    };
    let before: Vec<_> = ["null", "zero", "tty"].iter().map(|n| host(n)).collect();
    let out = ok(
        &p,
        &[
            "run",
            "-a",
            "una",
            "--",
            "sh",
            "-c",
            "for n in null zero tty; do chown 1:1 /dev/$n && echo chown-worked; \
             chmod 0600 /dev/$n && echo chmod-worked; done; \
             mknod /tmp/sda b 8 0 && echo mknod-worked; echo tried",
        ],
    );
    assert!(out.contains("tried") && !out.contains("worked"), "{out}");
    let after: Vec<_> = ["null", "zero", "tty"].iter().map(|n| host(n)).collect();
    assert_eq!(before, after, "a host device node changed");
}

#[test]
fn a_node_app_builds_and_writes_its_app_dir_in_a_user_namespace() {
    if !require_root() {
        return;
    }
    let p = Paas::start_with_stacks(bookworm_stacks_dir());
    let app = AppDir::new();
    app.write(
        "package.json",
        r#"{"name":"userns-node","version":"1.0.0","private":true,
"scripts":{"start":"node server.js"},"dependencies":{"ms":"2.1.3"}}
"#,
    );
    // At start the app writes into its own /app, then serves what it wrote and its map.
    app.write(
        "server.js",
        "const fs = require('fs');\nconst http = require('http');\nconst ms = require('ms');\n\
         fs.writeFileSync('/app/started.txt', `started ms ${ms('1m')}`);\n\
         const map = fs.readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\\s+/);\n\
         http.createServer((req, res) => res.end(\
         `${fs.readFileSync('/app/started.txt')} uid ${process.getuid()} map ${map.join(':')}\\n`))\n\
         \x20 .listen(process.env.PORT);\n",
    );
    app.commit("v1");
    let push = app.push(&p.git_url("usernode"), "main");
    assert!(push.ok, "push failed:\n{}\n{}", push.output, p.log());
    assert!(
        push.output.contains("Node.js app detected"),
        "{}",
        push.output
    );
    p.wait_for_body("usernode", "started ms 60000", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", push.output, p.log()));
    let (status, body) = p.request_app("usernode", "/").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("uid 0 map 0:"), "{body}");
    assert!(!body.contains("map 0:0:4294967295"), "{body}");
    // The dependency installed by the build (in /app/node_modules) is root's in the job.
    let out = ok(
        &p,
        &[
            "run",
            "-a",
            "usernode",
            "--",
            "sh",
            "-c",
            "stat -c '%u' /app/node_modules/ms/package.json; cat /proc/self/uid_map",
        ],
    );
    assert!(out.starts_with("0\n"), "{out}");
    assert_ne!(uid_map(&out), (0, 0, 4_294_967_295));
}
