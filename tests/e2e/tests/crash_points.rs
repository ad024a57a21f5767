//! Crash consistency (issue 16): the standalone controller SIGKILLs itself at a named point
//! of a push (`PAAS_TEST_KILL_AT`, see `controller/src/build/leftovers.rs`), is started
//! again, and what it leaves is checked, with real git, agent and containers:
//!
//! - before the release is made (receiving, building, pushing the layer, the release
//!   command): v1 keeps
//!   serving and stays current, the build is `failed` saying the controller restarted;
//! - once the release is made (releasing, switching): the release stands and the
//!   restarted scheduler finishes rolling it out;
//! - always: no build or release-command job, no build directory, one agent.

use std::time::{Duration, Instant};

use paas_e2e::{require_root, AppDir, Paas};

const APP: &str = "crash";

/// A Procfile app (busybox httpd) serving `text`, with a release command that runs a
/// while (so a kill during the release phase leaves its job running).
fn procfile_app(dir: &AppDir, text: &str) {
    let page = text.replace(' ', "-");
    // Only v2's runs long: that is the push the controller dies in.
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
fn build_jobs(paas: &Paas) -> Vec<String> {
    paas.agent_jobs()
        .unwrap_or_default()
        .into_iter()
        .filter(|j| j["labels"].get("paas.build").is_some())
        .map(|j| j["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn current_release(paas: &Paas) -> u64 {
    paas.get_json(&format!("/v1/apps/{APP}")).unwrap()["current_release"]
        .as_u64()
        .unwrap_or(0)
}

fn kill_at(point: &str) {
    if !require_root() {
        return;
    }
    let mut paas = Paas::start();
    let dir = AppDir::new();
    procfile_app(&dir, "version one");
    let push = dir.push(&paas.git_url(APP), "main");
    assert!(push.ok, "v1 push failed:\n{}", push.output);
    paas.wait_for_body(APP, "version-one", Duration::from_secs(60))
        .unwrap();

    paas.kill_controller();
    paas.restart_with_env(&[("PAAS_TEST_KILL_AT", point)]);
    procfile_app(&dir, "version two");
    let push = dir.push(&paas.git_url(APP), "main");
    assert!(
        paas.wait_controller_exit(Duration::from_secs(120)),
        "the controller never reached {point}; push:\n{}\n{}",
        push.output,
        paas.log()
    );
    assert!(
        !push.ok,
        "the push succeeded although the controller died:\n{}",
        push.output
    );

    paas.restart();
    let released = matches!(point, "releasing" | "switching");
    if released {
        // The release was made before the kill: it stands and rolls out.
        assert_eq!(current_release(&paas), 2);
        paas.wait_for_body(APP, "version-two", Duration::from_secs(60))
            .unwrap();
    } else {
        assert_eq!(current_release(&paas), 1, "{}", paas.log());
        let (status, body) = paas.request_app(APP, "/").unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("version-one"), "{body}");
        let builds = paas.get_json(&format!("/v1/apps/{APP}/builds")).unwrap();
        let failed = builds
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["status"] == "failed")
            .count();
        assert_eq!(failed, 1, "the interrupted build is not failed: {builds}");
    }
    // Nothing of the interrupted build is left (the reaper runs every few seconds).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = build_jobs(&paas);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs of the interrupted build are left: {left:?}\n{}",
            paas.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let builds_dir = paas.data.path().join("builds");
    let dirs: Vec<_> = std::fs::read_dir(&builds_dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(dirs.is_empty(), "build directories left: {dirs:?}");
    assert_eq!(paas.agent_processes().len(), 1, "{}", paas.log());
    // The app keeps working: the next push deploys.
    procfile_app(&dir, "version three");
    let push = dir.push(&paas.git_url(APP), "main");
    assert!(
        push.ok,
        "the push after the restart failed:\n{}",
        push.output
    );
    paas.wait_for_body(APP, "version-three", Duration::from_secs(60))
        .unwrap();
}

#[test]
fn kill_while_receiving_the_source() {
    kill_at("receiving");
}

#[test]
fn kill_while_building() {
    kill_at("building");
}

#[test]
fn kill_before_pushing_the_layer() {
    kill_at("pushing-layer");
}

#[test]
fn kill_during_the_release_command() {
    kill_at("release-phase");
}

#[test]
fn kill_right_after_the_release_is_made() {
    kill_at("releasing");
}

#[test]
fn kill_while_switching_to_the_new_release() {
    kill_at("switching");
}
