//! `bench/run scheduler`: times one call of the pure planner placing 10,000 jobs (1,000 apps
//! × web=10, 512 MiB each, three image layers per app with a shared base) onto 1,000 nodes
//! (64 GiB each; every node caches the base layer, every tenth one an app's layers).
//! Prints the median of 5 calls: `scheduler: <ms> ms for 10000 jobs on 1000 nodes ratio <ms/50>`.

use std::time::Instant;

use paas_controller::scheduler::{plan, Action, Formation, NodeInfo};

fn main() {
    let apps = 1_000;
    let per_app = 10;
    let node_count = 1_000;
    let desired: Vec<Formation> = (0..apps)
        .map(|a| Formation {
            app: format!("app{a:04}"),
            process_type: "web".into(),
            count: per_app,
            release: 1,
            memory_bytes: 512 << 20,
            layers: vec![
                "sha256:base".into(),
                format!("sha256:deps{}", a % 50),
                format!("sha256:app{a}"),
            ],
            pinned: None,
        })
        .collect();
    let nodes: Vec<NodeInfo> = (0..node_count)
        .map(|n| {
            let mut layers = std::collections::BTreeSet::from(["sha256:base".to_string()]);
            if n % 10 == 0 {
                layers.insert(format!("sha256:deps{}", n % 50));
                layers.insert(format!("sha256:app{n}"));
            }
            NodeInfo {
                name: format!("node{n:04}"),
                up: true,
                draining: false,
                silent: false,
                memory_bytes: 64 << 30,
                layers,
            }
        })
        .collect();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let actions = plan(&desired, &nodes, &[]);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        let starts = actions
            .iter()
            .filter(|a| matches!(a, Action::Start { .. }))
            .count();
        assert_eq!(
            starts,
            (apps * per_app) as usize,
            "every job must be placed"
        );
    }
    times.sort_by(f64::total_cmp);
    let ms = times[times.len() / 2];
    println!(
        "scheduler: {ms:.1} ms for {} jobs on {node_count} nodes ratio {:.2}",
        apps * per_app,
        ms / 50.0
    );
}
