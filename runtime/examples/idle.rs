//! `bench/run runtime-idle`: starts N idle `sleep` containers through the runtime library
//! the way the node agent does (default options, an overlay rootfs per container, calls
//! from a pool of worker threads), then reports what they cost on the runtime's side:
//! the caller's RSS growth per container and the processes that are not the containers'
//! own (a shim per container would show up there).
//!
//! `cargo run --release --example idle -- [N] [WORKDIR]` (root). Prints key=value lines.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use paas_runtime::{ContainerSpec, Network, Resources, Runtime, RuntimeConfig};

/// A field of /proc/self/status in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Every process on the host: (pid, ppid).
fn processes() -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if let Some(ppid) = ppid {
            out.push((pid, ppid));
        }
    }
    out
}

fn busybox_layer(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    for d in ["etc", "tmp", "proc", "dev", "sys"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("/bin/busybox");
    for a in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(a)).unwrap();
    }
}

fn spec(id: String, layer: &Path, log: &Path) -> ContainerSpec {
    ContainerSpec {
        hostname: id.clone(),
        id,
        layers: vec![layer.to_owned()],
        args: vec!["sleep".into(), "100000".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        user: None,
        mounts: vec![],
        network: Network::None,
        resources: Resources {
            memory_bytes: Some(64 << 20),
            pids_max: Some(100),
            cpu_shares: None,
        },
        stdout: log.to_owned(),
        stderr: log.to_owned(),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(200, |a| a.parse().expect("N"));
    let work = PathBuf::from(args.next().unwrap_or_else(|| "/tmp/rt4-idle".into()));
    let _ = std::fs::remove_dir_all(&work);
    let layer = work.join("layer");
    busybox_layer(&layer);
    let log = work.join("out.log");
    let rt = Arc::new(
        Runtime::new(RuntimeConfig {
            state_dir: work.join("state"),
            cgroup_parent: "rt4-idle".into(),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
        })
        .unwrap(),
    );
    let me = std::process::id().to_string();
    // Warm up the allocator, the thread pool and the code paths with one container.
    let warm = spec("warm".into(), &layer, &log);
    rt.run(&warm).unwrap();
    rt.delete("warm", true).unwrap();

    let procs_before = processes().len();
    let rss_before = status_kib(&me, "VmRSS");
    let t0 = Instant::now();
    // Two workers, as the agent's blocking pool would run concurrent job starts.
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let rt = rt.clone();
            let (layer, log) = (layer.clone(), log.clone());
            std::thread::spawn(move || {
                for i in (w..n).step_by(2) {
                    rt.run(&spec(format!("idle{i}"), &layer, &log)).unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let elapsed = t0.elapsed();
    let rss_after = status_kib(&me, "VmRSS");
    let all = processes();
    let states = rt.list().unwrap();
    let inits: Vec<i32> = states.iter().map(|s| s.pid).collect();
    let my_pid: i32 = me.parse().unwrap();
    // Our children that are not container inits: a shim or helper per container.
    let other_children = all
        .iter()
        .filter(|(pid, ppid)| *ppid == my_pid && !inits.contains(pid))
        .count();
    let container_rss: u64 = inits
        .iter()
        .map(|p| status_kib(&p.to_string(), "VmRSS"))
        .sum();
    let growth = rss_after.saturating_sub(rss_before);
    println!("containers={}", states.len());
    println!("start_seconds={:.2}", elapsed.as_secs_f64());
    println!("caller_rss_before_kib={rss_before}");
    println!("caller_rss_after_kib={rss_after}");
    println!(
        "caller_rss_growth_per_container_kib={:.1}",
        growth as f64 / n as f64
    );
    println!("processes_added={}", all.len().saturating_sub(procs_before));
    println!(
        "runtime_processes_per_container={:.2}",
        other_children as f64 / n as f64
    );
    println!("container_init_rss_total_kib={container_rss}");

    for s in &states {
        rt.delete(&s.id, true).unwrap();
    }
    let _ = rt.remove_cgroup_parent();
    let _ = std::fs::remove_dir_all(&work);
}
