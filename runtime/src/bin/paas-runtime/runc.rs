//! The runc commands beyond create/start/state/delete: `exec` (with runc's `--process`
//! JSON, `--detach`, `--console-socket`), `kill --all`, `ps`, `events`, `update`,
//! `list`, `features` and `--version`, printing what runc prints where an engine parses
//! it (go-runc's `ps --format json` array, `events --stats` object, `list --format json`).

use std::io::Read;
use std::path::Path;

use paas_runtime::{CapabilitySets, ExecSpec, Rlimit, Runtime};

use crate::args::{parse_interval, parse_size, ExecArgs, ListFormat, UpdateArgs, SPEC_VERSION};
use crate::{console, parse_signal, parse_user, write_pid_file, Failure};

/// `--version`, in runc's shape (go-runc reads `… version X`, `commit:`, `spec:`).
pub fn version() -> String {
    format!(
        "paas-runtime version {}\ncommit: {}\nspec: {SPEC_VERSION}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("PAAS_GIT_COMMIT").unwrap_or("none"),
    )
}

/// An oci-spec enum value as its JSON name (`CAP_KILL`, `RLIMIT_NOFILE`).
fn json_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The process an `exec` runs: runc's `--process` file, then the flags on top.
pub fn exec_spec(a: &ExecArgs) -> Result<ExecSpec, Failure> {
    let bad = |m: String| Failure::new(m, 2);
    if a.preserve_fds > 0 {
        return Err(bad(
            "exec --preserve-fds is not supported: pass descriptors to the container at create"
                .into(),
        ));
    }
    if a.cgroup.is_some() {
        return Err(bad(
            "exec --cgroup is not supported: the process joins the container's own cgroup".into(),
        ));
    }
    for (flag, v) in [
        ("--process-label", &a.process_label),
        ("--apparmor", &a.apparmor),
    ] {
        if v.as_deref().is_some_and(|v| !v.is_empty()) {
            return Err(bad(format!(
                "exec {flag}: paas-runtime applies no SELinux or AppArmor labels"
            )));
        }
    }
    let mut spec = ExecSpec::default();
    if let Some(path) = &a.process {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::new(format!("reading --process {}: {e}", path.display()), 1))?;
        let p: oci_spec::runtime::Process = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "--process {}: not an OCI process object: {e}",
                path.display()
            ))
        })?;
        spec.args = p.args().clone().unwrap_or_default();
        spec.env = p.env().clone().unwrap_or_default();
        let cwd = p.cwd().to_string_lossy().into_owned();
        if !cwd.is_empty() {
            spec.cwd = Some(cwd);
        }
        let user = p.user();
        spec.user = Some((user.uid(), user.gid()));
        spec.additional_gids = user.additional_gids().clone();
        spec.tty = p.terminal() == Some(true);
        if let Some(size) = p.console_size() {
            spec.winsize = Some((size.height() as u16, size.width() as u16));
        }
        spec.no_new_privileges = p.no_new_privileges();
        spec.capability_sets = p.capabilities().as_ref().map(|caps| {
            let names = |set: &Option<oci_spec::runtime::Capabilities>| -> Vec<String> {
                set.as_ref()
                    .map(|s| s.iter().map(json_name).collect())
                    .unwrap_or_default()
            };
            CapabilitySets {
                bounding: names(caps.bounding()),
                effective: names(caps.effective()),
                permitted: names(caps.permitted()),
                inheritable: names(caps.inheritable()),
                ambient: names(caps.ambient()),
            }
        });
        spec.rlimits = p.rlimits().as_ref().map(|list| {
            list.iter()
                .map(|r| Rlimit {
                    kind: json_name(&r.typ()),
                    soft: r.soft(),
                    hard: r.hard(),
                })
                .collect()
        });
    }
    if !a.command.is_empty() {
        spec.args = a.command.clone();
    }
    if spec.args.is_empty() {
        return Err(bad(
            "exec: no command: give one after the container id, or --process FILE".into(),
        ));
    }
    spec.extra_env.extend(a.env.iter().cloned());
    if let Some(cwd) = &a.cwd {
        spec.cwd = Some(cwd.clone());
    }
    if let Some(user) = &a.user {
        spec.user = Some(parse_user(user)?);
    }
    if !a.additional_gids.is_empty() {
        spec.additional_gids = Some(a.additional_gids.clone());
    }
    if a.tty {
        spec.tty = true;
    }
    if a.no_new_privs {
        spec.no_new_privileges = Some(true);
    }
    spec.extra_caps = a
        .cap
        .iter()
        .map(|c| {
            let c = c.to_ascii_uppercase();
            if c.starts_with("CAP_") {
                c
            } else {
                format!("CAP_{c}")
            }
        })
        .collect();
    spec.detach = a.detach;
    Ok(spec)
}

pub fn exec(rt: &Runtime, a: &ExecArgs) -> Result<u8, Failure> {
    let spec = exec_spec(a)?;
    if spec.tty && a.detach && a.console_socket.is_none() {
        return Err(Failure::new(
            "exec --tty --detach needs --console-socket (where the pty goes)".into(),
            2,
        ));
    }
    let process = rt
        .exec(&a.id, spec)
        .map_err(|e| Failure::from_error(e, 126))?;
    write_pid_file(a.pid_file.as_deref(), process.process_pid)?;
    if let (Some(master), Some(socket)) = (&process.pty, &a.console_socket) {
        console::send_console(socket, master)?;
    }
    if a.detach {
        // The helper exits at once (exit 0) once the process runs: reap it.
        let _ = process.wait();
        return Ok(0);
    }
    if let (Some(master), None) = (&process.pty, &a.console_socket) {
        console::relay_raw(master)?;
    }
    let code = process.wait()?;
    Ok(code as u8)
}

/// `kill --all`: the signal to every process of the container, its init last (a
/// paused container is thawed for it by `Runtime::kill`).
pub fn kill_all(rt: &Runtime, id: &str, sig: i32) -> Result<(), Failure> {
    let init = rt.state(id)?.pid;
    for pid in rt.pids(id)? {
        if pid != init {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::try_from(sig).ok(),
            );
        }
    }
    crate::kill_init(rt, id, sig)
}

pub fn ps(rt: &Runtime, format: ListFormat, id: &str, ps_args: &[String]) -> Result<(), Failure> {
    let pids = rt.pids(id)?;
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&pids).unwrap_or_default());
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Failure::new(format!("running ps: {e}"), 1))?;
    if !out.status.success() {
        return Err(Failure::new(
            format!(
                "ps {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            1,
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let column = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| Failure::new("ps printed no PID column (add -o pid)".into(), 1))?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(())
}

/// runc's `stats` event (a subset of its `types.Stats`: cpu, memory, pids).
pub fn stats_event(rt: &Runtime, id: &str) -> Result<serde_json::Value, Failure> {
    let s = rt.stats(id)?;
    let mut memory_usage = serde_json::json!({"usage": s.memory_bytes});
    if let Some(peak) = s.memory_peak_bytes {
        memory_usage["max"] = peak.into();
    }
    let pids = serde_json::json!({"current": s.pids});
    Ok(serde_json::json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": {"usage": {"total": s.cpu_usage_ns}},
            "memory": {"usage": memory_usage},
            "pids": pids,
        }
    }))
}

pub fn events(rt: &Runtime, interval: &str, once: bool, id: &str) -> Result<(), Failure> {
    let every = parse_interval(interval).map_err(|e| Failure::new(e, 2))?;
    loop {
        let state = rt.state(id)?;
        if state.status == paas_runtime::Status::Stopped {
            return if once {
                Err(Failure::new(format!("container {id:?} is not running"), 1))
            } else {
                Ok(())
            };
        }
        println!("{}", stats_event(rt, id)?);
        if once {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(every));
    }
}

/// The `linux.resources` of an `update`: the `-r` JSON (file or stdin) with the flags
/// on top.
pub fn update_resources(u: &UpdateArgs) -> Result<oci_spec::runtime::LinuxResources, Failure> {
    let bad = |m: String| Failure::new(m, 2);
    let mut r: serde_json::Value = match &u.resources {
        None => serde_json::json!({}),
        Some(p) => {
            let mut text = String::new();
            let read = if p == Path::new("-") {
                std::io::stdin().read_to_string(&mut text).map(|_| ())
            } else {
                std::fs::read_to_string(p).map(|t| text = t)
            };
            read.map_err(|e| Failure::new(format!("reading -r {}: {e}", p.display()), 1))?;
            serde_json::from_str(&text).map_err(|e| {
                bad(format!(
                    "-r {}: not OCI linux.resources JSON: {e}",
                    p.display()
                ))
            })?
        }
    };
    if !r.is_object() {
        return Err(bad(
            "-r: expected a JSON object (OCI linux.resources)".into()
        ));
    }
    let size = |flag: &str, v: &Option<String>| -> Result<Option<i64>, Failure> {
        v.as_deref()
            .map(|s| parse_size(s).map_err(|e| bad(format!("--{flag}: {e}"))))
            .transpose()
    };
    let mut set = |section: &str, key: &str, v: serde_json::Value| {
        if !r[section].is_object() {
            r[section] = serde_json::json!({});
        }
        r[section][key] = v;
    };
    if let Some(v) = size("memory", &u.memory)? {
        set("memory", "limit", v.into());
    }
    if let Some(v) = size("memory-reservation", &u.memory_reservation)? {
        set("memory", "reservation", v.into());
    }
    if let Some(v) = size("memory-swap", &u.memory_swap)? {
        set("memory", "swap", v.into());
    }
    if let Some(v) = u.cpu_share {
        set("cpu", "shares", v.into());
    }
    if let Some(v) = u.cpu_quota {
        set("cpu", "quota", v.into());
    }
    if let Some(v) = u.cpu_period {
        set("cpu", "period", v.into());
    }
    if let Some(v) = u.cpu_rt_period {
        set("cpu", "realtimePeriod", v.into());
    }
    if let Some(v) = u.cpu_rt_runtime {
        set("cpu", "realtimeRuntime", v.into());
    }
    if let Some(v) = &u.cpuset_cpus {
        set("cpu", "cpus", v.clone().into());
    }
    if let Some(v) = &u.cpuset_mems {
        set("cpu", "mems", v.clone().into());
    }
    if let Some(v) = u.pids_limit {
        set("pids", "limit", v.into());
    }
    if let Some(v) = u.blkio_weight {
        set("blockIO", "weight", v.into());
    }
    serde_json::from_value(r).map_err(|e| bad(format!("update: {e}")))
}

pub fn list(rt: &Runtime, format: ListFormat, quiet: bool) -> Result<(), Failure> {
    let states = rt.list()?;
    if quiet {
        for s in &states {
            println!("{}", s.id);
        }
        return Ok(());
    }
    if format == ListFormat::Json {
        let all: Vec<serde_json::Value> = states
            .iter()
            .map(|s| match rt.options(&s.id) {
                Ok(o) => paas_runtime::oci::state_json_for(s, &o),
                Err(_) => paas_runtime::oci::state_json(s, None),
            })
            .collect();
        println!("{}", serde_json::Value::Array(all));
        return Ok(());
    }
    println!(
        "{:<24} {:>8} {:<9} {:<40} {:<22} OWNER",
        "ID", "PID", "STATUS", "BUNDLE", "CREATED"
    );
    for s in states {
        let bundle = rt
            .options(&s.id)
            .ok()
            .and_then(|o| o.oci_bundle)
            .map(|b| b.display().to_string())
            .unwrap_or_default();
        let pid = if s.status == paas_runtime::Status::Stopped {
            0
        } else {
            s.pid
        };
        println!(
            "{:<24} {:>8} {:<9} {:<40} {:<22} root",
            s.id, pid, s.status, bundle, s.created
        );
    }
    Ok(())
}

/// runc's `features` JSON: what an engine may ask for.
pub fn features() -> serde_json::Value {
    let caps: Vec<String> = paas_runtime::security::CAPABILITIES
        .iter()
        .map(|c| c.to_string())
        .collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "exec",
            "noatime", "nodev", "nodiratime", "noexec", "nosuid", "private", "rbind", "relatime",
            "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared",
            "slave", "strictatime", "suid", "sync", "unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false,
                       "rdma": false},
            "seccomp": {"enabled": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}},
        },
        "annotations": {
            "org.opencontainers.runtime-spec.features.seccomp.note":
                "linux.seccomp present = paas's default deny-list filter; custom rules are not loaded",
        },
    })
}

/// A pid to the `--pid-file` argument's path, as runc: written whole, then renamed.
pub fn atomic_write(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = match dir {
        Some(d) => d.join(format!(".{name}.tmp")),
        None => Path::new(&format!(".{name}.tmp")).to_owned(),
    };
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Accepts `parse_signal`'s forms for a `kill` argument (the default is TERM).
pub fn signal_of(s: Option<&str>) -> Result<i32, Failure> {
    s.map(parse_signal)
        .transpose()
        .map(|s| s.unwrap_or(libc::SIGTERM))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn exec_args(args: &[&str]) -> ExecArgs {
        let cli = crate::args::Cli::try_parse_from(
            ["paas-runtime", "exec"]
                .into_iter()
                .chain(args.iter().copied()),
        )
        .unwrap();
        match cli.command {
            Some(crate::args::Command::Exec(e)) => e,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_process_file_becomes_the_exec_spec_and_flags_add_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("process.json");
        std::fs::write(
            &path,
            serde_json::json!({
                "terminal": false,
                "user": {"uid": 1000, "gid": 100, "additionalGids": [5]},
                "args": ["sh", "-c", "id"],
                "env": ["PATH=/bin", "A=1"],
                "cwd": "/tmp",
                "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                                 "permitted": ["CAP_KILL"]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}],
                "noNewPrivileges": true
            })
            .to_string(),
        )
        .unwrap();
        let p = path.display().to_string();
        let spec = exec_spec(&exec_args(&[
            "--process",
            &p,
            "--detach",
            "-e",
            "B=2",
            "--cap",
            "net_admin",
            "c1",
        ]))
        .unwrap();
        assert_eq!(spec.args, vec!["sh", "-c", "id"]);
        assert_eq!(spec.env, vec!["PATH=/bin", "A=1"]);
        assert_eq!(spec.extra_env, vec!["B=2"]);
        assert_eq!(spec.cwd.as_deref(), Some("/tmp"));
        assert_eq!(spec.user, Some((1000, 100)));
        assert_eq!(spec.additional_gids, Some(vec![5]));
        assert_eq!(spec.no_new_privileges, Some(true));
        assert!(spec.detach);
        assert_eq!(spec.extra_caps, vec!["CAP_NET_ADMIN"]);
        let sets = spec.capability_sets.unwrap();
        assert_eq!(sets.bounding, vec!["CAP_KILL"]);
        let rl = spec.rlimits.unwrap();
        assert_eq!(
            (rl[0].kind.as_str(), rl[0].soft, rl[0].hard),
            ("RLIMIT_NOFILE", 512, 1024)
        );
    }

    #[test]
    fn exec_without_a_command_or_with_unsupported_flags_is_refused() {
        let e = exec_spec(&exec_args(&["c1"])).err().unwrap();
        assert!(e.message().contains("no command"), "{}", e.message());
        let e = exec_spec(&exec_args(&["--preserve-fds", "1", "c1", "true"]))
            .err()
            .unwrap();
        assert!(e.message().contains("--preserve-fds"), "{}", e.message());
        let e = exec_spec(&exec_args(&["--apparmor", "x", "c1", "true"]))
            .err()
            .unwrap();
        assert!(e.message().contains("AppArmor"), "{}", e.message());
    }

    #[test]
    fn update_merges_the_resources_file_and_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(
            &path,
            r#"{"memory":{"limit":1000000},"cpu":{"shares":512}}"#,
        )
        .unwrap();
        let cli = crate::args::Cli::try_parse_from([
            "paas-runtime",
            "update",
            "-r",
            path.to_str().unwrap(),
            "--pids-limit",
            "30",
            "--memory",
            "32m",
            "c1",
        ])
        .unwrap();
        let Some(crate::args::Command::Update(u)) = cli.command else {
            unreachable!()
        };
        let r = update_resources(&u).unwrap();
        assert_eq!(r.memory().as_ref().unwrap().limit(), Some(32 << 20));
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(512));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 30);
    }

    #[test]
    fn features_and_version_have_runcs_shape() {
        let f = features();
        assert_eq!(f["linux"]["cgroup"]["systemd"], false);
        assert!(f["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&"pid".into()));
        assert!(f["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .contains(&"CAP_SYS_ADMIN".into()));
        let v = version();
        let lines: Vec<&str> = v.lines().collect();
        assert!(lines[0].starts_with("paas-runtime version "), "{v}");
        assert!(lines[1].starts_with("commit: "));
        assert_eq!(lines[2], format!("spec: {SPEC_VERSION}"));
    }
}
