//! OCI runtime bundles: `config.json` (read with the `oci-spec` crate) turned into a
//! [`ContainerSpec`] and [`ContainerOptions`], the OCI `state` JSON, and the default
//! `config.json` that `paas-runtime spec` writes.
//!
//! What maps: `root.path` (the only, read-only overlay lower; writes go to the
//! container's upper dir, the bundle's rootfs is never modified) and `root.readonly`;
//! `process` args/env/cwd/user (uid, gid, additionalGids)/rlimits/`noNewPrivileges`/
//! capabilities (all five sets; a non-root user keeps them);
//! `hostname`; `linux.namespaces` (every type: with a path = joined, without = new,
//! not listed = the runtime's own; see [`namespaces`]);
//! `linux.resources` memory, pids, cpu, blockIO, hugepageLimits, network (see
//! [`extra_resources`]);
//! `maskedPaths`/`readonlyPaths`; `linux.seccomp` present = the default filter.
//!
//! `mounts` outside `/proc`, `/dev` and `/sys`, binds and filesystems in the config's
//! order with their flags, data and propagation ([`config_mounts`]);
//! `linux.rootfsPropagation`; `process.terminal` (with the caller's console socket).
//!
//! What does not: the runtime mounts `/proc`, `/dev` and `/sys` itself, so the config's
//! mounts under those are skipped; some user namespace forms and custom seccomp rules
//! are refused or ignored as documented in `docs/runtime.md`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::Serialize;

use crate::spec::is_under;
use crate::{
    ContainerOptions, ContainerSpec, ContainerState, CpuQuota, Error, Network, Resources, Result,
    Rlimit, Status,
};

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidSpec(msg.into())
}

/// The pty master a `terminal` container sends to its console socket: reads the one
/// message from an accepted connection and takes the descriptor out of it
/// (`SCM_RIGHTS`). For callers of `--console-socket` (the CLI's own `run` relay, tests).
pub fn receive_console(conn: &std::os::unix::net::UnixStream) -> Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd};
    let sys = |what: &str| {
        let what = what.to_string();
        move |source| Error::Sys { what, source }
    };
    let mut data = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut data)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .map_err(sys("receiving the console"))?;
    for c in msg.cmsgs().map_err(sys("reading the console message"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us; nothing else
                // owns it.
                return Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::Start("the console message carried no pty".into()))
}

/// A value of an oci-spec enum as its JSON string (`CAP_CHOWN`, `RLIMIT_NOFILE`).
fn json_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Reads `bundle/config.json` and converts it. `warnings` gets what was skipped.
pub fn load_bundle(
    bundle: &Path,
    id: &str,
    warnings: &mut Vec<String>,
) -> Result<(ContainerSpec, ContainerOptions)> {
    let bundle = std::fs::canonicalize(bundle).map_err(|e| Error::Io {
        what: format!("bundle directory {}", bundle.display()),
        source: e,
    })?;
    let config = bundle.join("config.json");
    let spec = Spec::load(&config).map_err(|e| {
        invalid(format!(
            "{}: {e} (is this an OCI bundle? `paas-runtime spec` writes a default one)",
            config.display()
        ))
    })?;
    convert(&spec, &bundle, id, warnings)
}

/// The conversion behind [`load_bundle`].
pub fn convert(
    spec: &Spec,
    bundle: &Path,
    id: &str,
    warnings: &mut Vec<String>,
) -> Result<(ContainerSpec, ContainerOptions)> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("config.json has no root"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("config.json has no process"))?;
    let mut opts = ContainerOptions {
        readonly_rootfs: root.readonly().unwrap_or(false),
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        inherit_stdio: true,
        terminal: process.terminal() == Some(true),
        bind_rootfs: true,
        minimal_cgroups: true,
        oci_bundle: Some(bundle.to_owned()),
        ..ContainerOptions::default()
    };
    opts.oom_score_adj = process.oom_score_adj();
    let user = process.user();
    opts.additional_gids = user.additional_gids().clone().unwrap_or_default();
    opts.capabilities = Vec::new();
    opts.capability_sets = process.capabilities().as_ref().map(|caps| {
        let names = |set: &Option<oci_spec::runtime::Capabilities>| -> Vec<String> {
            set.as_ref()
                .map(|s| s.iter().map(json_name).collect())
                .unwrap_or_default()
        };
        crate::CapabilitySets {
            bounding: names(caps.bounding()),
            effective: names(caps.effective()),
            permitted: names(caps.permitted()),
            inheritable: names(caps.inheritable()),
            ambient: names(caps.ambient()),
        }
    });
    opts.rlimits = process
        .rlimits()
        .as_ref()
        .map(|v| {
            v.iter()
                .map(|r| Rlimit {
                    kind: json_name(&r.typ()),
                    soft: r.soft(),
                    hard: r.hard(),
                })
                .collect()
        })
        .unwrap_or_default();

    let mut network = Network::Host;
    let mut resources = Resources::default();
    opts.seccomp = false;
    opts.masked_paths = Vec::new();
    opts.readonly_paths = Vec::new();
    opts.namespaces = namespaces(&[])?;
    if let Some(linux) = spec.linux() {
        for ns in linux.namespaces().as_deref().unwrap_or_default() {
            match ns.typ() {
                LinuxNamespaceType::Network => {
                    network = match ns.path() {
                        Some(p) => Network::Join(p.clone()),
                        None => Network::None,
                    }
                }
                LinuxNamespaceType::User
                    if ns.path().is_some()
                        && (linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
                            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())) =>
                {
                    return Err(invalid(
                        "linux.uidMappings/gidMappings are for a new user namespace, but the \
                         user namespace has a path to join: remove one of them",
                    ));
                }
                LinuxNamespaceType::User if ns.path().is_some() => {}
                LinuxNamespaceType::User => {
                    let maps = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
                        m.as_deref()
                            .unwrap_or_default()
                            .iter()
                            .map(|m| crate::IdMap {
                                container_id: m.container_id(),
                                host_id: m.host_id(),
                                size: m.size(),
                            })
                            .collect::<Vec<_>>()
                    };
                    let mappings = crate::IdMappings {
                        uids: maps(linux.uid_mappings()),
                        gids: maps(linux.gid_mappings()),
                    };
                    if mappings.uids.is_empty() || mappings.gids.is_empty() {
                        return Err(invalid(
                            "a user namespace needs linux.uidMappings and linux.gidMappings",
                        ));
                    }
                    opts.id_mappings = Some(mappings);
                }
                LinuxNamespaceType::Time => warnings.push("time namespace ignored".into()),
                _ => {}
            }
        }
        opts.namespaces = namespaces(linux.namespaces().as_deref().unwrap_or_default())?;
        opts.cgroup_path = linux
            .cgroups_path()
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty());
        // An engine that names the cgroup (containerd, Podman, the kubelet) reads it back
        // for stats, pause and ps, as runc keeps it: every hierarchy. Without a name, the
        // fast path joins only what a limit needs.
        opts.minimal_cgroups = opts.cgroup_path.is_none();
        opts.devices = linux
            .devices()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|d| crate::Device {
                path: d.path().to_string_lossy().into_owned(),
                kind: device_kind(d.typ()),
                major: d.major(),
                minor: d.minor(),
                file_mode: d.file_mode(),
                uid: d.uid(),
                gid: d.gid(),
            })
            .collect();
        // As runc: the config's rules, then the default allow-list (the listed devices
        // are added by the runtime).
        let mut rules: Vec<crate::DeviceRule> = linux
            .resources()
            .as_ref()
            .and_then(|r| r.devices().clone())
            .unwrap_or_default()
            .iter()
            .map(|r| crate::DeviceRule {
                allow: r.allow(),
                kind: match r.typ().map_or('a', device_kind) {
                    'u' => 'c',
                    k => k,
                },
                major: r.major().filter(|m| *m >= 0),
                minor: r.minor().filter(|m| *m >= 0),
                access: r.access().clone().unwrap_or_default(),
            })
            .collect();
        if rules.is_empty() {
            rules = crate::devices::default_rules();
        } else {
            rules.extend(crate::devices::default_rules().into_iter().skip(1));
        }
        opts.device_rules = rules;
        if let Some(r) = linux.resources() {
            if let Some(m) = r.memory() {
                resources.memory_bytes = m.limit().filter(|l| *l > 0).map(|l| l as u64);
            }
            if let Some(p) = r.pids() {
                resources.pids_max = (p.limit() > 0).then_some(p.limit() as u64);
            }
            if let Some(c) = r.cpu() {
                resources.cpu_shares = c.shares();
                if let Some(q) = c.quota().filter(|q| *q > 0) {
                    opts.cpu_quota = Some(CpuQuota {
                        quota_us: q as u64,
                        period_us: c.period().unwrap_or(100_000),
                    });
                }
            }
            opts.extra_resources = extra_resources(r, warnings)?;
        }
        opts.masked_paths = linux.masked_paths().clone().unwrap_or_default();
        opts.readonly_paths = linux.readonly_paths().clone().unwrap_or_default();
        opts.seccomp = linux.seccomp().is_some();
        opts.rootfs_propagation = linux.rootfs_propagation().clone();
    }

    opts.annotations = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    if let Some(h) = spec.hooks() {
        let list = |v: &Option<Vec<oci_spec::runtime::Hook>>| -> Vec<crate::Hook> {
            v.as_deref()
                .unwrap_or_default()
                .iter()
                .map(|h| crate::Hook {
                    path: h.path().clone(),
                    args: h.args().clone().unwrap_or_default(),
                    env: h.env().clone().unwrap_or_default(),
                    timeout: h.timeout().filter(|t| *t > 0).map(|t| t as u64),
                })
                .collect()
        };
        opts.hooks = crate::Hooks {
            prestart: list(h.prestart()),
            create_runtime: list(h.create_runtime()),
            create_container: list(h.create_container()),
            start_container: list(h.start_container()),
            poststart: list(h.poststart()),
            poststop: list(h.poststop()),
        };
    }

    opts.fs_mounts = config_mounts(spec, bundle)?;

    let container = ContainerSpec {
        id: id.to_owned(),
        layers: vec![rootfs],
        args: process.args().clone().unwrap_or_default(),
        env: process.env().clone().unwrap_or_default(),
        cwd: process.cwd().to_string_lossy().into_owned(),
        hostname: spec.hostname().clone().unwrap_or_default(),
        user: match (user.uid(), user.gid()) {
            (0, 0) => None,
            (u, g) => Some((u, g)),
        },
        mounts: Vec::new(),
        network,
        resources,
        stdout: PathBuf::from("/dev/null"),
        stderr: PathBuf::from("/dev/null"),
    };
    Ok((container, opts))
}

/// Merges an update of `linux.resources` (runc's `update`) into a container's settings:
/// each section the update has (memory, pids, cpu, blockIO, hugepageLimits, network)
/// replaces the container's; the rest stays.
pub(crate) fn merge_resources(
    r: &oci_spec::runtime::LinuxResources,
    resources: &mut Resources,
    opts: &mut ContainerOptions,
) -> Result<()> {
    let x = extra_resources(r, &mut Vec::new())?;
    if let Some(m) = r.memory() {
        if let Some(limit) = m.limit() {
            resources.memory_bytes = (limit > 0).then_some(limit as u64);
        }
        opts.extra_resources.memory = x.memory;
    }
    if let Some(p) = r.pids() {
        resources.pids_max = (p.limit() > 0).then_some(p.limit() as u64);
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = c.shares() {
            resources.cpu_shares = Some(shares);
        }
        if let Some(q) = c.quota() {
            opts.cpu_quota = (q > 0).then(|| CpuQuota {
                quota_us: q as u64,
                period_us: c.period().unwrap_or(100_000),
            });
        }
        opts.extra_resources.cpu = x.cpu;
    }
    if r.block_io().is_some() {
        opts.extra_resources.block_io = x.block_io;
    }
    if r.hugepage_limits().is_some() {
        opts.extra_resources.hugepages = x.hugepages;
    }
    if r.network().is_some() {
        opts.extra_resources.network = x.network;
    }
    Ok(())
}

/// The parts of `linux.resources` beyond the memory limit, pids, cpu shares and quota,
/// as runc reads them: a 0 means "not set" for the memory sizes, weights and realtime
/// values (as in runc); `swap` -1 is unlimited swap; a period without a positive quota
/// is a period alone. `unified` and `rdma` are ignored with a warning.
fn extra_resources(
    r: &oci_spec::runtime::LinuxResources,
    warnings: &mut Vec<String>,
) -> Result<crate::ExtraResources> {
    use crate::cgroup::{HugepageLimit, InterfacePriority, ThrottleDevice, WeightDevice};
    let mut x = crate::ExtraResources::default();
    let nonzero = |v: Option<i64>| v.filter(|v| *v != 0);
    if let Some(m) = r.memory() {
        x.memory.reservation = nonzero(m.reservation());
        x.memory.swap = nonzero(m.swap());
        x.memory.kernel = nonzero(m.kernel());
        x.memory.kernel_tcp = nonzero(m.kernel_tcp());
        x.memory.swappiness = m.swappiness();
        x.memory.disable_oom_killer = m.disable_oom_killer().unwrap_or(false);
    }
    if let Some(c) = r.cpu() {
        if c.quota().is_none_or(|q| q <= 0) {
            x.cpu.period = c.period().filter(|p| *p > 0);
        }
        x.cpu.realtime_runtime = nonzero(c.realtime_runtime());
        x.cpu.realtime_period = c.realtime_period().filter(|p| *p > 0);
        let list = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        x.cpu.cpus = list(c.cpus());
        x.cpu.mems = list(c.mems());
    }
    let dev = |what: &str, major: i64, minor: i64| -> Result<(u32, u32)> {
        match (u32::try_from(major), u32::try_from(minor)) {
            (Ok(a), Ok(b)) => Ok((a, b)),
            _ => Err(invalid(format!(
                "linux.resources.blockIO.{what}: device {major}:{minor} is not a device \
                 number (major and minor must be 0 or more)"
            ))),
        }
    };
    if let Some(b) = r.block_io() {
        let io = &mut x.block_io;
        io.weight = b.weight().filter(|w| *w != 0);
        io.leaf_weight = b.leaf_weight().filter(|w| *w != 0);
        for d in b.weight_device().as_deref().unwrap_or_default() {
            let (major, minor) = dev("weightDevice", d.major(), d.minor())?;
            io.weight_devices.push(WeightDevice {
                major,
                minor,
                weight: d.weight().filter(|w| *w != 0),
                leaf_weight: d.leaf_weight().filter(|w| *w != 0),
            });
        }
        let throttles = [
            (
                "throttleReadBpsDevice",
                b.throttle_read_bps_device(),
                &mut io.throttle_read_bps,
            ),
            (
                "throttleWriteBpsDevice",
                b.throttle_write_bps_device(),
                &mut io.throttle_write_bps,
            ),
            (
                "throttleReadIOPSDevice",
                b.throttle_read_iops_device(),
                &mut io.throttle_read_iops,
            ),
            (
                "throttleWriteIOPSDevice",
                b.throttle_write_iops_device(),
                &mut io.throttle_write_iops,
            ),
        ];
        for (what, from, to) in throttles {
            for d in from.as_deref().unwrap_or_default() {
                let (major, minor) = dev(what, d.major(), d.minor())?;
                to.push(ThrottleDevice {
                    major,
                    minor,
                    rate: d.rate(),
                });
            }
        }
    }
    for h in r.hugepage_limits().as_deref().unwrap_or_default() {
        let limit = u64::try_from(h.limit()).map_err(|_| {
            invalid(format!(
                "linux.resources.hugepageLimits: limit {} for {} is negative",
                h.limit(),
                h.page_size()
            ))
        })?;
        x.hugepages.push(HugepageLimit {
            page_size: h.page_size().clone(),
            limit,
        });
    }
    if let Some(n) = r.network() {
        x.network.class_id = n.class_id();
        for p in n.priorities().as_deref().unwrap_or_default() {
            x.network.priorities.push(InterfacePriority {
                name: p.name().clone(),
                priority: p.priority(),
            });
        }
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        warnings.push("linux.resources.unified ignored".into());
    }
    if r.rdma().as_ref().is_some_and(|u| !u.is_empty()) {
        warnings.push("linux.resources.rdma ignored".into());
    }
    Ok(x)
}

/// The pid, mount, uts, ipc and cgroup namespaces and a user namespace to join, from
/// `linux.namespaces`: listed with a path = join it, listed without = new, not listed =
/// the runtime's own (the spec's "inherit"). A type listed twice is an error.
fn namespaces(list: &[oci_spec::runtime::LinuxNamespace]) -> Result<crate::Namespaces> {
    use crate::Namespace;
    let mut out = crate::Namespaces {
        pid: Namespace::Host,
        mount: Namespace::Host,
        uts: Namespace::Host,
        ipc: Namespace::Host,
        cgroup: Namespace::Host,
        join_user: None,
    };
    let mut seen = Vec::new();
    for ns in list {
        let name = json_name(&ns.typ());
        if seen.contains(&name) {
            return Err(invalid(format!(
                "linux.namespaces lists the {name} namespace twice"
            )));
        }
        seen.push(name);
        let mode = match ns.path() {
            Some(p) if p.as_os_str().is_empty() => Namespace::New,
            Some(p) if !p.is_absolute() => {
                return Err(invalid(format!(
                    "the {} namespace path {} must be absolute",
                    json_name(&ns.typ()),
                    p.display()
                )))
            }
            Some(p) => Namespace::Join(p.clone()),
            None => Namespace::New,
        };
        let slot = match ns.typ() {
            LinuxNamespaceType::Pid => &mut out.pid,
            LinuxNamespaceType::Mount => &mut out.mount,
            LinuxNamespaceType::Uts => &mut out.uts,
            LinuxNamespaceType::Ipc => &mut out.ipc,
            LinuxNamespaceType::Cgroup => &mut out.cgroup,
            LinuxNamespaceType::User => {
                if let Namespace::Join(p) = mode {
                    out.join_user = Some(p);
                }
                continue;
            }
            // The network is the spec's `network`; time is not supported (a warning).
            _ => continue,
        };
        *slot = mode;
    }
    Ok(out)
}

/// The config's mounts outside `/proc`, `/dev` and `/sys` (the runtime mounts those
/// itself), binds and filesystems together so they keep the config's order; relative
/// bind sources are under the bundle.
fn config_mounts(spec: &Spec, bundle: &Path) -> Result<Vec<crate::FsMount>> {
    let mut out = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let dest = m.destination().to_string_lossy().into_owned();
        let options = m.options().clone().unwrap_or_default();
        let is_bind = m.typ().as_deref() == Some("bind")
            || options.iter().any(|o| o == "bind" || o == "rbind");
        let runtime_owned = ["/proc", "/dev", "/sys"]
            .iter()
            .any(|r| is_under(&crate::spec::normalize(&dest), r));
        if runtime_owned {
            continue;
        }
        let fstype = m.typ().clone().unwrap_or_default();
        let source = if is_bind {
            let source = m
                .source()
                .clone()
                .ok_or_else(|| invalid(format!("bind mount on {dest} has no source")))?;
            let source = if source.is_absolute() {
                source
            } else {
                bundle.join(source)
            };
            source.to_string_lossy().into_owned()
        } else {
            if fstype.is_empty() {
                return Err(invalid(format!("mount on {dest} has no type")));
            }
            m.source()
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| fstype.clone())
        };
        out.push(crate::FsMount {
            destination: dest,
            source,
            fstype: if is_bind { "bind".into() } else { fstype },
            options,
        });
    }
    Ok(out)
}

/// `a` `b` `c` `u` `p` of an OCI device type.
fn device_kind(t: oci_spec::runtime::LinuxDeviceType) -> char {
    use oci_spec::runtime::LinuxDeviceType as T;
    match t {
        T::A => 'a',
        T::B => 'b',
        T::C => 'c',
        T::U => 'u',
        T::P => 'p',
    }
}

/// The OCI state of a container (`ociVersion`, `id`, `status`, `pid`, `bundle`), plus
/// `rootfs` and `created` as runc prints them.
pub fn state_json(state: &ContainerState, bundle: Option<&Path>) -> serde_json::Value {
    let status = match state.status {
        Status::Creating => "creating",
        Status::Created => "created",
        Status::Running => "running",
        Status::Paused => "paused",
        Status::Stopped => "stopped",
    };
    serde_json::json!({
        "ociVersion": "1.0.2",
        "id": state.id,
        "status": status,
        "pid": if state.status == Status::Stopped { 0 } else { state.pid },
        "bundle": bundle.map(|b| b.display().to_string()).unwrap_or_default(),
        "rootfs": state.rootfs,
        "upper_dir": state.upper_dir,
        "created": state.created,
        "owner": "",
    })
}

/// [`state_json`] with the bundle and the annotations a container was created with.
pub fn state_json_for(state: &ContainerState, opts: &ContainerOptions) -> serde_json::Value {
    let mut json = state_json(state, opts.oci_bundle.as_deref());
    if !opts.annotations.is_empty() {
        json["annotations"] = serde_json::json!(opts.annotations);
    }
    json
}

/// The `config.json` `paas-runtime spec` writes: oci-spec's default (runc's), with
/// `terminal: false` and `sh` as the process.
pub fn default_spec() -> Result<Spec> {
    let mut spec = Spec::default();
    if let Some(process) = spec.process_mut() {
        process.set_terminal(Some(false));
        process.set_args(Some(vec!["sh".into()]));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_spec_converts() {
        let dir = tempfile::tempdir().unwrap();
        let spec = default_spec().unwrap();
        let mut warnings = Vec::new();
        let (c, o) = convert(&spec, dir.path(), "box", &mut warnings).unwrap();
        assert_eq!(c.layers, vec![dir.path().join("rootfs")]);
        assert_eq!(c.args, vec!["sh".to_string()]);
        assert_eq!(
            c.network,
            Network::None,
            "the default has a network namespace"
        );
        assert!(c.mounts.is_empty(), "proc/dev/sys mounts are the runtime's");
        assert!(o.masked_paths.iter().any(|p| p == "/proc/kcore"));
        assert!(o.readonly_paths.iter().any(|p| p == "/proc/sys"));
        let sets = o.capability_sets.unwrap();
        assert!(sets.bounding.iter().any(|c| c == "CAP_KILL"));
        assert!(o.inherit_stdio);
        let state = ContainerState {
            id: "box".into(),
            pid: 42,
            status: Status::Running,
            rootfs: dir.path().join("rootfs"),
            upper_dir: dir.path().join("upper"),
            created: "2026-01-01T00:00:00Z".into(),
        };
        let json = state_json(&state, Some(dir.path()));
        assert_eq!(json["status"], "running");
        assert_eq!(json["pid"], 42);
        assert_eq!(json["ociVersion"], "1.0.2");
    }

    #[test]
    fn namespaces_listed_with_a_path_are_joined_and_unlisted_ones_inherited() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = default_spec().unwrap();
        let ns = |json: serde_json::Value| -> Vec<oci_spec::runtime::LinuxNamespace> {
            serde_json::from_value(json).unwrap()
        };
        let linux = spec.linux_mut().as_mut().unwrap();
        linux.set_namespaces(Some(ns(serde_json::json!([
            {"type": "pid", "path": "/proc/1/ns/pid"},
            {"type": "mount"},
            {"type": "user", "path": "/proc/1/ns/user"},
        ]))));
        linux.set_uid_mappings(None);
        linux.set_gid_mappings(None);
        let (c, o) = convert(&spec, dir.path(), "box", &mut Vec::new()).unwrap();
        let n = &o.namespaces;
        assert_eq!(n.pid, crate::Namespace::Join("/proc/1/ns/pid".into()));
        assert_eq!(n.mount, crate::Namespace::New);
        assert_eq!(
            (&n.uts, &n.ipc, &n.cgroup),
            (
                &crate::Namespace::Host,
                &crate::Namespace::Host,
                &crate::Namespace::Host
            )
        );
        assert_eq!(n.join_user, Some("/proc/1/ns/user".into()));
        assert_eq!(c.network, Network::Host, "not listed");
        assert!(o.id_mappings.is_none());

        let linux = spec.linux_mut().as_mut().unwrap();
        linux.set_uid_mappings(Some(
            serde_json::from_value(
                serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]),
            )
            .unwrap(),
        ));
        let err = convert(&spec, dir.path(), "box", &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("remove one of them"), "{err}");
        let linux = spec.linux_mut().as_mut().unwrap();
        linux.set_namespaces(Some(ns(serde_json::json!([
            {"type": "ipc"}, {"type": "ipc", "path": "/proc/1/ns/ipc"}
        ]))));
        let err = convert(&spec, dir.path(), "box", &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("ipc namespace twice"), "{err}");
    }
}
