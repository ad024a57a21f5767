//! Unit tests of [`plan`] on plain data.

use super::*;

fn web(app: &str, release: u32, count: u32) -> Formation {
    Formation {
        app: app.into(),
        process_type: "web".into(),
        count,
        release,
    }
}

fn node(name: &str, up: bool) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        up,
    }
}

fn job(id: &str, app: &str, release: u32, node: &str, phase: Phase, healthy: bool) -> ObservedJob {
    ObservedJob {
        id: id.into(),
        app: app.into(),
        release,
        process_type: "web".into(),
        node: node.into(),
        phase,
        healthy,
    }
}

fn start(app: &str, release: u32, node: &str) -> Action {
    Action::Start {
        app: app.into(),
        release,
        process_type: "web".into(),
        node: node.into(),
    }
}

fn stop(id: &str) -> Action {
    Action::Stop { job_id: id.into() }
}

#[test]
fn starts_one_web_job_when_nothing_runs() {
    let actions = plan(&[web("hello", 1, 1)], &[node("a", true)], &[]);
    assert_eq!(actions, [start("hello", 1, "a")]);
}

#[test]
fn steady_state_needs_nothing() {
    let jobs = [job("j1", "hello", 1, "a", Phase::Up, true)];
    assert!(plan(&[web("hello", 1, 1)], &[node("a", true)], &jobs).is_empty());
}

#[test]
fn a_starting_job_counts_so_no_duplicate_is_started() {
    let jobs = [job("j1", "hello", 1, "a", Phase::Starting, false)];
    assert!(plan(&[web("hello", 1, 1)], &[node("a", true)], &jobs).is_empty());
}

#[test]
fn spreads_new_jobs_over_the_least_loaded_nodes() {
    let nodes = [node("a", true), node("b", true), node("c", true)];
    // a has two jobs of another app, b one, c none.
    let jobs = [
        job("o1", "other", 1, "a", Phase::Up, true),
        job("o2", "other", 1, "a", Phase::Up, true),
        job("o3", "other", 1, "b", Phase::Up, true),
    ];
    let desired = [web("other", 1, 3), web("hello", 1, 4)];
    let actions = plan(&desired, &nodes, &jobs);
    // Each start goes to the least loaded node, ties broken by name: c(0), then b and c
    // tie at 1 (b), then c(1), then all tie at 2 (a).
    assert_eq!(
        actions,
        [
            start("hello", 1, "c"),
            start("hello", 1, "b"),
            start("hello", 1, "c"),
            start("hello", 1, "a"),
        ]
    );
}

#[test]
fn never_places_on_down_nodes_and_replaces_their_jobs() {
    let nodes = [node("a", false), node("b", true)];
    let jobs = [job("j1", "hello", 1, "a", Phase::Up, true)];
    let actions = plan(&[web("hello", 1, 1)], &nodes, &jobs);
    assert_eq!(actions, [start("hello", 1, "b")]);
}

#[test]
fn no_up_node_means_no_action() {
    let actions = plan(&[web("hello", 1, 2)], &[node("a", false)], &[]);
    assert!(actions.is_empty());
    assert!(plan(&[web("hello", 1, 2)], &[], &[]).is_empty());
}

#[test]
fn old_release_is_stopped_only_once_the_new_one_is_up_and_healthy() {
    let desired = [web("hello", 2, 1)];
    let nodes = [node("a", true)];
    let v1 = job("v1", "hello", 1, "a", Phase::Up, true);

    // v2 not there yet: start it, keep v1.
    let actions = plan(&desired, &nodes, std::slice::from_ref(&v1));
    assert_eq!(actions, [start("hello", 2, "a")]);

    // v2 starting: keep v1.
    let v2 = job("v2", "hello", 2, "a", Phase::Starting, false);
    assert!(plan(&desired, &nodes, &[v1.clone(), v2]).is_empty());

    // v2 up but not answering yet: keep v1.
    let v2 = job("v2", "hello", 2, "a", Phase::Up, false);
    assert!(plan(&desired, &nodes, &[v1.clone(), v2]).is_empty());

    // v2 healthy: now v1 goes.
    let v2 = job("v2", "hello", 2, "a", Phase::Up, true);
    assert_eq!(plan(&desired, &nodes, &[v1, v2]), [stop("v1")]);
}

#[test]
fn old_release_waits_for_the_full_count() {
    let desired = [web("hello", 2, 2)];
    let jobs = [
        job("v1a", "hello", 1, "a", Phase::Up, true),
        job("v1b", "hello", 1, "a", Phase::Up, true),
        job("v2a", "hello", 2, "a", Phase::Up, true),
        job("v2b", "hello", 2, "a", Phase::Starting, false),
    ];
    assert!(plan(&desired, &[node("a", true)], &jobs).is_empty());
}

#[test]
fn surplus_jobs_are_stopped_unhealthy_first() {
    let desired = [web("hello", 1, 1)];
    let jobs = [
        job("j1", "hello", 1, "a", Phase::Up, true),
        job("j2", "hello", 1, "a", Phase::Starting, false),
        job("j0", "hello", 1, "a", Phase::Up, false),
    ];
    let actions = plan(&desired, &[node("a", true)], &jobs);
    assert_eq!(actions, [stop("j0"), stop("j2")]);
}

#[test]
fn scaling_to_zero_stops_everything_at_once() {
    let desired = [web("hello", 2, 0)];
    let jobs = [
        job("v1", "hello", 1, "a", Phase::Up, true),
        job("v2", "hello", 2, "a", Phase::Up, true),
    ];
    let actions = plan(&desired, &[node("a", true)], &jobs);
    assert_eq!(actions, [stop("v2"), stop("v1")]);
}

#[test]
fn crashed_jobs_are_cleaned_up_and_replaced() {
    let desired = [web("hello", 1, 1)];
    let jobs = [job("j1", "hello", 1, "a", Phase::Finished, false)];
    let actions = plan(&desired, &[node("a", true)], &jobs);
    assert_eq!(actions, [stop("j1"), start("hello", 1, "a")]);
}

#[test]
fn stopping_jobs_are_left_alone_and_do_not_count() {
    let desired = [web("hello", 1, 1)];
    let jobs = [job("j1", "hello", 1, "a", Phase::Stopping, false)];
    let actions = plan(&desired, &[node("a", true)], &jobs);
    assert_eq!(actions, [start("hello", 1, "a")]);
}

#[test]
fn jobs_nothing_wants_are_stopped() {
    let mut worker = job("w1", "hello", 1, "a", Phase::Up, true);
    worker.process_type = "worker".into();
    let jobs = [
        worker,
        job("g1", "gone", 3, "a", Phase::Up, true),
        job("h1", "hello", 1, "a", Phase::Up, true),
    ];
    let actions = plan(&[web("hello", 1, 1)], &[node("a", true)], &jobs);
    assert_eq!(actions, [stop("g1"), stop("w1")]);
}

#[test]
fn process_types_are_planned_independently() {
    let worker = Formation {
        app: "hello".into(),
        process_type: "worker".into(),
        count: 1,
        release: 2,
    };
    let jobs = [job("v1", "hello", 1, "a", Phase::Up, true)];
    let actions = plan(&[web("hello", 2, 1), worker], &[node("a", true)], &jobs);
    assert_eq!(
        actions,
        [
            start("hello", 2, "a"),
            Action::Start {
                app: "hello".into(),
                release: 2,
                process_type: "worker".into(),
                node: "a".into()
            }
        ]
    );
}

#[test]
fn a_rollback_to_an_older_release_works_the_same_way() {
    // Current release is v1 again; v2 serves until v1 is healthy.
    let desired = [web("hello", 1, 1)];
    let jobs = [
        job("v2", "hello", 2, "a", Phase::Up, true),
        job("v1", "hello", 1, "a", Phase::Up, true),
    ];
    assert_eq!(plan(&desired, &[node("a", true)], &jobs), [stop("v2")]);
}
