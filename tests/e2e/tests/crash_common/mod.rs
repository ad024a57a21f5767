//! What the crash-point tests share (`crash_points.rs`, `crash_points_agent.rs`): the app,
//! one push killed at a named point (`PAAS_TEST_KILL_AT`, see
//! `controller/src/builder/leftovers.rs`) with the controller, the agent or both as the
//! victim, and the checks of what it leaves, with real git, agent and containers.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use paas_e2e::{require_root, AppDir, Paas};

pub const APP: &str = "crash";

/// Who is SIGKILLed at the point (each test binary uses some of them).
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Victim {
    Controller,
    Agent,
    Both,
}

/// A Procfile app (busybox httpd) serving `text`, with a release command that runs a
/// while (so a kill during the release phase leaves its job running).
pub fn procfile_app(dir: &AppDir, text: &str) {
    let page = text.replace(' ', "-");
    // Only v2's runs long: that is the push the kill interrupts.
    let pause = if text == "version two" { 20 } else { 0 };
    dir.write(
        "Procfile",
        &format!(
            "web: sh -c 'mkdir -p /tmp/www && echo {page} > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www'\n\
             release: sh -c 'echo migrating; sleep {pause}'\n"
        ),
    );
    dir.commit(text);
}

/// Jobs on the agent that belong to a build (the build job or a release command).
pub fn build_jobs(paas: &Paas) -> Vec<String> {
    paas.agent_jobs()
        .unwrap_or_default()
        .into_iter()
        .filter(|j| j["labels"].get("paas.build").is_some())
        .map(|j| j["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

pub fn current_release(paas: &Paas) -> u64 {
    paas.get_json(&format!("/v1/apps/{APP}")).unwrap()["current_release"]
        .as_u64()
        .unwrap_or(0)
}

/// The instance's cgroup directories (`<root>/<hierarchy>/<prefix>/<job id>`, v1 and the
/// unified v2 one), mounts under its agent state dir, and host ends of its veths
/// (`<prefix>v<hash>`).
struct HostState {
    cgroups: Vec<std::path::PathBuf>,
    mounts: Vec<String>,
    veths: Vec<String>,
}

fn host_state(paas: &Paas) -> HostState {
    let mut cgroups = Vec::new();
    for hier in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let parent = hier.path().join(&paas.prefix);
        for cg in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            if cg.path().is_dir() {
                cgroups.push(cg.path());
            }
        }
    }
    let agent_dir = paas.data.path().join("agent");
    let agent_dir = agent_dir.to_string_lossy().into_owned();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounts = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&agent_dir))
        .map(str::to_string)
        .collect();
    let links = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let veths = links
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n))
        .filter(|n| n.starts_with(&format!("{}v", paas.prefix)))
        .map(str::to_string)
        .collect();
    HostState {
        cgroups,
        mounts,
        veths,
    }
}

/// What a kill must not leave: cgroups and mounts that name no job of the agent, more
/// veths than jobs, a registry upload. Empty when all is well.
fn host_leftovers(paas: &Paas) -> Vec<String> {
    let Ok(jobs) = paas.agent_jobs() else {
        return vec!["the agent does not answer".into()];
    };
    let ids: HashSet<String> = jobs
        .iter()
        .filter_map(|j| j["id"].as_str().map(str::to_string))
        .collect();
    let host = host_state(paas);
    let mut left = Vec::new();
    for cg in host.cgroups {
        let name = cg
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !ids.contains(&name) {
            left.push(format!("cgroup {}", cg.display()));
        }
    }
    for point in host.mounts {
        if !ids.iter().any(|id| point.contains(id.as_str())) {
            left.push(format!("mount {point}"));
        }
    }
    if host.veths.len() > ids.len() {
        left.push(format!(
            "{} veths for {} jobs: {:?}",
            host.veths.len(),
            ids.len(),
            host.veths
        ));
    }
    let uploads: Vec<_> = std::fs::read_dir(paas.data.path().join("registry/uploads"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    if !uploads.is_empty() {
        left.push(format!("registry uploads {uploads:?}"));
    }
    left
}

/// Waits up to `limit` for `check` to return nothing; the last findings otherwise.
fn settles(limit: Duration, mut check: impl FnMut() -> Vec<String>) -> Result<(), Vec<String>> {
    let deadline = Instant::now() + limit;
    loop {
        let found = check();
        if found.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(found);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// True when a push killed at `point` had made its release before the kill (it stands).
fn committed(point: &str) -> bool {
    matches!(point, "releasing" | "switching" | "draining")
}

/// v1 deployed, then a v2 push with `victim` SIGKILLed at `point`; checks what is left.
pub fn kill_at(victim: Victim, point: &str) {
    if !require_root() {
        return;
    }
    let what = format!("{victim:?} killed at {point}");
    let mut paas = Paas::start();
    let dir = AppDir::new();
    procfile_app(&dir, "version one");
    let push = dir.push(&paas.git_url(APP), "main");
    assert!(push.ok, "v1 push failed:\n{}", push.output);
    paas.wait_for_body(APP, "version-one", Duration::from_secs(60))
        .unwrap();
    let agent_before = paas.agent_pid();
    // The leftover checks look where the running job's traces are (else they prove
    // nothing).
    let v1 = host_state(&paas);
    let v1_job = paas
        .agent_jobs()
        .unwrap()
        .iter()
        .find_map(|j| j["id"].as_str().map(str::to_string))
        .expect("v1's job");
    assert!(
        v1.cgroups.iter().any(|c| c.ends_with(&v1_job)) && !v1.veths.is_empty(),
        "the running job {v1_job} has no cgroup or veth where the checks look: {:?} {:?}",
        v1.cgroups,
        v1.veths
    );

    paas.kill_controller();
    let env = match victim {
        Victim::Controller => point.to_string(),
        Victim::Agent => format!("agent:{point}"),
        Victim::Both => format!("both:{point}"),
    };
    paas.restart_with_env(&[("PAAS_TEST_KILL_AT", &env)]);
    procfile_app(&dir, "version two");
    let push = dir.push(&paas.git_url(APP), "main");
    let released = match victim {
        Victim::Controller | Victim::Both => {
            assert!(
                paas.wait_controller_exit(Duration::from_secs(120)),
                "{what}: the controller never reached {point}; push:\n{}\n{}",
                push.output,
                paas.log()
            );
            assert!(
                !push.ok || committed(point),
                "{what}: the push succeeded although the controller died:\n{}",
                push.output
            );
            paas.restart();
            committed(point)
        }
        Victim::Agent => {
            // The controller lives on and starts the agent again; the push may fail (the
            // build lost its agent) or succeed (the agent was back in time), and either
            // way the app must be in a clear state.
            let deadline = Instant::now() + Duration::from_secs(60);
            while paas.agent_pid() == agent_before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            assert_ne!(
                paas.agent_pid(),
                agent_before,
                "{what}: the agent was never killed (the push never reached {point}?):\n{}\n{}",
                push.output,
                paas.log()
            );
            push.ok || current_release(&paas) == 2
        }
    };
    if released {
        // The release was made before the kill: it stands and rolls out.
        assert_eq!(current_release(&paas), 2, "{what}\n{}", paas.log());
        paas.wait_for_body(APP, "version-two", Duration::from_secs(90))
            .unwrap_or_else(|e| panic!("{what}: {e}\n{}", paas.log()));
    } else {
        assert_eq!(current_release(&paas), 1, "{what}\n{}", paas.log());
        paas.wait_for_body(APP, "version-one", Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{what}: {e}\n{}", paas.log()));
    }
    // The interrupted build says so (a committed release's build may have finished).
    let builds = paas.get_json(&format!("/v1/apps/{APP}/builds")).unwrap();
    let states: Vec<String> = builds
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["status"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        states.iter().all(|s| s == "succeeded" || s == "failed"),
        "{what}: a build is left neither succeeded nor failed: {builds}"
    );
    if !released {
        assert_eq!(
            states.iter().filter(|s| *s == "failed").count(),
            1,
            "{what}: the interrupted build is not failed: {builds}"
        );
    }
    // Nothing of the interrupted build is left (the reaper runs every few seconds).
    settles(Duration::from_secs(45), || {
        build_jobs(&paas)
            .into_iter()
            .map(|j| format!("build job {j}"))
            .collect()
    })
    .unwrap_or_else(|left| panic!("{what}: left behind: {left:?}\n{}", paas.log()));
    let builds_dir = paas.data.path().join("builds");
    settles(Duration::from_secs(20), || {
        std::fs::read_dir(&builds_dir)
            .map(|d| {
                d.flatten()
                    .map(|e| format!("build dir {:?}", e.file_name()))
                    .collect()
            })
            .unwrap_or_default()
    })
    .unwrap_or_else(|left| panic!("{what}: left behind: {left:?}"));
    settles(Duration::from_secs(45), || host_leftovers(&paas))
        .unwrap_or_else(|left| panic!("{what}: left behind: {left:?}\n{}", paas.log()));
    assert_eq!(paas.agent_processes().len(), 1, "{what}\n{}", paas.log());
    // The app keeps working: the next push deploys.
    procfile_app(&dir, "version three");
    let push = dir.push(&paas.git_url(APP), "main");
    assert!(
        push.ok,
        "{what}: the push after the kill failed:\n{}",
        push.output
    );
    paas.wait_for_body(APP, "version-three", Duration::from_secs(60))
        .unwrap();
}
