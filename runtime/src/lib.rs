//! paas-runtime: one container on one host, as a synchronous library.
//!
//! THIS FILE IS THE CONTRACT the node agent codes against. The runtime helper implements
//! it (in submodules) and may add to it, but must not change these signatures without
//! updating every caller.
//!
//! A container is: an overlayfs rootfs (read-only image layer dirs as lowers, a fresh upper
//! dir), new pid/mnt/uts/ipc(/net/cgroup) namespaces, pivot_root, /proc, a minimal /dev,
//! cgroup limits (v1 or v2, detected at run time), stdout/stderr appended to log files,
//! and its state on disk under `state_dir/<id>/`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub mod cgroup;
mod child;
mod create;
pub mod devices;
mod exec;
mod fs;
mod handshake;
mod harden;
pub mod hooks;
mod idmap;
mod init;
mod lifecycle;
mod mounts;
mod ns;
pub mod oci;
mod ops;
mod plan;
pub mod security;
pub mod spec;
mod state;

pub use cgroup::{CgroupError, CgroupManager, CgroupVersion, ExtraResources, Limits, Stats};
pub use devices::{Device, DeviceRule};
pub use exec::{ExecProcess, ExecSpec};
pub use hooks::{Hook, Hooks};
pub use security::Rlimit;
pub use spec::{validate_id, validate_spec, DEFAULT_PATH};
pub use state::now_rfc3339;

/// Errors of the runtime. Every variant says what failed and on what.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {0:?} not found")]
    NotFound(String),
    #[error("container {0:?} already exists")]
    AlreadyExists(String),
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
    #[error("container process failed to start: {0}")]
    Start(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Where the runtime keeps its state and which host-global names it uses.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// `state_dir/<id>/` holds state.json, the overlay upper/work/merged dirs.
    pub state_dir: PathBuf,
    /// Name of the cgroup parent under each hierarchy (e.g. "paas" →
    /// /sys/fs/cgroup/memory/paas/<id> on v1, /sys/fs/cgroup/paas/<id> on v2).
    pub cgroup_parent: String,
    /// Root of the cgroup filesystem, normally /sys/fs/cgroup (a parameter for tests).
    pub cgroup_root: PathBuf,
}

/// A bind mount from the host into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container; created if missing.
    pub destination: String,
    pub readonly: bool,
}

/// The container's network namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// A new, empty network namespace with only `lo` (brought up).
    None,
    /// The host's network namespace.
    Host,
    /// Join an existing network namespace, e.g. `/run/netns/<name>` made by the caller
    /// (the node agent sets up the veth there before the container starts).
    Join(PathBuf),
}

/// cgroup limits. `None` means no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Resources {
    pub memory_bytes: Option<u64>,
    pub pids_max: Option<u64>,
    /// Relative CPU weight in cgroup v1 `cpu.shares` units (1024 = one default share).
    pub cpu_shares: Option<u64>,
}

/// Everything needed to create one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`
    pub id: String,
    /// Read-only image layer directories, TOP-MOST FIRST (overlayfs `lowerdir` order).
    pub layers: Vec<PathBuf>,
    /// argv; `args[0]` is resolved with PATH from `env` inside the container.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// Absolute working directory inside the container (created if missing).
    pub cwd: String,
    pub hostname: String,
    /// uid, gid to run as; None = 0:0.
    pub user: Option<(u32, u32)>,
    pub mounts: Vec<BindMount>,
    pub network: Network,
    pub resources: Resources,
    /// stdout and stderr are appended to these files (may be the same path).
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

/// CPU bandwidth: at most `quota_us` of CPU time every `period_us` (v1 `cpu.cfs_*`, v2
/// `cpu.max`). `quota_us = 50_000, period_us = 100_000` is half a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuQuota {
    pub quota_us: u64,
    pub period_us: u64,
}

/// Capability names per set, as in an OCI config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CapabilitySets {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub permitted: Vec<String>,
    pub inheritable: Vec<String>,
    pub ambient: Vec<String>,
}

/// A mount as in an OCI config: a filesystem (tmpfs, mqueue, …) or, with `bind` or
/// `rbind` in the options (or type `bind`), a bind mount of the host path `source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsMount {
    /// Absolute container path (created if missing).
    pub destination: String,
    pub fstype: String,
    pub source: String,
    /// fstab-style options: flags (`ro`, `nosuid`, `nodev`, `noexec`, `noatime`, …),
    /// `bind`/`rbind`, a propagation (`private`, `shared`, `slave`, `unbindable`, or
    /// with an `r` prefix) and filesystem data (`mode=755`, `size=64m`, …).
    pub options: Vec<String>,
}

/// Settings beyond [`ContainerSpec`]. `Default` is what every container gets from
/// [`Runtime::create`]: Docker's defaults (see [`security`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerOptions {
    /// Capabilities kept (bounding, effective, permitted; inheritable and ambient are
    /// cleared). A non-root `user` keeps only the bounding set, as in Docker.
    pub capabilities: Vec<String>,
    /// The five capability sets one by one (OCI `process.capabilities`); when set, it
    /// replaces `capabilities`, and a non-root user keeps them (`PR_SET_KEEPCAPS`).
    pub capability_sets: Option<CapabilitySets>,
    /// `PR_SET_NO_NEW_PRIVS`: setuid binaries and file capabilities grant nothing.
    pub no_new_privileges: bool,
    /// The default seccomp filter ([`security`]).
    pub seccomp: bool,
    /// Container paths hidden (`/dev/null` over files, empty read-only tmpfs over dirs).
    pub masked_paths: Vec<String>,
    /// Container paths made read-only.
    pub readonly_paths: Vec<String>,
    /// Mount the rootfs read-only (bind mounts keep their own mode; /dev, /proc too).
    pub readonly_rootfs: bool,
    /// Resource limits; RLIMIT_NOFILE defaults to [`security::DEFAULT_NOFILE`] when
    /// not listed.
    pub rlimits: Vec<Rlimit>,
    /// Supplementary groups of the process.
    pub additional_gids: Vec<u32>,
    /// CPU bandwidth limit.
    pub cpu_quota: Option<CpuQuota>,
    /// cgroup settings beyond `ContainerSpec::resources` and `cpu_quota`: the rest of
    /// OCI `linux.resources` (memory reservation/swap/swappiness/kernel/OOM killer,
    /// realtime CPU, cpus/mems, block I/O, huge pages, network classes).
    pub extra_resources: cgroup::ExtraResources,
    /// The process gets the caller's stdin/stdout/stderr (as runc's pass-through mode)
    /// instead of `/dev/null` and the spec's log files.
    pub inherit_stdio: bool,
    /// OCI `process.terminal`: the init opens a pty in the container's devpts, sends its
    /// master over [`ContainerOptions::console_socket`] (runc's `--console-socket`: a unix
    /// socket another process listens on; `SCM_RIGHTS`) and makes the other end its
    /// stdin, stdout, stderr and controlling terminal.
    pub terminal: bool,
    /// The unix socket the pty master goes to (needed with `terminal`).
    pub console_socket: Option<PathBuf>,
    /// `/proc/<pid>/oom_score_adj` of the init (-1000..=1000), written before it runs.
    pub oom_score_adj: Option<i32>,
    /// Mounts made after [`ContainerSpec::mounts`], in order (an OCI config's).
    pub fs_mounts: Vec<FsMount>,
    /// Propagation of the container's `/` after pivot_root: `private` (default),
    /// `rprivate`, `shared`, `rshared`, `slave`, `rslave`, `unbindable`, `runbindable`.
    pub rootfs_propagation: Option<String>,
    /// Use `layers[0]` itself as the rootfs, bind-mounted inside the container's mount
    /// namespace (as runc and crun do with a bundle): no overlay, so writes land in that
    /// directory. Needs exactly one layer.
    pub bind_rootfs: bool,
    /// Join only the cgroup hierarchies the limits need (none without limits): faster,
    /// but `stats` and `pause` then see only those controllers.
    pub minimal_cgroups: bool,
    /// The OCI bundle the container came from, for the OCI `state`.
    pub oci_bundle: Option<PathBuf>,
    /// Device nodes made in the container's `/dev` (OCI `linux.devices`); each is also
    /// allowed (rwm) in the device cgroup.
    pub devices: Vec<Device>,
    /// The device cgroup rules (OCI `linux.resources.devices`), applied in order; the
    /// default is runc's allow-list ([`devices::default_rules`]).
    pub device_rules: Vec<DeviceRule>,
    /// The container's cgroup, as OCI `linux.cgroupsPath` (and runc): absolute
    /// (`/mygroup/c1`) = from the root of each hierarchy, relative (`mygroup/c1`) = under
    /// `cgroup_parent`. None = `<cgroup_parent>/<id>`. No `.` or `..` components.
    pub cgroup_path: Option<String>,
    /// OCI hooks (prestart, createRuntime, createContainer, startContainer, poststart,
    /// poststop).
    pub hooks: Hooks,
    /// Run the container in a new user namespace with these uid/gid mappings (root in
    /// the container is an unprivileged uid on the host). None = no user namespace.
    pub id_mappings: Option<IdMappings>,
    /// With `id_mappings` and an overlay rootfs: mount each image layer idmapped with the
    /// same mapping, so files owned by host root in the layers are owned by the
    /// container's root (and uid `k` by container uid `k`), and the container can write
    /// its image's directories (a copy-up into the upper dir, owned by its host range).
    /// Needs Linux 5.19 and a layer filesystem with idmapped mounts (ext4, xfs, btrfs,
    /// tmpfs since 6.3). False: the layers as they are on disk (root's files are `nobody`
    /// to the container and read-only). Default true; no effect without `id_mappings`
    /// or with `bind_rootfs`.
    pub idmap_layers: bool,
    /// OCI `annotations` of the config, repeated in the OCI state.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Descriptors 3..3+N of the caller that the container's process gets as they are
    /// (runc's `--preserve-fds`, systemd socket activation through an engine).
    pub preserve_fds: u32,
    /// Where the pid, mount, uts, ipc and cgroup namespaces come from, and an existing
    /// user namespace to join (the network's is [`ContainerSpec::network`]). Default:
    /// all new, as every agent job gets.
    pub namespaces: Namespaces,
}

/// Where one namespace of the container comes from (OCI `linux.namespaces`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Namespace {
    /// A new one, made for the container.
    #[default]
    New,
    /// The caller's (an OCI config that does not list the type).
    Host,
    /// An existing one, by a namespace file such as `/proc/<pid>/ns/ipc` or a bind
    /// mount of one; its type is checked.
    Join(PathBuf),
}

/// The container's namespaces besides the network (see [`Network`]) and a new user
/// namespace (see [`ContainerOptions::id_mappings`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Namespaces {
    pub pid: Namespace,
    pub mount: Namespace,
    pub uts: Namespace,
    pub ipc: Namespace,
    pub cgroup: Namespace,
    /// An existing user namespace to join (its uid 0 must be mapped: the init becomes
    /// it). Exclusive with `id_mappings`.
    pub join_user: Option<PathBuf>,
}

/// One line of `/proc/<pid>/uid_map` or `gid_map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

/// The uid and gid mappings of a user namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMappings {
    pub uids: Vec<IdMap>,
    pub gids: Vec<IdMap>,
}

impl IdMappings {
    /// Container ids `0..size` onto host ids `base..base+size`, for uids and gids.
    pub fn range(base: u32, size: u32) -> IdMappings {
        let m = vec![IdMap {
            container_id: 0,
            host_id: base,
            size,
        }];
        IdMappings {
            uids: m.clone(),
            gids: m,
        }
    }

    /// The host uid (or gid, `gid = true`) of a container id, if mapped.
    pub fn host_id(&self, id: u32, gid: bool) -> Option<u32> {
        let maps = if gid { &self.gids } else { &self.uids };
        maps.iter()
            .find(|m| id >= m.container_id && id - m.container_id < m.size)
            .map(|m| m.host_id + (id - m.container_id))
    }
}

impl Default for ContainerOptions {
    fn default() -> ContainerOptions {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        ContainerOptions {
            capabilities: strings(&security::DEFAULT_CAPABILITIES),
            capability_sets: None,
            no_new_privileges: true,
            seccomp: true,
            masked_paths: strings(&security::DEFAULT_MASKED_PATHS),
            readonly_paths: strings(&security::DEFAULT_READONLY_PATHS),
            readonly_rootfs: false,
            rlimits: Vec::new(),
            additional_gids: Vec::new(),
            cpu_quota: None,
            extra_resources: Default::default(),
            inherit_stdio: false,
            terminal: false,
            console_socket: None,
            oom_score_adj: None,
            fs_mounts: Vec::new(),
            rootfs_propagation: None,
            bind_rootfs: false,
            minimal_cgroups: false,
            oci_bundle: None,
            devices: Vec::new(),
            device_rules: devices::default_rules(),
            cgroup_path: None,
            hooks: Hooks::default(),
            id_mappings: None,
            idmap_layers: true,
            annotations: Default::default(),
            namespaces: Namespaces::default(),
            preserve_fds: 0,
        }
    }
}

/// Lifecycle state, as in the OCI runtime spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

/// What `state` returns and what is kept in `state_dir/<id>/state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    /// Host pid of the container's init process (0 before it exists).
    pub pid: i32,
    pub status: Status,
    /// The merged overlay mount (the container's `/` seen from the host).
    pub rootfs: PathBuf,
    /// The overlay upper dir: everything the container wrote to its rootfs.
    pub upper_dir: PathBuf,
    /// RFC 3339 UTC.
    pub created: String,
}

/// How the container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Exit code when it exited normally.
    pub code: Option<i32>,
    /// Signal number when it was killed by a signal.
    pub signal: Option<i32>,
    /// The cgroup recorded an OOM kill.
    pub oom_killed: bool,
}

/// Why a container's process ended, for people: see [`ExitStatus::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ExitReason {
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    /// The kernel's OOM killer ended it (the cgroup's memory limit was hit).
    OutOfMemory,
    /// It ended but the status was not seen (the caller was not its parent).
    Unknown,
}

impl ExitStatus {
    /// Exited / killed by a signal / out of memory. An OOM kill in the cgroup counts when
    /// the process did not exit 0 (a killed child that the app survived is not a crash).
    pub fn reason(&self) -> ExitReason {
        match (self.code, self.signal) {
            (Some(0), _) => ExitReason::Exited { code: 0 },
            _ if self.oom_killed => ExitReason::OutOfMemory,
            (Some(code), _) => ExitReason::Exited { code },
            (None, Some(signal)) => ExitReason::Signaled { signal },
            (None, None) => ExitReason::Unknown,
        }
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitReason::Exited { code } => write!(f, "exited with code {code}"),
            ExitReason::Signaled { signal } => {
                let name = nix::sys::signal::Signal::try_from(*signal)
                    .map(|s| s.as_str())
                    .unwrap_or("unknown signal");
                write!(f, "killed by signal {signal} ({name})")
            }
            ExitReason::OutOfMemory => write!(f, "crashed: out of memory"),
            ExitReason::Unknown => write!(f, "exited (status unknown)"),
        }
    }
}

/// The runtime: a handle on a state dir and cgroup parent. Cheap to clone, `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Runtime {
    config: RuntimeConfig,
}

impl Runtime {
    /// Creates the state dir if needed. Does not touch cgroups until a container is made.
    pub fn new(config: RuntimeConfig) -> Result<Runtime> {
        lifecycle::init_state_dir(&config)?;
        Ok(Runtime { config })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Sets up the rootfs and cgroup and forks the container's init, which waits until
    /// [`Runtime::start`] before it execs the process. Safe to call from a multi-threaded
    /// process (the node agent runs tokio): the child after clone/fork does no allocation.
    ///
    /// On failure everything this call made (mount, cgroups, state dir) is removed again,
    /// so the id can be reused at once.
    pub fn create(&self, spec: &ContainerSpec) -> Result<ContainerState> {
        create::create(&self.config, spec, &ContainerOptions::default(), false)
    }

    /// [`Runtime::create`] with settings other than the defaults.
    pub fn create_with(
        &self,
        spec: &ContainerSpec,
        options: &ContainerOptions,
    ) -> Result<ContainerState> {
        create::create(&self.config, spec, options, false)
    }

    /// [`Runtime::run`] with settings other than the defaults.
    pub fn run_with(
        &self,
        spec: &ContainerSpec,
        options: &ContainerOptions,
    ) -> Result<ContainerState> {
        if options.hooks.is_empty() {
            // One step: the init execs once set up, without the start handshake.
            return create::create(&self.config, spec, options, true);
        }
        let state = self.create_with(spec, options)?;
        if let Err(e) = self.start(&spec.id) {
            let _ = self.delete(&spec.id, true);
            return Err(e);
        }
        self.state(&state.id)
    }

    /// Lets a created container exec its process. Works from any process (it talks to the
    /// waiting init through named FIFOs in the state dir). Returns [`Error::Start`] when
    /// the exec fails (e.g. `exec "/bin/x": Exec format error`).
    pub fn start(&self, id: &str) -> Result<()> {
        lifecycle::start(&self.config, id)
    }

    /// `create` + `start` in one step: without hooks the init execs as soon as it is set
    /// up (no start handshake through the state dir); with hooks `create`, then `start`.
    /// If the exec fails, the container is deleted again before the error is returned (so
    /// a failed `run` leaves nothing behind).
    pub fn run(&self, spec: &ContainerSpec) -> Result<ContainerState> {
        self.run_with(spec, &ContainerOptions::default())
    }

    /// Current state (Running/Stopped is checked against the live process).
    pub fn state(&self, id: &str) -> Result<ContainerState> {
        lifecycle::state(&self.config, id)
    }

    /// The options a container was created with.
    pub fn options(&self, id: &str) -> Result<ContainerOptions> {
        lifecycle::options(&self.config, id)
    }

    /// The image layer directories a container's rootfs is made of, top-most first (none
    /// for a half-created container). The node agent keeps them out of its cache pruning.
    pub fn layers(&self, id: &str) -> Result<Vec<PathBuf>> {
        lifecycle::layers(&self.config, id)
    }

    /// Every container in the state dir, sorted by id. Half-created containers (whose
    /// state file is missing) are listed as `Creating` with pid 0 so they can be deleted.
    pub fn list(&self) -> Result<Vec<ContainerState>> {
        lifecycle::list(&self.config)
    }

    /// Sends `signal` to the container's init process. Fails with `Error::Sys` (ESRCH) if
    /// the process is already gone. Note the kernel drops signals the init (pid 1 of its
    /// pid namespace) has no handler for, except SIGKILL and SIGSTOP.
    pub fn kill(&self, id: &str, signal: i32) -> Result<()> {
        lifecycle::kill(&self.config, id, signal)
    }

    /// Blocks until the container's process has exited and returns how. Works whether or
    /// not the caller is the process's parent (a re-started agent is not); when it is not,
    /// the exit code may be unknown (`code` and `signal` None).
    ///
    /// When the caller is the parent this also reaps the process. The result is recorded
    /// in the state file, so later calls (from any process) return the same answer.
    pub fn wait(&self, id: &str) -> Result<ExitStatus> {
        lifecycle::wait(&self.config, id)
    }

    /// Removes the container: kills it first if `force` (else it must be stopped),
    /// unmounts the rootfs, removes the cgroup and the state dir. Leaves no mount and no
    /// cgroup behind.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        lifecycle::delete(&self.config, id, force)
    }

    /// Runs another process in a running container: all its namespaces, its cgroup, its
    /// privileges; env, cwd and user default to the container's. Returns once the
    /// process has exec'd ([`Error::Start`] if it could not); wait with
    /// [`ExecProcess::wait`] (the caller must be the one to wait: it is our child).
    pub fn exec(&self, id: &str, spec: ExecSpec) -> Result<ExecProcess> {
        exec::exec(&self.config, id, spec)
    }

    /// Stops a container: SIGTERM, up to `grace` for it to exit, then SIGKILL. Returns
    /// how it ended (a stopped container returns its recorded exit at once).
    pub fn stop(&self, id: &str, grace: std::time::Duration) -> Result<ExitStatus> {
        ops::stop(&self.config, id, grace)
    }

    /// Stops the container (as [`Runtime::stop`]), deletes it, and creates and starts it
    /// again from the same spec and options (a fresh upper dir: what the process wrote
    /// outside volumes is gone, as with a new container).
    pub fn restart(&self, id: &str, grace: std::time::Duration) -> Result<ContainerState> {
        let (spec, options) = lifecycle::spec_and_options(&self.config, id)?;
        self.stop(id, grace)?;
        self.delete(id, true)?;
        self.run_with(&spec, &options)
    }

    /// Freezes every process of a running container (cgroup freezer); status `Paused`.
    pub fn pause(&self, id: &str) -> Result<()> {
        ops::set_paused(&self.config, id, true)
    }

    /// Thaws a paused container; status `Running` again.
    pub fn resume(&self, id: &str) -> Result<()> {
        ops::set_paused(&self.config, id, false)
    }

    /// Memory (now and peak), CPU time and process count from the container's cgroup.
    pub fn stats(&self, id: &str) -> Result<Stats> {
        ops::stats(&self.config, id)
    }

    /// The network namespace of a running container, to give another container
    /// `Network::Join(path)`: the `container:<id>` network mode.
    pub fn netns_path(&self, id: &str) -> Result<PathBuf> {
        ops::netns_path(&self.config, id)
    }

    /// Creates (if missing) a named volume and returns its directory, to use as a
    /// [`BindMount`] source. Its data outlives every container.
    pub fn create_volume(&self, name: &str) -> Result<PathBuf> {
        ops::create_volume(&self.config, name)
    }

    /// Deletes a named volume and its data (missing is fine).
    pub fn remove_volume(&self, name: &str) -> Result<()> {
        ops::remove_volume(&self.config, name)
    }

    /// Names of the named volumes.
    pub fn list_volumes(&self) -> Result<Vec<String>> {
        ops::list_volumes(&self.config)
    }

    /// Removes the cgroup parent (`cgroup_parent`) under every hierarchy, e.g. for an
    /// uninstall or `paas-agent cleanup` after every container was deleted. Missing
    /// directories are fine; one that still holds a container fails (EBUSY).
    pub fn remove_cgroup_parent(&self) -> Result<()> {
        cgroup::remove_parent(&self.config.cgroup_root, &self.config.cgroup_parent)
            .map_err(Error::from)
    }

    /// Host pids of every process in the container's cgroup (its init first when it
    /// runs), for runc's `ps` and `kill --all`.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        ops::pids(&self.config, id)
    }

    /// Changes the cgroup limits of a created, running or paused container (runc's
    /// `update`): `resources` as OCI `linux.resources`; what it leaves out stays.
    pub fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        ops::update(&self.config, id, resources)
    }

    /// The cgroup directories of a container (one per v1 hierarchy, one on v2), whether
    /// or not they exist yet.
    pub fn cgroup_paths(&self, id: &str) -> Vec<PathBuf> {
        lifecycle::manager(&self.config, id).paths()
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}
