//! Unit tests of [`plan_with_replacements`]: restarts and resizes go through the deploy
//! path (start new, stop the named jobs only once the new ones are ready), and a bigger
//! size must fit into a node's memory.

use std::collections::HashSet;

use super::*;

fn web(count: u32, memory_bytes: u64) -> Formation {
    Formation {
        app: "hello".into(),
        process_type: "web".into(),
        count,
        release: 1,
        memory_bytes,
        layers: Vec::new(),
        pinned: None,
    }
}

fn node(name: &str, memory_bytes: u64) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        up: true,
        memory_bytes,
        ..NodeInfo::default()
    }
}

fn job(id: &str, phase: Phase, healthy: bool) -> ObservedJob {
    ObservedJob {
        id: id.into(),
        app: "hello".into(),
        release: 1,
        process_type: "web".into(),
        node: "a".into(),
        phase,
        healthy,
    }
}

fn start() -> Action {
    Action::Start {
        app: "hello".into(),
        release: 1,
        process_type: "web".into(),
        node: "a".into(),
    }
}

fn replace(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_replaced_job_stays_until_its_replacement_is_ready() {
    let f = [web(1, DEFAULT_MEMORY_BYTES)];
    let n = [node("a", 0)];
    // Step 1: only the old job runs; a replacement starts, the old one stays.
    let old = job("old", Phase::Up, true);
    let actions = plan_with_replacements(&f, &n, std::slice::from_ref(&old), &replace(&["old"]));
    assert_eq!(actions, [start()]);
    // Step 2: the replacement is starting: nothing to do (no second start, no stop).
    let new = job("new", Phase::Starting, false);
    let jobs = [old.clone(), new];
    assert!(plan_with_replacements(&f, &n, &jobs, &replace(&["old"])).is_empty());
    // Step 3: the replacement is up but not healthy yet: still nothing.
    let jobs = [old.clone(), job("new", Phase::Up, false)];
    assert!(plan_with_replacements(&f, &n, &jobs, &replace(&["old"])).is_empty());
    // Step 4: healthy: the old job is stopped.
    let jobs = [old, job("new", Phase::Up, true)];
    assert_eq!(
        plan_with_replacements(&f, &n, &jobs, &replace(&["old"])),
        [Action::Stop {
            job_id: "old".into()
        }]
    );
    // Once the old job is gone, the new one alone is the steady state.
    assert_eq!(
        plan(&f, &n, &[job("new", Phase::Up, true)]),
        Vec::<Action>::new()
    );
}

#[test]
fn a_bigger_size_must_fit_in_the_node() {
    let gib = 1024 * 1024 * 1024;
    let old = job("old", Phase::Up, true);
    // 1 GiB node: the old 512M job (counted at the formation's new size, 768M) leaves no
    // room for a 768M replacement, so nothing starts and the old job keeps serving.
    let f = [web(1, 768 * 1024 * 1024)];
    let actions = plan_with_replacements(
        &f,
        &[node("a", gib)],
        std::slice::from_ref(&old),
        &replace(&["old"]),
    );
    assert!(actions.is_empty(), "{actions:?}");
    // 2 GiB: the replacement fits.
    let actions = plan_with_replacements(&f, &[node("a", 2 * gib)], &[old], &replace(&["old"]));
    assert_eq!(actions, [start()]);
}
