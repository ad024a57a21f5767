//! `exec` into a running container (needs root).

mod common;

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;

use common::{need_root, wait_for, Fixture};
use paas_runtime::{Error, ExecSpec};

fn exec_output(f: &Fixture, id: &str, script: &str) -> (i32, String) {
    let out = f
        .dir
        .path()
        .join(format!("exec-{}.out", common::unique("x")));
    let file = fs::File::create(&out).unwrap();
    let spec = ExecSpec {
        args: vec!["sh".into(), "-c".into(), script.into()],
        stdout: Some(OwnedFd::from(file.try_clone().unwrap())),
        stderr: Some(OwnedFd::from(file)),
        ..Default::default()
    };
    let p = f.rt.exec(id, spec).unwrap();
    let code = p.wait().unwrap();
    (code, fs::read_to_string(out).unwrap())
}

#[test]
fn exec_joins_the_containers_namespaces_filesystem_and_privileges() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let mut spec = f.spec(&[
        "sh",
        "-c",
        "echo inside > /tmp/mark; echo up; exec sleep 1000",
    ]);
    spec.env.push("FROM_SPEC=yes".into());
    f.rt.run(&spec).unwrap();
    wait_for(|| f.output().contains("up"));
    let (code, out) = exec_output(
        &f,
        &spec.id,
        "cat /tmp/mark; cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; \
         echo env=$FROM_SPEC; grep -E '^(CapEff|Seccomp):' /proc/self/status; \
         sed 's/^/cg /' /proc/self/cgroup; exit 7",
    );
    assert_eq!(code, 7, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "inside", "same filesystem: {out}");
    assert_eq!(lines[1].trim(), "sleep 1000", "same pid namespace: {out}");
    assert_eq!(lines[2], spec.hostname, "same uts namespace: {out}");
    assert_eq!(lines[3], "env=yes", "the container's env: {out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(!out.contains("CapEff:\t000001ff"), "{out}");
    // The exec'd process is in the container's cgroup in every hierarchy, seen as its
    // root (outside it, a hierarchy's line would show a path up to the container's).
    let cgroups: Vec<&&str> = lines.iter().filter(|l| l.starts_with("cg ")).collect();
    assert!(!cgroups.is_empty(), "{out}");
    assert!(cgroups.iter().all(|l| l.ends_with(":/")), "{out}");

    // A command that is not there is a Start error, not a hang.
    let bad = ExecSpec {
        args: vec!["nosuch".into()],
        ..Default::default()
    };
    match f.rt.exec(&spec.id, bad) {
        Err(Error::Start(m)) => assert!(m.contains("nosuch"), "{m}"),
        other => panic!("{other:?}"),
    }
    f.rt.delete(&spec.id, true).unwrap();
    let again = ExecSpec {
        args: vec!["true".into()],
        ..Default::default()
    };
    assert!(f.rt.exec(&spec.id, again).is_err(), "gone");
}

#[test]
fn exec_with_a_tty() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let spec = f.spec(&["sleep", "1000"]);
    f.rt.run(&spec).unwrap();
    let p =
        f.rt.exec(
            &spec.id,
            ExecSpec {
                args: vec![
                    "sh".into(),
                    "-c".into(),
                    "test -t 0 && test -t 1 && echo is-a-tty".into(),
                ],
                tty: true,
                ..Default::default()
            },
        )
        .unwrap();
    let mut master = fs::File::from(p.pty.as_ref().unwrap().try_clone().unwrap());
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    // Read until EIO (the process closed the slave).
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(p.wait().unwrap(), 0);
    assert!(String::from_utf8_lossy(&out).contains("is-a-tty"));
}
