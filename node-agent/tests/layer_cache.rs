//! The layer cache's budget (`--layer-cache-bytes`): least recently used layers go first,
//! never a layer a pull holds or a container is made of, and a pruned layer is fetched
//! again when needed. The store-level tests need no root; the agent ones run real
//! containers (a job that keeps running on one image while others come and go).

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{busybox_rootfs_tar, cleanup, config, gzip, need_root, sha256, unique_names};
use common::{FakeRegistry, TarBuilder};
use paas_api::{ImageRef, JobSpec, JobState};
use paas_node_agent::du::disk_usage;
use paas_node_agent::images::{prune, ImageStore};
use paas_node_agent::{jobs, Agent};
use serde_json::json;

const TOKEN: &str = "layer-cache-token";

/// Incompressible bytes, different for every `seed`.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A busybox rootfs plus `extra` bytes of noise in `/data` (so every image has its own
/// layer); no extra: plain busybox.
fn layer(extra: usize, seed: u64) -> Vec<u8> {
    if extra == 0 {
        return busybox_rootfs_tar();
    }
    let mut tar = busybox_rootfs_tar();
    // Drop the two zero blocks that end the archive, then append one more file.
    tar.truncate(tar.len() - 1024);
    tar.extend(
        TarBuilder::new()
            .file("data", &noise(extra, seed), 0o644)
            .finish(),
    );
    tar
}

/// Images `a` (busybox) and `b`, `c`, `d` (busybox + 1 MiB each), tag `latest`.
async fn registry() -> FakeRegistry {
    let registry = FakeRegistry::start(TOKEN).await;
    let config = json!({"architecture": "amd64", "os": "linux",
                        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]}});
    for (i, name) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let extra = if i == 0 { 0 } else { 1 << 20 };
        registry.add_image(
            &format!("img/{name}"),
            "latest",
            &layer(extra, i as u64),
            config.clone(),
        );
    }
    registry
}

fn image(registry: &FakeRegistry, name: &str) -> ImageRef {
    ImageRef {
        registry: registry.url.clone(),
        repository: format!("img/{name}"),
        reference: "latest".into(),
    }
}

fn hex_of(layer_dir: &Path) -> String {
    layer_dir.file_name().unwrap().to_str().unwrap().to_string()
}

/// The digest of image `name`'s one layer.
fn digest(name: &str) -> String {
    let i = ["a", "b", "c", "d"]
        .iter()
        .position(|n| *n == name)
        .unwrap();
    let extra = if i == 0 { 0 } else { 1 << 20 };
    sha256(&gzip(&layer(extra, i as u64)))
}

/// Each image's unpacked size as the cache measures it (pulled into a throwaway store).
async fn sizes(registry: &FakeRegistry, dir: &Path) -> Vec<u64> {
    let probe = ImageStore::open(dir.join("probe"), reqwest::Client::new(), TOKEN.into()).unwrap();
    let mut out = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let img = probe.pull(&image(registry, name)).await.unwrap();
        out.push(disk_usage(&img.layers[0]).unwrap());
    }
    out
}

/// The unpacked layers in a cache dir (by hex) and what they add up to.
fn cached(root: &Path) -> (HashSet<String>, u64) {
    let mut hexes = HashSet::new();
    let mut total = 0;
    for e in std::fs::read_dir(root).unwrap().flatten() {
        let name = e.file_name().into_string().unwrap();
        if name.len() == 64 {
            total += disk_usage(&e.path()).unwrap();
            hexes.insert(name);
        }
    }
    (hexes, total)
}

#[tokio::test]
async fn pruning_removes_the_least_recently_used_and_keeps_pinned_and_used_layers() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry().await;
    let s = sizes(&registry, dir.path()).await;
    let root = dir.path().join("layers");
    // Room for a, c and half of b: one unused layer must go.
    let budget = s[0] + s[1] / 2 + s[2];
    let store = ImageStore::open(root.clone(), reqwest::Client::new(), TOKEN.into())
        .unwrap()
        .with_budget(Some(budget));
    let a = store.pull(&image(&registry, "a")).await.unwrap();
    drop(store.pull(&image(&registry, "b")).await.unwrap());
    drop(store.pull(&image(&registry, "c")).await.unwrap());
    let (a_hex, b_hex) = (hex_of(&a.layers[0]), digest("b")[7..].to_string());
    let c_hex = digest("c")[7..].to_string();
    // a is the oldest, but the pull's Image still holds it: b goes.
    let report = store
        .prune_blocking(|| Ok(HashSet::new()))
        .unwrap()
        .unwrap();
    let removed: Vec<&str> = report.removed.iter().map(|r| r.digest.as_str()).collect();
    assert_eq!(removed, [digest("b")], "{report:?}");
    assert_eq!(report.freed_bytes(), s[1]);
    assert_eq!(report.before_bytes, s[0] + s[1] + s[2]);
    assert!(report.after_bytes <= budget, "{report:?}");
    let (left, total) = cached(&root);
    assert_eq!(left, HashSet::from([a_hex.clone(), c_hex.clone()]));
    assert!(total <= budget);
    assert!(
        !root.join(".meta").join(&b_hex).exists(),
        "b's size record goes too"
    );
    assert!(
        std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with(".tmp")),
        "nothing half-removed is left"
    );
    // Within the budget: nothing to do.
    assert!(store
        .prune_blocking(|| Ok(HashSet::new()))
        .unwrap()
        .is_none());

    // With the pin gone but a container made of c, a goes once the budget is c alone.
    drop(a);
    let store = ImageStore::open(root.clone(), reqwest::Client::new(), TOKEN.into())
        .unwrap()
        .with_budget(Some(s[2]));
    let report = store
        .prune_blocking(|| Ok(HashSet::from([c_hex.clone()])))
        .unwrap()
        .unwrap();
    assert_eq!(report.removed.len(), 1, "{report:?}");
    assert_eq!(report.removed[0].digest, digest("a"));
    assert_eq!(report.in_use_bytes, s[2]);
    assert_eq!(cached(&root).0, HashSet::from([c_hex]));

    // A pruned layer is fetched again by the next pull that needs it.
    let b = store.pull(&image(&registry, "b")).await.unwrap();
    assert!(b.layers[0].join("data").is_file());
    assert_eq!(registry.state.lock().unwrap().blob_gets[&digest("b")], 3);

    // When the runtime cannot say what is in use, nothing is removed.
    let err = store.prune_blocking(|| Err("state dir unreadable".into()));
    assert!(err
        .unwrap_err()
        .to_string()
        .contains("state dir unreadable"));
}

/// Runs `paas-agent cleanup` for the agent's state dir and prefix when dropped.
struct Guard(PathBuf, String);

impl Drop for Guard {
    fn drop(&mut self) {
        cleanup(&self.0, &self.1);
    }
}

async fn start_agent(dir: &Path, budget: u64) -> (Arc<Agent>, Guard) {
    let names = unique_names();
    let guard = Guard(dir.to_path_buf(), names.prefix.clone());
    let mut cfg = config(dir, TOKEN, &names);
    cfg.layer_cache_bytes = Some(budget);
    let agent = Agent::open(cfg).expect("open agent");
    agent.start().await.expect("start agent");
    (agent, guard)
}

fn spec(registry: &FakeRegistry, id: &str, image_name: &str, command: &str) -> JobSpec {
    serde_json::from_value(json!({
        "id": id,
        "image": image(registry, image_name),
        "command": ["sh", "-c", command],
    }))
    .unwrap()
}

async fn run_to_end(agent: &Arc<Agent>, spec: JobSpec) {
    let id = spec.id.clone();
    jobs::create(agent, spec).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !jobs::is_final(agent.jobs.get(&id).unwrap().status().state) {
        assert!(Instant::now() < deadline, "job {id} did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    jobs::delete(agent, &id).await.unwrap();
}

#[tokio::test]
async fn the_agent_prunes_below_its_budget_and_a_running_jobs_layers_stay() {
    if !need_root("the_agent_prunes_below_its_budget_and_a_running_jobs_layers_stay") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let registry = registry().await;
    let s = sizes(&registry, &dir.path().join("probe")).await;
    // a, c and d fit; b, the least recently used, must go when d arrives.
    let budget = s[0] + s[1] / 2 + s[2] + s[3];
    let state = dir.path().join("agent");
    let (agent, _guard) = start_agent(&state, budget).await;
    let root = state.join("layers");
    jobs::create(&agent, spec(&registry, "keep", "a", "sleep 600"))
        .await
        .unwrap();
    for (id, name) in [("jb", "b"), ("jc", "c"), ("jd", "d")] {
        run_to_end(&agent, spec(&registry, id, name, "true")).await;
    }
    // The prune runs in the background after the pull that added d's layer.
    let b_hex = digest("b")[7..].to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while root.join(&b_hex).exists() {
        assert!(
            Instant::now() < deadline,
            "b's layer was not pruned: {:?}",
            cached(&root)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (left, total) = cached(&root);
    let want: HashSet<String> = ["a", "c", "d"]
        .iter()
        .map(|n| digest(n)[7..].to_string())
        .collect();
    assert_eq!(left, want, "a (running), c and d stay");
    assert!(total <= budget, "{total} > {budget}");
    let keep = agent.jobs.get("keep").unwrap().status();
    assert_eq!(keep.state, JobState::Up, "{keep:?}");
    // b is fetched again when a job needs it.
    run_to_end(&agent, spec(&registry, "jb2", "b", "test -f /data")).await;
    assert_eq!(registry.state.lock().unwrap().blob_gets[&digest("b")], 3);
    jobs::delete(&agent, "keep").await.unwrap();
}

#[tokio::test]
async fn layers_in_use_stay_over_the_budget_until_their_job_is_deleted() {
    if !need_root("layers_in_use_stay_over_the_budget_until_their_job_is_deleted") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let registry = registry().await;
    let state = dir.path().join("agent");
    let (agent, _guard) = start_agent(&state, 1).await;
    let root = state.join("layers");
    jobs::create(&agent, spec(&registry, "keep", "a", "sleep 600"))
        .await
        .unwrap();
    let a_hex = digest("a")[7..].to_string();
    // Over the budget, but the only layer belongs to a running container.
    let report = prune::prune_now(&agent).await.unwrap().unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    assert!(report.after_bytes > 1 && report.in_use_bytes == report.after_bytes);
    assert!(root.join(&a_hex).is_dir());
    assert_eq!(agent.jobs.get("keep").unwrap().status().state, JobState::Up);
    jobs::delete(&agent, "keep").await.unwrap();
    // Its container is gone: the next prune (this one or the background's) removes it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while root.join(&a_hex).exists() {
        assert!(Instant::now() < deadline, "a's layer stayed after its job");
        prune::prune_now(&agent).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
