//! Turning a [`JobSpec`] into a runtime [`ContainerSpec`]: spec validation, input
//! tarball downloads, and the argv/env/cwd/user rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use paas_api::JobSpec;
use paas_runtime::{
    BindMount, ContainerOptions, ContainerSpec, CpuQuota, IdMappings, Network, Resources,
};
use tokio::io::AsyncWriteExt;

use crate::images::{self, unpack, Image};

/// PATH when neither the image nor the job sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Errors fetching one input tarball.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{0}")]
    Http(#[source] reqwest::Error),
    #[error("{0}")]
    Status(reqwest::StatusCode),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("unpacking: {0}")]
    Unpack(#[source] unpack::UnpackError),
}

/// Checks a job spec; the error says which field is wrong and what is expected.
pub fn validate(spec: &JobSpec) -> Result<(), String> {
    let id_ok = (1..=63).contains(&spec.id.len())
        && spec
            .id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && spec
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !id_ok {
        return Err(format!(
            "invalid job id {:?}: 1 to 63 lowercase letters, digits and dashes, starting with \
             a letter or digit",
            spec.id
        ));
    }
    let reg = &spec.image.registry;
    if !(reg.starts_with("http://") || reg.starts_with("https://")) {
        return Err(format!(
            "image.registry {reg:?} must be a base URL such as http://127.0.0.1:8080"
        ));
    }
    if spec.image.repository.is_empty() || spec.image.reference.is_empty() {
        return Err("image.repository and image.reference must not be empty".into());
    }
    if spec.port == Some(0) {
        return Err(
            "port 0 is not a port: leave it out or give the port the process listens on".into(),
        );
    }
    let abs_path = |what: &str, p: &str| -> Result<(), String> {
        let path = Path::new(p);
        let clean = path.is_absolute()
            && p != "/"
            && path
                .components()
                .all(|c| !matches!(c, std::path::Component::ParentDir));
        if clean {
            Ok(())
        } else {
            Err(format!(
                "{what} {p:?} must be an absolute path other than / and without `..`"
            ))
        }
    };
    for input in &spec.inputs {
        abs_path("inputs[].path", &input.path)?;
        if !(input.url.starts_with("http://") || input.url.starts_with("https://")) {
            return Err(format!(
                "inputs[].url {:?} must be an http(s) URL",
                input.url
            ));
        }
    }
    for volume in &spec.volumes {
        abs_path("volumes[].path", &volume.path)?;
        let mut bytes = volume.name.bytes();
        let ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
            && volume.name.len() <= 128;
        if !ok {
            return Err(format!(
                "invalid volume name {:?}: lowercase letters, digits, `_`, `.` and `-`, \
                 starting with a letter or digit",
                volume.name
            ));
        }
    }
    if let Some(wd) = &spec.working_dir {
        if !wd.starts_with('/') {
            return Err(format!("working_dir {wd:?} must be absolute"));
        }
    }
    if let Some(output) = &spec.output {
        if output.path != "/" && !spec.inputs.iter().any(|i| i.path == output.path) {
            return Err(format!(
                "output.path {:?} must be `/` or the path of one of the job's inputs",
                output.path
            ));
        }
        if !(output.registry.starts_with("http://") || output.registry.starts_with("https://"))
            || output.repository.is_empty()
        {
            return Err("output.registry must be an http(s) URL and output.repository set".into());
        }
    }
    if let Some(h) = &spec.hostname {
        let ok = (1..=63).contains(&h.len())
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !ok {
            return Err(format!("invalid hostname {h:?}"));
        }
    }
    for key in spec.env.keys() {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(format!("invalid env name {key:?}"));
        }
    }
    if let Some(t) = spec.tenant {
        crate::network::tables::tenant_mark(Some(t), std::net::Ipv4Addr::UNSPECIFIED)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// GETs `url` with the bearer token and unpacks the body (gzip or plain tar) into `dir`,
/// which is created fresh.
pub async fn fetch_input(
    client: &reqwest::Client,
    token: &str,
    url: &str,
    dir: &Path,
) -> Result<(), InputError> {
    let io = |what: String| move |source| InputError::Io { what, source };
    let mut resp = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(InputError::Http)?;
    if !resp.status().is_success() {
        return Err(InputError::Status(resp.status()));
    }
    let download = dir.with_extension("download");
    let mut file = tokio::fs::File::create(&download)
        .await
        .map_err(io(format!("creating {}", download.display())))?;
    while let Some(chunk) = resp.chunk().await.map_err(InputError::Http)? {
        file.write_all(&chunk)
            .await
            .map_err(io(format!("writing {}", download.display())))?;
    }
    file.flush()
        .await
        .map_err(io(format!("writing {}", download.display())))?;
    drop(file);
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let (src, dest) = (download.clone(), dir.to_path_buf());
    let result = tokio::task::spawn_blocking(move || {
        unpack::unpack_file(&src, &dest, unpack::Options::default())
    })
    .await
    .map_err(|e| InputError::Io {
        what: "unpacking".into(),
        source: std::io::Error::other(e),
    })?;
    let _ = std::fs::remove_file(&download);
    let report = result.map_err(InputError::Unpack)?;
    for skipped in &report.skipped {
        tracing::warn!(%url, "skipped input entry {skipped}");
    }
    Ok(())
}

/// Builds the runtime spec: layers top-most first; argv = command or Entrypoint + Cmd;
/// env = image Env overlaid by the job's, PATH defaulted; cwd = working_dir, image
/// WorkingDir or `/`; user from the image config.
pub fn container_spec(
    spec: &JobSpec,
    image: &Image,
    mounts: Vec<BindMount>,
    netns: PathBuf,
    (stdout, stderr): (PathBuf, PathBuf),
) -> Result<ContainerSpec, String> {
    let args = if spec.command.is_empty() {
        let mut argv = image.config.entrypoint.clone();
        argv.extend(image.config.cmd.iter().cloned());
        argv
    } else {
        spec.command.clone()
    };
    if args.is_empty() {
        return Err(
            "the job has no command and the image config has neither Entrypoint nor Cmd".into(),
        );
    }
    let layers: Vec<PathBuf> = image.layers.iter().rev().cloned().collect();
    let user = match &image.config.user {
        Some(u) => Some(images::resolve_user(u, &layers)?),
        None => None,
    };
    Ok(ContainerSpec {
        id: spec.id.clone(),
        layers,
        args,
        env: merge_env(&image.config.env, &spec.env),
        cwd: spec
            .working_dir
            .clone()
            .or_else(|| image.config.working_dir.clone())
            .unwrap_or_else(|| "/".to_string()),
        hostname: spec.hostname.clone().unwrap_or_else(|| spec.id.clone()),
        user,
        mounts,
        network: Network::Join(netns),
        resources: Resources {
            memory_bytes: spec.memory_bytes,
            pids_max: spec.pids_limit,
            cpu_shares: spec.cpu_shares,
        },
        stdout,
        stderr,
    })
}

/// The runtime options of a job: the runtime's defaults without CAP_NET_RAW (no raw or
/// packet sockets: a job cannot forge frames on the bridge nor sniff it), plus a user
/// namespace mapping container ids `0..65536` onto the range at host id `userns_base`
/// (see [`super::userns`]) when the job has one, and the CFS quota of
/// [`JobSpec::cpu_millicores`] when it is less than the node's `node_cpus` cores.
///
/// A quota of every core of the node limits nothing (the job could not use more anyway)
/// but still costs: CFS bandwidth control takes runtime from the group's pool on the
/// scheduler's hot path, and a context-switch-heavy service pays for it. `pgbench -S`
/// against a PostgreSQL add-on of plan `standard` (2 cores) on a 2-core node, over the
/// add-on job's loopback, ran a median 15 % faster with the quota removed, with `cpu.stat`
/// `nr_throttled` 0 either way (BENCHMARKS.md, 2026-12-07). The weight (`cpu.shares`)
/// stays.
pub fn container_options(
    spec: &JobSpec,
    userns_base: Option<u32>,
    node_cpus: u32,
) -> ContainerOptions {
    let capabilities = paas_runtime::security::DEFAULT_CAPABILITIES
        .iter()
        .filter(|c| **c != "CAP_NET_RAW")
        .map(|c| c.to_string())
        .collect();
    ContainerOptions {
        capabilities,
        id_mappings: userns_base.map(|base| IdMappings::range(base, super::userns::RANGE_SIZE)),
        cpu_quota: spec
            .cpu_millicores
            .filter(|&m| u64::from(m) < u64::from(node_cpus) * 1000)
            .map(|m| CpuQuota {
                quota_us: u64::from(m.max(10)) * (CPU_PERIOD_US / 1000),
                period_us: CPU_PERIOD_US,
            }),
        ..ContainerOptions::default()
    }
}

/// The CFS period of [`JobSpec::cpu_millicores`]: 100 ms, the kernel's default.
pub const CPU_PERIOD_US: u64 = 100_000;

/// The CPUs online on this node (at least 1): the cores a quota is measured against in
/// [`container_options`].
pub fn node_cpus() -> u32 {
    // SAFETY: sysconf reads a system value; no pointers are involved.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u32::try_from(n).unwrap_or(1).max(1)
}

/// Image `KEY=VALUE` entries, overridden in place (or appended) by the job's env, with a
/// default PATH when neither sets one.
pub fn merge_env(image_env: &[String], job_env: &BTreeMap<String, String>) -> Vec<String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let set = |k: &str, v: &str, out: &mut Vec<(String, String)>| match out
        .iter_mut()
        .find(|(key, _)| key == k)
    {
        Some(entry) => entry.1 = v.to_string(),
        None => out.push((k.to_string(), v.to_string())),
    };
    for entry in image_env {
        let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
        set(k, v, &mut out);
    }
    for (k, v) in job_env {
        set(k, v, &mut out);
    }
    if !out.iter().any(|(k, _)| k == "PATH") {
        out.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_merges_and_defaults_path() {
        let mut job = BTreeMap::new();
        job.insert("B".to_string(), "job".to_string());
        job.insert("C".to_string(), "3".to_string());
        let env = merge_env(&["A=1".into(), "B=image".into()], &job);
        assert_eq!(
            env,
            vec![
                format!("PATH={DEFAULT_PATH}"),
                "A=1".into(),
                "B=job".into(),
                "C=3".into()
            ]
        );
        let env = merge_env(&["PATH=/x".into()], &BTreeMap::new());
        assert_eq!(env, vec!["PATH=/x".to_string()]);
    }

    fn spec(json: &str) -> JobSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_user_namespace_maps_the_jobs_range() {
        let image = r#""image":{"registry":"r","repository":"x","reference":"1"}"#;
        let plain = spec(&format!(r#"{{"id":"j1",{image}}}"#));
        assert!(!plain.user_namespace, "old controllers send no field");
        assert_eq!(container_options(&plain, None, 64).id_mappings, None);
        let base = 1 << 30;
        let maps = container_options(&plain, Some(base), 64)
            .id_mappings
            .unwrap();
        assert_eq!(maps.host_id(0, false), Some(base));
        assert_eq!(maps.host_id(65_535, true), Some(base + 65_535));
        assert_eq!(maps.host_id(65_536, false), None);
    }

    #[test]
    fn jobs_get_the_default_capabilities_but_net_raw() {
        let image = r#""image":{"registry":"r","repository":"x","reference":"1"}"#;
        let caps =
            container_options(&spec(&format!(r#"{{"id":"j1",{image}}}"#)), None, 64).capabilities;
        assert!(!caps.iter().any(|c| c == "CAP_NET_RAW"), "{caps:?}");
        assert_eq!(
            caps.len() + 1,
            paas_runtime::security::DEFAULT_CAPABILITIES.len()
        );
        assert!(caps.iter().any(|c| c == "CAP_NET_BIND_SERVICE"), "{caps:?}");
    }

    #[test]
    fn cpu_limits_become_a_quota_and_shares() {
        let image = r#""image":{"registry":"r","repository":"x","reference":"1"}"#;
        let half = spec(&format!(
            r#"{{"id":"j1",{image},"cpu_millicores":500,"cpu_shares":512}}"#
        ));
        let q = container_options(&half, None, 64).cpu_quota.unwrap();
        assert_eq!((q.quota_us, q.period_us), (50_000, 100_000));
        let two = spec(&format!(r#"{{"id":"j1",{image},"cpu_millicores":2000}}"#));
        assert_eq!(
            container_options(&two, None, 64)
                .cpu_quota
                .unwrap()
                .quota_us,
            200_000
        );
        // The kernel refuses quotas under 1 ms.
        let tiny = spec(&format!(r#"{{"id":"j1",{image},"cpu_millicores":1}}"#));
        assert_eq!(
            container_options(&tiny, None, 64)
                .cpu_quota
                .unwrap()
                .quota_us,
            1_000
        );
    }

    #[test]
    fn a_limit_of_every_core_of_the_node_is_no_quota() {
        let image = r#""image":{"registry":"r","repository":"x","reference":"1"}"#;
        let two = spec(&format!(
            r#"{{"id":"j1",{image},"cpu_millicores":2000,"cpu_shares":2048}}"#
        ));
        // Two cores on a two-core node (an add-on of plan standard): no quota, the weight stays.
        assert_eq!(container_options(&two, None, 2).cpu_quota, None);
        assert_eq!(container_options(&two, None, 1).cpu_quota, None);
        // Less than every core: the quota as before.
        assert_eq!(
            container_options(&two, None, 3).cpu_quota.unwrap().quota_us,
            200_000
        );
        assert!(node_cpus() >= 1);
    }

    #[test]
    fn validation_catches_bad_fields() {
        let base =
            r#"{"id":"j1","image":{"registry":"http://r","repository":"a","reference":"latest"}"#;
        assert!(validate(&spec(&format!("{base}}}"))).is_ok());
        let bad_id = format!("{}}}", base.replace("j1", "J_1"));
        assert!(validate(&spec(&bad_id)).unwrap_err().contains("job id"));
        let bad_output = format!(
            r#"{base},"output":{{"path":"/app","registry":"http://r","repository":"apps/x"}}}}"#
        );
        assert!(validate(&spec(&bad_output))
            .unwrap_err()
            .contains("output.path"));
        let bad_input = format!(r#"{base},"inputs":[{{"url":"http://x","path":"app"}}]}}"#);
        assert!(validate(&spec(&bad_input))
            .unwrap_err()
            .contains("absolute"));
        let bad_volume = format!(r#"{base},"volumes":[{{"name":"../x","path":"/c"}}]}}"#);
        assert!(validate(&spec(&bad_volume))
            .unwrap_err()
            .contains("volume name"));
        for bad in [0u64, 1 << 31] {
            let bad_tenant = format!(r#"{base},"tenant":{bad}}}"#);
            let err = validate(&spec(&bad_tenant)).unwrap_err();
            assert!(err.contains("tenant"), "{err}");
        }
    }
}
