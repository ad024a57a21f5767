//! Unit tests of [`plan`] for process types with a volume (`Formation::pinned`): one job,
//! on the volume's node only, replaced stop-first, waiting while that node is down.

use std::collections::HashSet;

use super::*;

fn web(release: u32, count: u32, pinned: &str) -> Formation {
    Formation {
        app: "shop".into(),
        process_type: "web".into(),
        count,
        release,
        memory_bytes: DEFAULT_MEMORY_BYTES,
        layers: Vec::new(),
        pinned: Some(pinned.into()),
    }
}

fn node(name: &str, up: bool) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        up,
        ..NodeInfo::default()
    }
}

fn job(id: &str, release: u32, node: &str, phase: Phase) -> ObservedJob {
    ObservedJob {
        id: id.into(),
        app: "shop".into(),
        release,
        process_type: "web".into(),
        node: node.into(),
        phase,
        healthy: phase == Phase::Up,
    }
}

fn start(release: u32, node: &str) -> Action {
    Action::Start {
        app: "shop".into(),
        release,
        process_type: "web".into(),
        node: node.into(),
    }
}

fn stop(id: &str) -> Action {
    Action::Stop { job_id: id.into() }
}

#[test]
fn the_job_goes_to_the_volumes_node_even_when_another_is_emptier() {
    let nodes = [node("a", true), node("b", true)];
    let busy = [ObservedJob {
        app: "other".into(),
        ..job("o1", 1, "b", Phase::Up)
    }];
    let other = Formation {
        app: "other".into(),
        pinned: None,
        ..web(1, 1, "b")
    };
    assert_eq!(
        plan(&[web(1, 1, "b"), other], &nodes, &busy),
        [start(1, "b")]
    );
}

#[test]
fn at_most_one_job_runs_whatever_the_count_says() {
    let nodes = [node("a", true)];
    assert_eq!(plan(&[web(1, 3, "a")], &nodes, &[]), [start(1, "a")]);
    let two = [job("j1", 1, "a", Phase::Up), job("j2", 1, "a", Phase::Up)];
    assert_eq!(plan(&[web(1, 3, "a")], &nodes, &two), [stop("j2")]);
}

#[test]
fn a_new_release_replaces_stop_first() {
    let nodes = [node("a", true)];
    // The old job is stopped and nothing starts while it runs…
    let old = [job("v1", 1, "a", Phase::Up)];
    assert_eq!(plan(&[web(2, 1, "a")], &nodes, &old), [stop("v1")]);
    // …or while it is stopping…
    let stopping = [job("v1", 1, "a", Phase::Stopping)];
    assert_eq!(plan(&[web(2, 1, "a")], &nodes, &stopping), []);
    // …and once it is gone the new one starts.
    assert_eq!(plan(&[web(2, 1, "a")], &nodes, &[]), [start(2, "a")]);
}

#[test]
fn a_restart_stops_the_job_before_its_replacement_starts() {
    let nodes = [node("a", true)];
    let jobs = [job("j1", 1, "a", Phase::Up)];
    let replace = HashSet::from(["j1".to_string()]);
    let actions = plan_with_replacements(&[web(1, 1, "a")], &nodes, &jobs, &replace);
    assert_eq!(actions, [stop("j1")]);
}

#[test]
fn a_job_on_another_node_is_moved_to_the_volumes_node() {
    // Mounting a volume of node b into a type that ran on a.
    let nodes = [node("a", true), node("b", true)];
    let jobs = [job("j1", 1, "a", Phase::Up)];
    assert_eq!(plan(&[web(1, 1, "b")], &nodes, &jobs), [stop("j1")]);
    assert_eq!(plan(&[web(1, 1, "b")], &nodes, &[]), [start(1, "b")]);
}

#[test]
fn nothing_starts_anywhere_while_the_volumes_node_is_down() {
    let nodes = [node("a", true), node("b", false)];
    let lost = [job("j1", 1, "b", Phase::Up)];
    assert_eq!(plan(&[web(1, 1, "b")], &nodes, &lost), []);
    // The node comes back with its job: it is kept.
    let nodes = [node("a", true), node("b", true)];
    assert_eq!(plan(&[web(1, 1, "b")], &nodes, &lost), []);
}

#[test]
fn a_draining_volume_node_keeps_its_type() {
    let nodes = [
        NodeInfo {
            draining: true,
            ..node("a", true)
        },
        node("b", true),
    ];
    let jobs = [job("j1", 1, "a", Phase::Up)];
    assert_eq!(plan(&[web(1, 1, "a")], &nodes, &jobs), []);
    assert_eq!(plan(&[web(1, 1, "a")], &nodes, &[]), [start(1, "a")]);
}

#[test]
fn scaled_to_zero_stops_the_job() {
    let nodes = [node("a", true)];
    let jobs = [job("j1", 1, "a", Phase::Up)];
    assert_eq!(plan(&[web(1, 0, "a")], &nodes, &jobs), [stop("j1")]);
    assert_eq!(plan(&[web(1, 0, "a")], &nodes, &[]), []);
}
