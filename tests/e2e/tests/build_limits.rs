//! Journeys: bounded builds, with the real git client, controller, agent and containers
//! (tiny stack, a third-party buildpack by path whose `bin/compile` the app steers with
//! marker files).
//!
//! * A build that sleeps past `--build-timeout` is stopped, the push says so, the build is
//!   `failed`, the app is not left "building" and v1 keeps serving; while it runs its
//!   cgroup carries the `--build-cpu` quota.
//! * A `git push` killed mid-build (its whole process group, as Ctrl-C does) stops and
//!   removes the build job: the build is `failed` ("the client disconnected") and nothing
//!   is left (job, container, build dir, ref).
//! * A build that leaves the cache over `--max-cache-bytes` gets it emptied, the push says
//!   so and the next build starts cold.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use paas_e2e::{require_root, stacks_dir, AppDir, Paas};

fn script(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(path)
        .status()
        .unwrap();
}

/// A classic buildpack: reports whether the cache is warm, fills it when the app has
/// `BIG_CACHE`, sleeps when it has `SLEEP`; the default web process serves /app.
fn steerable_buildpack(dir: &Path) {
    script(&dir.join("bin/detect"), "#!/bin/sh\necho steerable\n");
    script(
        &dir.join("bin/compile"),
        "#!/bin/sh\n\
         if [ -f \"$2/marker\" ]; then echo \"       cache: warm\"; else echo \"       cache: cold\"; fi\n\
         touch \"$2/marker\"\n\
         if [ -f \"$1/BIG_CACHE\" ]; then\n\
           dd if=/dev/zero of=\"$2/big\" bs=1024 count=2048 2>/dev/null\n\
           echo \"       wrote 2 MiB to the cache\"\n\
         fi\n\
         if [ -f \"$1/SLEEP\" ]; then echo \"-----> Sleeping\"; sleep 600; fi\n",
    );
    script(
        &dir.join("bin/release"),
        "#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n  web: httpd -f -p $PORT -h /app\\n'\n",
    );
}

/// Creates `app`, sets the steerable buildpack (by path: admins only) and pushes v1.
fn app_with_v1(paas: &Paas, app: &str, buildpack: &Path) -> AppDir {
    let client = paas.client();
    let resp = client
        .post(format!("{}/v1/apps", paas.api))
        .bearer_auth(&paas.token)
        .json(&serde_json::json!({ "name": app }))
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().unwrap());
    let resp = client
        .put(format!("{}/v1/apps/{app}/buildpack", paas.api))
        .bearer_auth(&paas.token)
        .json(&serde_json::json!({ "buildpack": buildpack.to_str().unwrap() }))
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().unwrap());
    let dir = AppDir::new();
    dir.write("index.html", "<h1>v1 serves</h1>\n");
    dir.commit("v1");
    let push = dir.push(&paas.git_url(app), "main");
    assert!(push.ok, "v1 failed:\n{}", push.output);
    assert!(push.output.contains("cache: cold"), "{}", push.output);
    paas.wait_for_body(app, "v1 serves", Duration::from_secs(30))
        .unwrap();
    dir
}

/// The agent's build jobs (label `paas.kind=build`).
fn build_jobs(paas: &Paas) -> Vec<serde_json::Value> {
    paas.agent_jobs()
        .unwrap()
        .into_iter()
        .filter(|j| j["labels"]["paas.kind"] == "build")
        .collect()
}

/// Waits until a build job is up; returns its id.
fn wait_build_up(paas: &Paas) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(job) = build_jobs(paas).into_iter().find(|j| j["state"] == "up") {
            return job["id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no build job came up");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The newest build of `app`, and its log.
fn newest_build(paas: &Paas, app: &str) -> (serde_json::Value, String) {
    let builds = paas.get_json(&format!("/v1/apps/{app}/builds")).unwrap();
    let build = builds[0].clone();
    let id = build["id"].as_str().unwrap();
    let log = paas
        .client()
        .get(format!("{}/v1/apps/{app}/builds/{id}/log", paas.api))
        .bearer_auth(&paas.token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    (build, log)
}

fn app_status(paas: &Paas, app: &str) -> serde_json::Value {
    paas.get_json(&format!("/v1/apps/{app}")).unwrap()
}

/// What the previous release left must still be all there is.
fn assert_nothing_left(paas: &Paas, app: &str) {
    assert!(build_jobs(paas).is_empty(), "{:?}", build_jobs(paas));
    let builds = paas.data.path().join("builds");
    let left: Vec<_> = std::fs::read_dir(builds).unwrap().flatten().collect();
    assert!(left.is_empty(), "builds/ holds {left:?}");
    let info = app_status(paas, app);
    assert_eq!(info["current_release"], 1, "{info}");
    assert_ne!(info["status"], "building", "{info}");
    let (status, body) = paas.request_app(app, "/").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("v1 serves"), "{body}");
}

/// The CFS quota of a job's cgroup, as `quota period` (v1 or v2 layout).
fn cpu_quota(prefix: &str, job: &str) -> Option<String> {
    let v1 = Path::new("/sys/fs/cgroup/cpu").join(prefix).join(job);
    if let Ok(quota) = std::fs::read_to_string(v1.join("cpu.cfs_quota_us")) {
        let period = std::fs::read_to_string(v1.join("cpu.cfs_period_us")).ok()?;
        return Some(format!("{} {}", quota.trim(), period.trim()));
    }
    let v2 = Path::new("/sys/fs/cgroup").join(prefix).join(job);
    std::fs::read_to_string(v2.join("cpu.max"))
        .ok()
        .map(|s| s.trim().to_string())
}

#[test]
fn a_build_past_build_timeout_is_stopped_and_v1_keeps_serving() {
    if !require_root() {
        return;
    }
    let paas = Paas::start_with_args(
        stacks_dir(),
        &["--build-timeout", "25s", "--build-cpu", "500m"],
    );
    let work = tempfile::tempdir().unwrap();
    steerable_buildpack(&work.path().join("bp"));
    let app = app_with_v1(&paas, "slow", &work.path().join("bp"));

    app.write("SLEEP", "");
    app.commit("sleeps past the limit");
    let url = paas.git_url("slow");
    let pusher = std::thread::spawn(move || app.push(&url, "main"));
    // While it sleeps: half a core, as --build-cpu says.
    let job = wait_build_up(&paas);
    assert_eq!(
        cpu_quota(&paas.prefix, &job).as_deref(),
        Some("50000 100000"),
        "the build job's cgroup has no 500m quota"
    );
    let push = pusher.join().unwrap();
    assert!(!push.ok, "{}", push.output);
    for needle in [
        "-----> Sleeping",
        "remote:  !     build exceeded the 25 s limit",
        "--build-timeout",
    ] {
        assert!(
            push.output.contains(needle),
            "no {needle:?} in:\n{}",
            push.output
        );
    }
    let (build, log) = newest_build(&paas, "slow");
    assert_eq!(build["status"], "failed", "{build}");
    assert!(log.contains("exceeded the 25 s limit"), "{log}");
    assert_nothing_left(&paas, "slow");
}

#[test]
fn a_push_killed_mid_build_stops_and_removes_the_build_job() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();
    let work = tempfile::tempdir().unwrap();
    steerable_buildpack(&work.path().join("bp"));
    let app = app_with_v1(&paas, "gone", &work.path().join("bp"));
    let repo = paas.data.path().join("git/gone.git");
    let v1_ref = git_ref(&repo);

    app.write("SLEEP", "");
    app.commit("sleeps until the pusher gives up");
    // `git push` and its git-remote-http in their own process group, killed together.
    let mut child = app
        .git_command(&["push", &paas.git_url("gone"), "main"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let job = wait_build_up(&paas);
    let pgid = child.id() as i32;
    // SAFETY: kill(2) on the process group of our own child; it touches no memory.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let killed = Instant::now();
    let _ = child.wait();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (build, log) = newest_build(&paas, "gone");
        let job_gone = !build_jobs(&paas).iter().any(|j| j["id"] == job.as_str());
        if build["status"] == "failed" && job_gone {
            assert!(log.contains("the client disconnected"), "{log}");
            eprintln!(
                "pusher killed → build failed and its job deleted: {} ms",
                killed.elapsed().as_millis()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "60 s after the pusher died: build {build}, jobs {:?}",
            build_jobs(&paas)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_nothing_left(&paas, "gone");
    assert_eq!(git_ref(&repo), v1_ref, "the ref moved");
    let container = paas.data.path().join("agent/containers").join(&job);
    assert!(!container.exists(), "the build's container is left");
}

#[test]
fn a_cache_over_max_cache_bytes_is_emptied_and_the_next_build_is_cold() {
    if !require_root() {
        return;
    }
    let paas = Paas::start_with_args(stacks_dir(), &["--max-cache-bytes", "1048576"]);
    let work = tempfile::tempdir().unwrap();
    steerable_buildpack(&work.path().join("bp"));
    let app = app_with_v1(&paas, "fat", &work.path().join("bp"));
    assert!(!app_push_says(&app, &paas, "v2", None).contains("emptied"));

    let out = app_push_says(&app, &paas, "v3", Some("BIG_CACHE"));
    assert!(out.contains("cache: warm"), "v1's cache was kept:\n{out}");
    assert!(out.contains("wrote 2 MiB"), "{out}");
    for needle in ["it was emptied", "--max-cache-bytes", "limit of 1 MiB"] {
        assert!(out.contains(needle), "no {needle:?} in:\n{out}");
    }
    std::fs::remove_file(app.dir.path().join("BIG_CACHE")).unwrap();
    let out = app_push_says(&app, &paas, "v4", None);
    assert!(
        out.contains("cache: cold"),
        "the cache was not emptied:\n{out}"
    );
    assert!(!out.contains("emptied"), "{out}");
    let volumes = paas.data.path().join("agent/volumes");
    let cache = std::fs::read_dir(&volumes)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("cache-"))
        .expect("a cache volume");
    assert!(!cache.path().join("big").exists());
}

/// Commits `marker` (when given) and a new page, pushes, returns the output.
fn app_push_says(app: &AppDir, paas: &Paas, version: &str, marker: Option<&str>) -> String {
    if let Some(m) = marker {
        app.write(m, "");
    }
    app.write("index.html", &format!("<h1>{version} serves</h1>\n"));
    app.commit(version);
    let push = app.push(&paas.git_url("fat"), "main");
    assert!(push.ok, "{version} failed:\n{}", push.output);
    push.output
}

fn git_ref(repo: &Path) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(["rev-parse", "refs/heads/main"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
