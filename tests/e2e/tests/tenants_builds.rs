//! Hostile tenants, part 5: builds that would eat the node (issue 14, "Unbounded
//! builds"). mallory pushes a small repository that unpacks far past the source cap (20 MiB
//! of zeros in 10 files, a few KB pushed), a build that never ends, a build that fills its
//! cache, and a push she abandons mid-build. Each is stopped with a `remote:` line naming
//! the limit and the flag, the build is `failed`, nothing stays in the controller's
//! `builds/` or on the agent, her app is not left "building" (the next push works) and
//! its running release keeps serving. The build's CPU quota is read from the build job's
//! own cgroup on the host while it runs.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use paas_e2e::tenants::{eventually, World, MAL_PAGE};
use paas_e2e::AppDir;

/// `git push` of `src` to `app` as mallory, killed after `secs`: (finished, output).
fn bounded_push(w: &World, src: &AppDir, app: &str, secs: u64) -> (bool, String) {
    let url = w.paas.git_url_with(app, Some(&w.mallory.token));
    let mut child = src
        .git_command(&["push", &url, "main"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let finished = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut output = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut output);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut output);
    }
    match finished {
        Some(status) if status.success() => (true, output),
        Some(_) => (false, output),
        None => {
            output.push_str(&format!("\n(still running after {secs} s: killed)"));
            (false, output)
        }
    }
}

/// Entries in the controller's `builds/` dir.
fn builds_left(data: &Path) -> Vec<String> {
    std::fs::read_dir(data.join("builds"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The agent's build jobs (ids `build-…`).
fn build_jobs(w: &World) -> Vec<String> {
    w.paas
        .agent_jobs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|j| j["id"].as_str().map(str::to_string))
        .filter(|id| id.starts_with("build-"))
        .collect()
}

/// The status of mal's newest build.
fn last_build_status(w: &World) -> String {
    let builds = w.as_mallory("GET", "/v1/apps/mal/builds", None).json();
    builds[0]["status"].as_str().unwrap_or_default().to_string()
}

/// After a refused build: failed, nothing left, not building, v1 still serving.
fn nothing_left_behind(w: &World, src: &AppDir) -> Vec<String> {
    let mut wrong = Vec::new();
    let status = last_build_status(w);
    if status != "failed" {
        wrong.push(format!("the build is {status:?}, not failed"));
    }
    if !eventually(30, || {
        builds_left(w.paas.data.path()).is_empty() && build_jobs(w).is_empty()
    }) {
        wrong.push(format!(
            "left behind: builds/ {:?}, agent build jobs {:?}",
            builds_left(w.paas.data.path()),
            build_jobs(w)
        ));
    }
    if let Err(e) = w
        .paas
        .wait_for_body("mal", MAL_PAGE, Duration::from_secs(10))
    {
        wrong.push(format!("mal's running release: {e}"));
    }
    // Not left "building": a good push goes through.
    src.git(&["rm", "-r", "-q", "--cached", "."]).unwrap();
    for entry in std::fs::read_dir(src.dir.path()).unwrap().flatten() {
        if entry.file_name() != ".git" {
            let p = entry.path();
            if p.is_dir() {
                std::fs::remove_dir_all(p).unwrap();
            } else {
                std::fs::remove_file(p).unwrap();
            }
        }
    }
    src.write("index.html", &format!("<h1>{MAL_PAGE} v3</h1>\n"));
    src.commit("mal: a good push");
    let (ok, output) = bounded_push(w, src, "mal", 120);
    if !ok {
        wrong.push(format!("the next good push: {output}"));
    }
    wrong
}

#[test]
fn a_push_that_unpacks_past_the_source_cap_is_refused() {
    let Some(w) = World::start_with_args(&["--max-source-bytes", "8388608"]) else {
        return;
    };
    let src = w.mallory_app(&[]);
    let zeros = "\0".repeat(2 << 20);
    for i in 0..10 {
        src.write(&format!("zeros/{i}.bin"), &format!("{i}{zeros}"));
    }
    src.commit("20 MiB of zeros");
    let (ok, output) = bounded_push(&w, &src, "mal", 120);
    let mut wrong = Vec::new();
    if ok || !output.contains("--max-source-bytes") {
        wrong.push(format!(
            "the push was not refused naming --max-source-bytes:\n{output}"
        ));
    }
    wrong.extend(nothing_left_behind(&w, &src));
    assert!(
        wrong.is_empty(),
        "a source bomb got through:\n{}",
        wrong.join("\n")
    );
    w.assert_vic_untouched();
}

#[test]
fn a_build_past_the_time_limit_is_stopped() {
    let Some(w) = World::start_with_args(&["--build-timeout", "20s"]) else {
        return;
    };
    let src = w.mallory_app(&[]);
    src.write(
        ".profile.d/forever.sh",
        "echo 'building forever' >&2\nsleep 3600\n",
    );
    src.commit("a build that never ends");
    let started = Instant::now();
    let (ok, output) = bounded_push(&w, &src, "mal", 150);
    let mut wrong = Vec::new();
    if ok || !output.contains("--build-timeout") || output.contains("killed)") {
        wrong.push(format!(
            "the endless build was not stopped by the limit (after {:?}):\n{output}",
            started.elapsed()
        ));
    }
    wrong.extend(nothing_left_behind(&w, &src));
    assert!(
        wrong.is_empty(),
        "an endless build got through:\n{}",
        wrong.join("\n")
    );
    w.assert_vic_untouched();
}

#[test]
fn an_abandoned_push_stops_its_build() {
    let Some(w) = World::start() else { return };
    let src = w.mallory_app(&[]);
    src.write(
        ".profile.d/forever.sh",
        "echo 'building forever' >&2\nsleep 3600\n",
    );
    src.commit("a build that never ends");
    // The client goes away once the build job runs: `git push` and its git-remote-http
    // (which holds the connection) in their own process group, killed together as
    // Ctrl-C does. Killing `git` alone leaves the connection open.
    let url = w.paas.git_url_with("mal", Some(&w.mallory.token));
    let mut child = src
        .git_command(&["push", &url, "main"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let running = eventually(60, || !build_jobs(&w).is_empty());
    let pgid = child.id() as i32;
    // SAFETY: kill(2) on the process group of our own child; it touches no memory.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.wait();
    assert!(running, "the build job started");
    let mut wrong = Vec::new();
    if !eventually(60, || build_jobs(&w).is_empty()) {
        wrong.push(format!(
            "the build job still runs 60 s after its push went away: {:?}",
            build_jobs(&w)
        ));
    }
    wrong.extend(nothing_left_behind(&w, &src));
    assert!(
        wrong.is_empty(),
        "an abandoned build kept running:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn a_build_cache_past_its_cap_is_emptied() {
    let Some(w) = World::start_with_args(&["--max-cache-bytes", "1048576"]) else {
        return;
    };
    let src = w.mallory_app(&[(
        ".profile.d/fill.sh",
        "echo \"cache before: $(du -sk /cache | cut -f1) KB\" >&2\n\
         dd if=/dev/zero of=/cache/fill bs=1024 count=3072 2>/dev/null\n",
    )]);
    src.write("index.html", &format!("<h1>{MAL_PAGE} v2</h1>\n"));
    src.commit("mal v2");
    let (ok, output) = bounded_push(&w, &src, "mal", 120);
    assert!(ok, "the second push: {output}");
    assert!(
        output.contains("cache before: 0 KB") || output.contains("cache before: 4 KB"),
        "the 3 MiB cache of the first build was emptied (limit 1 MiB):\n{output}"
    );
    assert!(
        output.contains("--max-cache-bytes"),
        "the push says the cache was emptied and why:\n{output}"
    );
}

/// The CPU quota of a running job's cgroup, read on the host: `cpu.cfs_quota_us` (v1) or
/// `cpu.max` (v2) of the cgroup its process is in.
fn cpu_quota_of(pid: i64) -> Option<String> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == "cpu") {
            let dir = format!("/sys/fs/cgroup/{controllers}{path}");
            return std::fs::read_to_string(format!("{dir}/cpu.cfs_quota_us")).ok();
        }
        if controllers.is_empty() {
            let file = format!("/sys/fs/cgroup/unified{path}/cpu.max");
            if let Ok(v) = std::fs::read_to_string(&file) {
                return Some(v);
            }
        }
    }
    None
}

#[test]
fn a_build_runs_under_a_cpu_quota() {
    let Some(w) = World::start() else { return };
    let src = w.mallory_app(&[]);
    src.write(
        ".profile.d/spin.sh",
        "echo 'spinning' >&2\nend=$(( $(date +%s) + 20 ))\n\
         while [ $(date +%s) -lt $end ]; do :; done\n",
    );
    src.commit("a build that spins for 20 s");
    let url = w.paas.git_url_with("mal", Some(&w.mallory.token));
    let mut child = src
        .git_command(&["push", &url, "main"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut quota = None;
    let seen = eventually(60, || {
        let jobs = w.paas.agent_jobs().unwrap_or_default();
        let pid = jobs
            .iter()
            .find(|j| j["id"].as_str().is_some_and(|id| id.starts_with("build-")))
            .and_then(|j| j["pid"].as_i64());
        quota = pid.and_then(cpu_quota_of);
        quota.is_some()
    });
    let _ = child.wait();
    assert!(seen, "the build job's cgroup was found while it ran");
    let quota = quota.unwrap();
    let q = quota.trim();
    assert!(
        q != "-1" && !q.starts_with("max"),
        "the build runs without a CPU quota: {q}"
    );
}
