//! Faults (issue 16) with real git, controller, agent and containers: a SIGKILLed
//! standalone controller's agent is adopted by the restarted controller (one agent, no
//! restart, the app keeps its job), and concurrent config changes answer 200 or 409, never
//! 500, with one release per change, numbered without a gap.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use paas_e2e::{require_root, AppDir, Paas};

fn deploy_static(paas: &Paas, app: &str, text: &str) {
    let dir = AppDir::new();
    dir.write("index.html", &format!("<h1>{text}</h1>\n"));
    dir.commit("v1");
    let push = dir.push(&paas.git_url(app), "main");
    assert!(push.ok, "push failed:\n{}", push.output);
    paas.wait_for_body(app, text, Duration::from_secs(60))
        .unwrap();
}

fn up_jobs(paas: &Paas) -> BTreeSet<String> {
    paas.agent_jobs()
        .unwrap()
        .into_iter()
        .filter(|j| j["state"] == "up")
        .map(|j| j["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_restarted_controller_adopts_the_agent_a_killed_one_left() {
    if !require_root() {
        return;
    }
    let mut paas = Paas::start();
    deploy_static(&paas, "keep", "still here");
    let agent = paas.agent_pid().expect("the agent wrote agent.pid");
    assert_eq!(paas.agent_processes(), vec![agent]);
    let jobs = up_jobs(&paas);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let log_before = paas.log().len();

    paas.kill_controller();
    // The agent outlives it (reparented to init) and keeps its job.
    assert_eq!(
        paas.agent_processes(),
        vec![agent],
        "the agent died with the controller"
    );

    paas.restart();
    paas.wait_for_body("keep", "still here", Duration::from_secs(30))
        .unwrap();
    let log = paas.log()[log_before..].to_string();
    assert!(
        log.contains("adopted the running paas-agent"),
        "the restarted controller did not adopt the agent:\n{log}"
    );
    // Watch a while: still the same single agent, never restarted.
    for _ in 0..20 {
        assert_eq!(paas.agent_processes(), vec![agent], "log:\n{}", paas.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    let log = paas.log()[log_before..].to_string();
    for bad in [
        "paas-agent exited",
        "paas-agent started",
        "another paas-agent",
    ] {
        assert!(!log.contains(bad), "{bad:?} after the restart:\n{log}");
    }
    assert_eq!(up_jobs(&paas), jobs, "the app's job was replaced");
    // The adopted agent still takes orders: a new release rolls out through it.
    let ok = paas.call(
        Some(&paas.token),
        "PATCH",
        "/v1/apps/keep/config",
        Some(&serde_json::json!({"AFTER": "restart"})),
    );
    assert_eq!(ok.status, 200, "{ok}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = up_jobs(&paas);
        if !now.is_empty() && now.is_disjoint(&jobs) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "v2 never replaced v1's job: {now:?}\n{}",
            paas.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_killed_controller_whose_agent_differs_replaces_it_once() {
    if !require_root() {
        return;
    }
    let mut paas = Paas::start();
    let agent = paas.agent_pid().expect("the agent wrote agent.pid");
    paas.kill_controller();
    // Another token on disk (as after a rotation): the running agent no longer fits.
    let token_file = paas.data.path().join("node-token");
    let old = std::fs::read_to_string(&token_file).expect("the node token file");
    let new: String = old
        .trim()
        .chars()
        .map(|c| if c == 'a' { 'b' } else { 'a' })
        .collect();
    std::fs::write(&token_file, format!("{new}\n")).unwrap();
    let log_before = paas.log().len();
    paas.restart();
    // The API answers (and the node still looks up from the old agent's last heartbeat)
    // before the handover is over: wait for the new agent, never seeing two.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = paas.agent_processes();
        assert!(
            now.len() <= 1,
            "two agents at once: {now:?}\n{}",
            paas.log()
        );
        if now.len() == 1 && now[0] != agent {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new agent replaced {agent}: {now:?}\n{}",
            paas.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = paas.log()[log_before..].to_string();
    assert!(log.contains("replacing the running paas-agent"), "{log}");
    assert!(log.contains("paas-agent started"), "{log}");
    assert!(!log.contains("paas-agent exited"), "{log}");
}

#[test]
fn concurrent_config_changes_answer_200_or_409_with_contiguous_releases() {
    if !require_root() {
        return;
    }
    let paas = Arc::new(Paas::start());
    deploy_static(&paas, "busy", "busy app");
    let writers: Vec<_> = (0..20)
        .map(|i| {
            let paas = Arc::clone(&paas);
            std::thread::spawn(move || {
                let key = format!("K{i}");
                let body = serde_json::json!({ key.clone(): format!("v{i}") });
                let answer = paas.call(
                    Some(&paas.token),
                    "PATCH",
                    "/v1/apps/busy/config",
                    Some(&body),
                );
                (key, answer)
            })
        })
        .collect();
    let mut stored = Vec::new();
    for w in writers {
        let (key, answer) = w.join().unwrap();
        match answer.status {
            200 => stored.push(key),
            409 => assert!(answer.message().contains("try again"), "{answer}"),
            _ => panic!("{key}: {answer}"),
        }
    }
    let releases = paas.get_json("/v1/apps/busy/releases").unwrap();
    let releases = releases.as_array().unwrap();
    let mut versions: Vec<u64> = releases
        .iter()
        .map(|r| r["version"].as_u64().unwrap())
        .collect();
    versions.sort();
    let want: Vec<u64> = (1..=stored.len() as u64 + 1).collect();
    assert_eq!(versions, want, "one release per 200, without a gap");
    let newest = releases
        .iter()
        .max_by_key(|r| r["version"].as_u64())
        .unwrap();
    let keys: Vec<&str> = newest["config_keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str())
        .collect();
    for key in &stored {
        assert!(
            keys.contains(&key.as_str()),
            "{key} is not in the newest release: {newest}"
        );
    }
    let config = paas.get_json("/v1/apps/busy/config").unwrap();
    assert_eq!(config.as_object().unwrap().len(), stored.len());
}
