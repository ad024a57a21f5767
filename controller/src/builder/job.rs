//! The build job on a node and the wait for the deploy: the JobSpec of a build, running it
//! while forwarding its output line by line, and waiting until the new release serves.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use paas_api::{ImageRef, JobInput, JobOutput, JobSpec, JobState, LayerInfo, VolumeMount};

use super::{BuildError, Output};
use crate::config::Settings;
use crate::scheduler::labels;
use crate::state::{Controller, NODE_TIMEOUT_MS};
use crate::store::job_state;
use crate::util::unix_ms;

/// Memory of a build container.
const BUILD_MEMORY_BYTES: u64 = 1024 * 1024 * 1024;
const BUILD_PIDS: u64 = 4096;
/// How long a build may run after its output stream ended early.
const BUILD_STATUS_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A deploy whose jobs crashed this many times in a row fails without waiting longer.
const CRASHES_BEFORE_GIVING_UP: u32 = 3;
/// How long to wait for a node to come up before a build gives up.
const NODE_WAIT: Duration = Duration::from_secs(15);

/// What a build is about.
#[derive(Debug, Clone)]
pub struct BuildInput {
    pub id: String,
    pub app: String,
    /// The full commit id.
    pub rev: String,
    /// The stack the build runs on (see `stack::choose`); empty means the default.
    pub stack: String,
    /// Who pushed (a user's name, or `~admin`), when the hook said.
    pub pusher: Option<String>,
    /// Rebuild every Dockerfile step (no layer cache).
    pub no_cache: bool,
}

/// The name of an app's build cache volume on the nodes: keyed by the app's permanent
/// number (`AppRow.id`), never by its name, so a rename keeps the cache and a new app under
/// a destroyed app's name starts with none (destroy deletes it on every node).
pub fn cache_volume(app_id: u32) -> String {
    format!("cache-{app_id}")
}

/// The JobSpec of a build (see docs/controller.md, "Build") of the app numbered `app_id`.
pub fn build_job_spec(
    settings: &Settings,
    input: &BuildInput,
    job_id: &str,
    app_id: u32,
) -> JobSpec {
    let base = &settings.internal_url;
    let stack = if input.stack.is_empty() {
        settings.stack.clone()
    } else {
        input.stack.clone()
    };
    let inputs = vec![
        JobInput {
            url: format!("{base}/internal/builds/{}/source.tar", input.id),
            path: "/app".into(),
            readonly: false,
        },
        JobInput {
            url: format!("{base}/internal/buildpacks.tar"),
            path: "/buildpacks".into(),
            readonly: true,
        },
        JobInput {
            url: format!("{base}/internal/builds/{}/env.tar", input.id),
            path: "/env".into(),
            readonly: false,
        },
    ];
    let mut env = host_build_env(
        &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        |k| std::env::var(k).ok(),
    );
    env.extend([
        ("STACK".to_string(), stack.clone()),
        ("SOURCE_VERSION".to_string(), input.rev.clone()),
        ("BUILD_DIR".to_string(), "/app".to_string()),
        ("CACHE_DIR".to_string(), "/cache".to_string()),
        ("ENV_DIR".to_string(), "/env".to_string()),
    ]);
    let labels = BTreeMap::from([
        (labels::KIND.to_string(), labels::KIND_BUILD.to_string()),
        (labels::APP.to_string(), input.app.clone()),
        (labels::BUILD.to_string(), input.id.clone()),
    ]);
    JobSpec {
        id: job_id.into(),
        labels,
        image: ImageRef {
            registry: base.clone(),
            repository: format!("stacks/{stack}"),
            reference: "latest".into(),
        },
        command: vec!["/bin/sh".into(), "/buildpacks/bin/build".into()],
        env,
        working_dir: Some("/app".into()),
        port: None,
        memory_bytes: Some(BUILD_MEMORY_BYTES),
        pids_limit: Some(BUILD_PIDS),
        cpu_millicores: settings.build_limits.cpu_millicores,
        cpu_shares: None,
        inputs,
        // `paas builds:create --no-cache`: `/cache` starts empty (in the job's own root).
        volumes: if input.no_cache {
            Vec::new()
        } else {
            vec![VolumeMount {
                name: cache_volume(app_id),
                path: "/cache".into(),
                readonly: false,
            }]
        },
        output: Some(JobOutput {
            path: "/app".into(),
            registry: base.clone(),
            repository: format!("apps/{}", input.app),
        }),
        hostname: None,
        user_namespace: true,
        tenant: Some(app_id),
        api_access: false,
        guests: Vec::new(),
    }
}

/// Proxy variables passed from the controller's environment into build containers.
const PROXY_VARS: [&str; 6] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// What a build needs from the host to reach package registries: `PAAS_RESOLV_CONF` (the
/// host's `/etc/resolv.conf` without loopback name servers, which a container cannot
/// reach; the builder writes it into the stack's empty resolv.conf) and the proxy
/// variables the controller runs with.
pub fn host_build_env(
    resolv_conf: &str,
    var: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let lines: Vec<&str> = resolv_conf
        .lines()
        .map(str::trim)
        .filter(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(ip)) => ip
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| !ip.is_loopback()),
                (Some("search" | "options"), Some(_)) => true,
                _ => false,
            }
        })
        .collect();
    if lines.iter().any(|l| l.starts_with("nameserver")) {
        env.insert("PAAS_RESOLV_CONF".to_string(), lines.join("\n"));
    }
    for key in PROXY_VARS {
        if let Some(value) = var(key).filter(|v| !v.is_empty()) {
            env.insert(key.to_string(), value);
        }
    }
    env
}

/// The up node with the fewest jobs, waiting a little for one to appear (the local agent
/// may still be starting). Returns (name, url).
pub async fn pick_node(c: &Controller, out: &mut Output) -> Result<(String, String), BuildError> {
    let deadline = tokio::time::Instant::now() + NODE_WAIT;
    let mut told = false;
    loop {
        let now = unix_ms();
        let nodes = c.store.list_nodes().await.map_err(BuildError::Store)?;
        let live = c
            .heartbeats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let best = nodes
            .into_iter()
            .filter(|n| now - n.last_seen_ms <= NODE_TIMEOUT_MS)
            .min_by_key(|n| {
                (
                    live.get(&n.name).map(|l| l.jobs).unwrap_or(0),
                    n.name.clone(),
                )
            });
        if let Some(n) = best {
            return Ok((n.name, n.url));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(BuildError::NoNode);
        }
        if !told {
            out.line("-----> Waiting for a node to run the build on...")
                .await;
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Starts the build job, forwards its output line by line and returns the layer it pushed.
pub async fn run_build_job(
    c: &Controller,
    node_url: &str,
    spec: &JobSpec,
    out: &mut Output,
) -> Result<LayerInfo, BuildError> {
    c.agents
        .start_job(node_url, spec)
        .await
        .map_err(|e| BuildError::Start(e.user_message()))?;
    super::leftovers::kill_point("building");
    // Noticed even while the build prints nothing (a silent `sleep` in a buildpack).
    let closed = out.closed();
    tokio::pin!(closed);
    match c.agents.follow_logs(node_url, &spec.id).await {
        Ok(resp) => {
            let mut stream = resp.bytes_stream();
            let mut pending: Vec<u8> = Vec::new();
            loop {
                let chunk = tokio::select! {
                    chunk = stream.next() => chunk,
                    () = &mut closed => return Err(BuildError::ClientGone),
                };
                let Some(chunk) = chunk else { break };
                match chunk {
                    Ok(bytes) => pending.extend_from_slice(&bytes),
                    Err(e) => {
                        tracing::warn!(job = %spec.id, "the build's output stream broke: {e}");
                        break;
                    }
                }
                while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=pos).collect();
                    let text = String::from_utf8_lossy(&line[..line.len() - 1]);
                    out.line(text.trim_end_matches('\r')).await;
                }
                if out.gone() {
                    return Err(BuildError::ClientGone);
                }
            }
            if !pending.is_empty() {
                out.line(String::from_utf8_lossy(&pending).trim_end()).await;
            }
        }
        Err(e) => {
            tracing::warn!(job = %spec.id, "following the build's output failed: {e}");
            out.line(" !     The build output is not available; waiting for the build to end.")
                .await;
        }
    }

    let deadline = tokio::time::Instant::now() + BUILD_STATUS_TIMEOUT;
    let status = loop {
        let status = c
            .agents
            .job(node_url, &spec.id)
            .await
            .map_err(|e| BuildError::Lost(e.to_string()))?;
        if matches!(status.state, JobState::Down | JobState::Crashed) {
            break status;
        }
        if out.gone() {
            return Err(BuildError::ClientGone);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(BuildError::Lost(
                "the build did not finish in 30 minutes after its output ended".into(),
            ));
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = &mut closed => return Err(BuildError::ClientGone),
        }
    };
    let reason = status
        .exit
        .as_ref()
        .map(|e| e.reason.clone())
        .unwrap_or_else(|| "no exit status".into());
    match (status.state, status.output_layer) {
        (JobState::Down, Some(layer)) => Ok(layer),
        (JobState::Down, None) => Err(BuildError::NoLayer),
        _ => Err(BuildError::Failed { reason }),
    }
}

/// How long a job of a non-web process type must stay up before its deploy counts as
/// done (a worker that exits at once crashes well within it).
const WORKER_SETTLE: Duration = Duration::from_secs(5);
/// Lines of the failing process's output shown in the push.
const FAILING_LINES: usize = 20;

/// Waits until release `version` runs what its formation starts (`types`): a web job of
/// it up, healthy and routed when `web` is among them, and a job of each other type up
/// for [`WORKER_SETTLE`]. Nothing to start is done at once. A type that crash-loops fails
/// it; on time-out, says why as well as the store knows.
pub async fn wait_deployed(
    c: &Controller,
    app: &str,
    version: u32,
    types: &std::collections::BTreeSet<String>,
    timeout: Duration,
) -> Result<(), BuildError> {
    if types.is_empty() {
        return Ok(());
    }
    let has_web = types.contains("web");
    let mut rx = c.scheduler.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    // Job id → when it was first seen up (non-web types).
    let mut up_since: std::collections::HashMap<String, tokio::time::Instant> =
        std::collections::HashMap::new();
    let crashes = loop {
        let snap = rx.borrow_and_update().clone();
        let now = tokio::time::Instant::now();
        let of_version = |id: &String| {
            snap.jobs
                .iter()
                .any(|j| &j.id == id && j.app == app && j.release == version)
        };
        let web_done = !has_web
            || snap
                .routed
                .get(app)
                .is_some_and(|ids| ids.iter().any(of_version));
        let up: Vec<&crate::scheduler::ObservedJob> = snap
            .jobs
            .iter()
            .filter(|j| j.app == app && j.release == version && j.healthy)
            .collect();
        up_since.retain(|id, _| up.iter().any(|j| &j.id == id));
        for j in &up {
            up_since.entry(j.id.clone()).or_insert(now);
        }
        let mut next_settle: Option<tokio::time::Instant> = None;
        let others_done = types.iter().filter(|t| *t != "web").all(|t| {
            up.iter().filter(|j| &j.process_type == t).any(|j| {
                let settled = up_since[&j.id] + WORKER_SETTLE;
                if settled <= now {
                    true
                } else {
                    next_settle = Some(next_settle.map_or(settled, |n| n.min(settled)));
                    false
                }
            })
        });
        if web_done && others_done {
            return Ok(());
        }
        let crashes = snap
            .crashing
            .get(&(app.to_string(), version))
            .copied()
            .unwrap_or(0);
        if crashes >= CRASHES_BEFORE_GIVING_UP {
            break crashes;
        }
        if let Some(why) = snap.failed_checks.get(&(app.to_string(), version)) {
            return Err(BuildError::NotServing {
                version,
                detail: why.clone(),
            });
        }
        let wake = next_settle.map_or(deadline, |n| n.min(deadline));
        match tokio::time::timeout_at(wake, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break crashes,
            Err(_) if tokio::time::Instant::now() >= deadline => break crashes,
            Err(_) => {}
        }
    };
    let jobs = c.store.release_jobs(app, version).await.unwrap_or_default();
    let names = types.iter().cloned().collect::<Vec<_>>().join(", ");
    let what = if types.len() == 1 {
        format!("{names} process")
    } else {
        format!("processes ({names})")
    };
    let crashed = jobs.iter().find(|j| j.exit_reason.is_some());
    // Name the type that failed when one did (a crash-looping worker, not "web, worker").
    let what = crashed.map_or(what, |j| format!("{} process", j.process_type));
    let last_exit = crashed.and_then(|j| j.exit_reason.clone());
    let secs = timeout.as_secs();
    let detail = match last_exit {
        Some(reason) if crashes >= CRASHES_BEFORE_GIVING_UP => {
            format!("its {what} crashed {crashes} times in a row (last: {reason})")
        }
        Some(reason) => format!("its {what} ended within {secs} s: {reason}"),
        None if has_web && jobs.iter().any(|j| j.state == job_state::UP) => format!(
            "its web process runs but did not accept connections on $PORT ({}) within {secs} s",
            crate::scheduler::APP_PORT
        ),
        None if jobs.is_empty() => {
            format!("no job could be started for it within {secs} s (is a node up?)")
        }
        None => format!("its {what} was still starting after {secs} s"),
    };
    Err(BuildError::NotServing { version, detail })
}

/// Shows the last [`FAILING_LINES`] lines of the output of release `version`'s latest job
/// that ended (the kept output of a removed job, or its agent's log), so the push says why
/// a process crashed without `paas logs`.
pub async fn show_failing_output(c: &Controller, app: &str, version: u32, out: &mut Output) {
    let jobs = c.store.release_jobs(app, version).await.unwrap_or_default();
    let Some(job) = jobs
        .iter()
        .find(|j| j.exit_reason.is_some())
        .or_else(|| jobs.first())
    else {
        return;
    };
    let mut text = c.store.job_last_log(&job.id).await.ok().flatten();
    if text.as_deref().is_none_or(str::is_empty) {
        let url = c
            .store
            .list_nodes()
            .await
            .unwrap_or_default()
            .into_iter()
            .find(|n| n.name == job.node)
            .map(|n| n.url);
        if let Some(url) = url {
            text = c.agents.logs(&url, &job.id).await.ok();
        }
    }
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        out.line(format!(
            " !     {} ({}) printed nothing",
            job.process_type,
            job.exit_reason.as_deref().unwrap_or("no exit status")
        ))
        .await;
        return;
    };
    out.line(format!(
        " !     Last lines of {} ({}):",
        job.process_type,
        job.exit_reason.as_deref().unwrap_or("still running")
    ))
    .await;
    for line in crate::store::last_lines(&text, FAILING_LINES).lines() {
        out.line(format!(" !     | {}", line.trim_end_matches('\r')))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_build_env_keeps_reachable_name_servers_and_proxies() {
        let resolv = "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch x.y\n\
                      nameserver ::1\noptions edns0\nnameserver bogus\n";
        let env = host_build_env(resolv, |k| {
            (k == "HTTPS_PROXY").then(|| "http://10.0.0.9:3128".to_string())
        });
        assert_eq!(
            env["PAAS_RESOLV_CONF"],
            "nameserver 10.0.0.2\nsearch x.y\noptions edns0"
        );
        assert_eq!(env["HTTPS_PROXY"], "http://10.0.0.9:3128");
        assert_eq!(env.len(), 2);
        let env = host_build_env("nameserver 127.0.0.53\nsearch x\n", |_| None);
        assert!(env.is_empty(), "{env:?}");
    }

    #[test]
    fn build_job_spec_matches_the_contract() {
        let settings = Settings::new(
            "/d".into(),
            "127.0.0.1:8080".parse().unwrap(),
            8000,
            "localhost",
        )
        .unwrap();
        let input = BuildInput {
            id: "abc123".into(),
            app: "hello".into(),
            rev: "0123456789abcdef0123456789abcdef01234567".into(),
            stack: String::new(),
            pusher: None,
            no_cache: false,
        };
        let on_bookworm = BuildInput {
            stack: "bookworm".into(),
            ..input.clone()
        };
        let spec = build_job_spec(&settings, &on_bookworm, "build-abc123", 7);
        assert_eq!(spec.image.repository, "stacks/bookworm");
        assert_eq!(spec.env["STACK"], "bookworm");
        let spec = build_job_spec(&settings, &input, "build-abc123", 7);
        assert_eq!(spec.image.registry, "http://127.0.0.1:8080");
        assert_eq!(spec.image.repository, "stacks/tiny");
        assert_eq!(spec.image.reference, "latest");
        assert_eq!(spec.command, ["/bin/sh", "/buildpacks/bin/build"]);
        let paths: Vec<(&str, bool)> = spec
            .inputs
            .iter()
            .map(|i| (i.path.as_str(), i.readonly))
            .collect();
        assert_eq!(
            paths,
            [("/app", false), ("/buildpacks", true), ("/env", false)]
        );
        assert_eq!(
            spec.inputs[0].url,
            "http://127.0.0.1:8080/internal/builds/abc123/source.tar"
        );
        assert_eq!(
            spec.volumes[0].name, "cache-7",
            "keyed by the number, not the name"
        );
        let fresh = BuildInput {
            no_cache: true,
            ..input.clone()
        };
        assert!(
            build_job_spec(&settings, &fresh, "build-abc123", 7)
                .volumes
                .is_empty(),
            "--no-cache: no kept cache mounted"
        );
        assert_eq!(spec.tenant, Some(7));
        assert_eq!(spec.volumes[0].path, "/cache");
        assert_eq!(spec.env["SOURCE_VERSION"], input.rev);
        assert_eq!(spec.env["STACK"], "tiny");
        assert_eq!(spec.env["ENV_DIR"], "/env");
        let output = spec.output.unwrap();
        assert_eq!(
            (output.path.as_str(), output.repository.as_str()),
            ("/app", "apps/hello")
        );
        assert_eq!(spec.memory_bytes, Some(1 << 30));
        assert_eq!(spec.cpu_millicores, Some(1000), "one core by default");
        assert_eq!(spec.labels["paas.kind"], "build");
    }
}
