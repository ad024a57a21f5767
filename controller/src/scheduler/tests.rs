//! Unit tests of [`plan`] on plain data.

use super::*;

fn web(app: &str, release: u32, count: u32) -> Formation {
    Formation {
        app: app.into(),
        process_type: "web".into(),
        count,
        release,
        memory_bytes: DEFAULT_MEMORY_BYTES,
        layers: Vec::new(),
        pinned: None,
    }
}

fn node(name: &str, up: bool) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        up,
        ..NodeInfo::default()
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
    // Spread first (one hello job per node before a second), then the least loaded node,
    // ties broken by name: c (load 0), b (1), a (2); then all have one: c (load 1).
    assert_eq!(
        actions,
        [
            start("hello", 1, "c"),
            start("hello", 1, "b"),
            start("hello", 1, "a"),
            start("hello", 1, "c"),
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
        memory_bytes: DEFAULT_MEMORY_BYTES,
        layers: Vec::new(),
        pinned: None,
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

fn sized(name: &str, gib: u64) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        up: true,
        memory_bytes: gib << 30,
        ..NodeInfo::default()
    }
}

#[test]
fn scale_web_4_over_3_nodes_spreads_2_1_1() {
    let nodes = [node("a", true), node("b", true), node("c", true)];
    let actions = plan(&[web("hello", 1, 4)], &nodes, &[]);
    assert_eq!(
        actions,
        [
            start("hello", 1, "a"),
            start("hello", 1, "b"),
            start("hello", 1, "c"),
            start("hello", 1, "a"),
        ]
    );
}

#[test]
fn spread_is_per_process_type_even_when_other_nodes_are_emptier() {
    // a runs one hello web job; b runs three jobs of another app. The second hello web job
    // goes to b anyway: spreading the process type beats the overall load.
    let nodes = [node("a", true), node("b", true)];
    let jobs = [
        job("h1", "hello", 1, "a", Phase::Up, true),
        job("o1", "other", 1, "b", Phase::Up, true),
        job("o2", "other", 1, "b", Phase::Up, true),
        job("o3", "other", 1, "b", Phase::Up, true),
    ];
    let actions = plan(&[web("hello", 1, 2), web("other", 1, 3)], &nodes, &jobs);
    assert_eq!(actions, [start("hello", 1, "b")]);
}

#[test]
fn memory_capacity_is_respected() {
    // 1 GiB nodes, 512 MiB processes: two per node, and the fifth fits nowhere.
    let nodes = [sized("a", 1), sized("b", 1)];
    let actions = plan(&[web("hello", 1, 5)], &nodes, &[]);
    assert_eq!(
        actions,
        [
            start("hello", 1, "a"),
            start("hello", 1, "b"),
            start("hello", 1, "a"),
            start("hello", 1, "b"),
        ]
    );
}

#[test]
fn memory_held_by_running_jobs_counts() {
    let nodes = [sized("a", 1), sized("b", 4)];
    let mut big = web("big", 1, 1);
    big.memory_bytes = 1 << 30;
    // a is full with hello's job, so big goes to b although a sorts first.
    let jobs = [job("h1", "hello", 1, "a", Phase::Up, true)];
    let mut hello = web("hello", 1, 1);
    hello.memory_bytes = 1 << 30;
    let actions = plan(&[big, hello], &nodes, &jobs);
    assert_eq!(actions, [start("big", 1, "b")]);
}

#[test]
fn nodes_with_the_image_layers_are_preferred() {
    let mut b = node("b", true);
    b.layers = ["sha256:base".to_string(), "sha256:app".to_string()].into();
    let mut c = node("c", true);
    c.layers = ["sha256:base".to_string()].into();
    let nodes = [node("a", true), b, c];
    let mut f = web("hello", 1, 3);
    f.layers = vec!["sha256:base".into(), "sha256:app".into()];
    let actions = plan(&[f], &nodes, &[]);
    // b has both layers, c one, a none; spreading still puts one on each.
    assert_eq!(
        actions,
        [
            start("hello", 1, "b"),
            start("hello", 1, "c"),
            start("hello", 1, "a"),
        ]
    );
}

#[test]
fn draining_nodes_get_nothing_and_their_jobs_move_once_replacements_are_ready() {
    let mut a = node("a", true);
    a.draining = true;
    let nodes = [a, node("b", true)];
    let desired = [web("hello", 1, 1)];
    let on_a = job("j1", "hello", 1, "a", Phase::Up, true);
    // First the replacement on b; the job on a keeps serving.
    let actions = plan(&desired, &nodes, std::slice::from_ref(&on_a));
    assert_eq!(actions, [start("hello", 1, "b")]);
    // Replacement starting: nothing to do yet.
    let on_b = job("j2", "hello", 1, "b", Phase::Starting, false);
    assert!(plan(&desired, &nodes, &[on_a.clone(), on_b]).is_empty());
    // Replacement healthy: the drained job stops.
    let on_b = job("j2", "hello", 1, "b", Phase::Up, true);
    assert_eq!(plan(&desired, &nodes, &[on_a, on_b]), [stop("j1")]);
}

#[test]
fn jobs_on_unknown_nodes_are_ignored() {
    let jobs = [job("j1", "hello", 1, "gone", Phase::Up, true)];
    let actions = plan(&[web("hello", 1, 1)], &[node("a", true)], &jobs);
    assert_eq!(actions, [start("hello", 1, "a")]);
}

#[test]
fn plan_is_deterministic_whatever_the_node_order() {
    let n1 = [node("c", true), node("a", true), node("b", true)];
    let n2 = [node("a", true), node("b", true), node("c", true)];
    let d = [web("hello", 1, 5), web("other", 2, 2)];
    assert_eq!(plan(&d, &n1, &[]), plan(&d, &n2, &[]));
}

#[test]
fn a_silent_node_keeps_its_jobs_and_gets_nothing_new() {
    // b heartbeats but its agent did not answer (restarting): its job still counts, so no
    // replacement starts; the new job goes to a.
    let mut b = node("b", true);
    b.silent = true;
    let jobs = [job("j1", "hello", 1, "b", Phase::Up, true)];
    let actions = plan(&[web("hello", 1, 2)], &[node("a", true), b], &jobs);
    assert_eq!(actions, [start("hello", 1, "a")]);
}
