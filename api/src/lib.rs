//! Wire types shared by the controller, the node agent and the CLI.
//!
//! Everything here is plain data with serde derives: no HTTP, no I/O. Two APIs use it:
//!
//! * the controller's public REST API under `/v1/` ([`App`], [`Release`], [`ErrorBody`], …),
//!   used by the CLI, the dashboard and scripts;
//! * the node agent's API under `/v1/` on the agent ([`JobSpec`], [`JobStatus`], …), used by
//!   the controller, and the agent's heartbeat to the controller ([`NodeHeartbeat`]).
//!
//! Unknown fields are ignored when reading so that older clients keep working when a newer
//! server adds fields; new fields must therefore be optional or carry a default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod access;
pub mod addons;
pub mod clock;
pub mod config_vars;
pub mod exec;
pub mod names;
pub use access::*;
pub use addons::{
    Addon, AddonAttachment, AttachAddon, CreateAddon, PgBackup, PgBackupSchedule, PgBackupTarget,
    SetPgBackupSchedule,
};
pub mod sizes;

/// The one error shape of every paas HTTP API: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A machine-readable `code` (stable, snake_case) and a human message that says what is
/// wrong and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

/// Stable error codes used across the APIs.
pub mod codes {
    pub const NOT_FOUND: &str = "not_found";
    pub const CONFLICT: &str = "conflict";
    pub const VALIDATION: &str = "validation_error";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const FORBIDDEN: &str = "forbidden";
    pub const INTERNAL: &str = "internal_error";
    pub const UNAVAILABLE: &str = "unavailable";
    pub const BAD_REQUEST: &str = "bad_request";
    /// Too many failed logins or bad tokens from one address (429, with `Retry-After`).
    pub const RATE_LIMITED: &str = "rate_limited";
    /// `If-Match` is stale: the resource changed since it was read (412).
    pub const PRECONDITION_FAILED: &str = "precondition_failed";
    /// The release's image has no `/bin/sh`, which what was asked needs (409): an attached
    /// `paas run` (the CLI then runs the command without stdin, `POST …/run`).
    pub const NO_SHELL: &str = "no_shell";
}

// ---------------------------------------------------------------------------------------
// Controller REST API
// ---------------------------------------------------------------------------------------

/// `POST /v1/apps`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateApp {
    pub name: String,
}

/// An application as the controller reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct App {
    pub name: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// The version number of the release that is live, if any (`2` for v2).
    #[serde(default)]
    pub current_release: Option<u32>,
    /// `http://<app>.<domain>:<router port>`
    pub web_url: String,
    /// `http://<controller>/git/<app>.git`
    pub git_url: String,
    /// up, crashed, building, deploying, idle (no release yet)
    #[serde(default)]
    pub status: String,
}

/// An immutable release: an image plus the config and process types it runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Release {
    pub app: String,
    /// 1, 2, 3, … per app.
    pub version: u32,
    /// Image reference in the controller's registry, `<repository>@sha256:…`.
    pub image: String,
    /// The git commit the image was built from, when it came from a push.
    #[serde(default)]
    pub source_version: Option<String>,
    /// Process type name → command, from the Procfile and the buildpack's `bin/release`.
    #[serde(default)]
    pub process_types: BTreeMap<String, String>,
    /// Config var names. Values are not listed here.
    #[serde(default)]
    pub config_keys: Vec<String>,
    /// "Deploy 1a2b3c4", "Rollback to v3", "Set FOO config vars", …
    pub description: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// How its deploy went: `pending` (its jobs are starting), `succeeded` (it served),
    /// `failed` (its jobs could not start or kept crashing: see `status_reason`), or
    /// `unknown` (made before paas recorded it). Absent from older controllers.
    #[serde(default)]
    pub status: Option<String>,
    /// Why it failed, for `failed`.
    #[serde(default)]
    pub status_reason: Option<String>,
}

/// One build (a push that ran the buildpacks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Build {
    pub id: String,
    pub app: String,
    /// pending, building, succeeded, failed
    pub status: String,
    #[serde(default)]
    pub source_version: Option<String>,
    /// The release this build created, if it succeeded.
    #[serde(default)]
    pub release: Option<u32>,
    pub created_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
}

/// A node as the controller knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Node {
    pub name: String,
    pub url: String,
    /// up, down, draining
    pub state: String,
    pub memory_bytes: u64,
    pub last_seen: String,
    #[serde(default)]
    pub jobs: u32,
}

// ---------------------------------------------------------------------------------------
// Node agent API (controller → agent) and heartbeat (agent → controller)
// ---------------------------------------------------------------------------------------

/// An image in an OCI distribution registry (the controller's `/v2/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// Base URL of the registry, e.g. `http://127.0.0.1:8080` (no trailing slash, no `/v2`).
    pub registry: String,
    /// Repository name, e.g. `apps/hello` or `stacks/tiny`.
    pub repository: String,
    /// A tag or a `sha256:…` manifest digest.
    pub reference: String,
}

/// A tarball to fetch and unpack into the container before the process starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInput {
    /// `GET` this URL (with the agent's bearer token); the body is a tar, gzip or plain.
    pub url: String,
    /// Absolute path in the container where the tar is unpacked (a fresh host directory
    /// bind-mounted there).
    pub path: String,
    #[serde(default)]
    pub readonly: bool,
}

/// A named volume: a directory on the node that outlives the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// `[a-z0-9][a-z0-9_.-]*`
    pub name: String,
    /// Absolute path in the container.
    pub path: String,
    #[serde(default)]
    pub readonly: bool,
}

/// After the process exits 0, the agent packs the directory at `path` (which must be one
/// of the job's inputs) into a gzip tar layer whose entries start with `path` without the
/// leading slash (so `/app/x` is stored as `app/x`); with `path` = `/`, it packs what the
/// job changed in its root filesystem instead (the overlay upper dir as a zstd OCI layer,
/// deletions as `.wh.` whiteouts: a Dockerfile RUN step). It pushes the blob to
/// `<registry>/v2/<repository>/blobs/uploads/` and reports it in
/// [`JobStatus::output_layer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOutput {
    pub path: String,
    pub registry: String,
    pub repository: String,
}

/// A layer the agent produced from a job's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// sha256 of the gzip blob, `sha256:…`.
    pub digest: String,
    /// sha256 of the uncompressed tar, `sha256:…` (the OCI config's diff_id).
    pub diff_id: String,
    /// Size of the gzip blob in bytes.
    pub size: u64,
}

/// `POST /v1/jobs` on an agent: run one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Unique id chosen by the controller: `[a-z0-9][a-z0-9-]{0,62}`.
    pub id: String,
    /// Free-form labels the controller uses to find its jobs again (app, release, type).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub image: ImageRef,
    /// argv. Empty means the image config's Entrypoint + Cmd.
    #[serde(default)]
    pub command: Vec<String>,
    /// Added to (and overriding) the image config's Env.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Empty means the image config's WorkingDir, else `/`.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// The TCP port the process listens on inside the container. When set, the agent maps
    /// a host port to it and reports [`JobStatus::addr`].
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    #[serde(default)]
    pub pids_limit: Option<u64>,
    /// CPU limit in thousandths of a core (1000 = one whole core), a CFS quota over a
    /// 100 ms period. `None`: no limit.
    #[serde(default)]
    pub cpu_millicores: Option<u32>,
    /// Relative CPU weight when cores are contended, in cgroup v1 `cpu.shares` units (1024
    /// = the default weight). `None`: the default.
    #[serde(default)]
    pub cpu_shares: Option<u64>,
    #[serde(default)]
    pub inputs: Vec<JobInput>,
    #[serde(default)]
    pub volumes: Vec<VolumeMount>,
    #[serde(default)]
    pub output: Option<JobOutput>,
    /// Hostname inside the container; defaults to the job id.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Run the job in a user namespace: container uids/gids 0..65536 are an unprivileged
    /// host range of the agent, the [`JobSpec::tenant`]'s own on that node (a job without
    /// one gets a range of its own), so root in the container is not root on the host.
    /// The image layers are mounted idmapped, so the job's root owns the image's files as
    /// before (see docs/runtime.md, "User namespaces and file ownership"). The controller
    /// sets it on every job it starts.
    #[serde(default)]
    pub user_namespace: bool,
    /// The permanent number of the app the job belongs to (never reused, kept by a
    /// rename): jobs of one tenant share the node's uid/gid range for it and may reach each
    /// other; jobs of different tenants are walled apart. `None` for jobs of no app.
    #[serde(default)]
    pub tenant: Option<u32>,
    /// Lets the container reach the controller's and the agents' API ports. Off by default:
    /// the agent's nftables table drops that traffic (`paas apps:access-api`).
    #[serde(default)]
    pub api_access: bool,
    /// Other tenants whose jobs may reach this job too (an add-on's job: the apps it is
    /// attached to). The walls let their traffic in as if it were the job's own tenant's;
    /// nothing else changes. Fixed for the job's life: a new set needs a new job.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guests: Vec<u32>,
}

/// Lifecycle of a job on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Pulling the image, unpacking inputs, creating the container.
    Starting,
    /// The process is running.
    Up,
    /// Stop requested; waiting for the process to exit.
    Stopping,
    /// The process exited 0 (or was stopped on request).
    Down,
    /// The process exited non-zero, was killed by a signal it did not ask for, or the job
    /// failed to start.
    Crashed,
}

/// Why a job's process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ExitInfo {
    #[serde(default)]
    pub code: Option<i32>,
    #[serde(default)]
    pub signal: Option<i32>,
    #[serde(default)]
    pub oom_killed: bool,
    /// Human summary: "exited 0", "killed by SIGKILL", "out of memory",
    /// "failed to start: …".
    pub reason: String,
}

/// What an agent reports about one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    pub id: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub state: JobState,
    /// Host pid of the container's process while it runs.
    #[serde(default)]
    pub pid: Option<i32>,
    /// The container's IP on the node bridge.
    #[serde(default)]
    pub ip: Option<String>,
    /// The host port mapped to [`JobSpec::port`].
    #[serde(default)]
    pub host_port: Option<u16>,
    /// `host:port` at which the controller/router reaches the job's port.
    #[serde(default)]
    pub addr: Option<String>,
    #[serde(default)]
    pub exit: Option<ExitInfo>,
    #[serde(default)]
    pub output_layer: Option<LayerInfo>,
    /// RFC 3339 UTC.
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
}

/// `POST /v1/jobs/{id}/stop` on an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StopJob {
    /// Seconds between SIGTERM and SIGKILL; default 10.
    #[serde(default)]
    pub grace_seconds: Option<u64>,
}

/// `POST /v1/volumes/{name}/size-limit` on an agent: empty the named volume when it holds
/// more than `max_bytes` (refused with 409 while a job that mounts it runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSizeLimit {
    pub max_bytes: u64,
}

/// The answer to [`VolumeSizeLimit`]: what the volume held (disk usage, every inode once)
/// and whether it was emptied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeUsage {
    pub name: String,
    pub bytes: u64,
    #[serde(default)]
    pub emptied: bool,
}

/// `PUT /v1/volumes/{name}` on an agent: make a sized volume (an ext4 filesystem of this
/// size, loop-mounted; writes past it fail with ENOSPC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSizedVolume {
    pub size_bytes: u64,
}

/// A sized volume on an agent (`PUT`/`GET /v1/volumes/{name}`): its size, what its files
/// use, what is left, and whether it is full (less than 1%, at least 1 MiB, left).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizedVolume {
    pub name: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub full: bool,
}

/// `POST /v1/nodes/heartbeat` on the controller, every few seconds from each agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeHeartbeat {
    pub name: String,
    /// Base URL of the agent's API, e.g. `http://127.0.0.1:39121`.
    pub url: String,
    pub memory_bytes: u64,
    #[serde(default)]
    pub jobs: Vec<JobStatus>,
    /// Digests (`sha256:…`) of the image layers the node has cached; the scheduler prefers
    /// nodes that already have a release's layers.
    #[serde(default)]
    pub layers: Vec<String>,
    /// Resource use of the node's running jobs, read from their cgroups just before the
    /// heartbeat was sent (the dashboard's CPU and memory charts come from these).
    #[serde(default)]
    pub stats: Vec<JobStats>,
    /// The secret the controller must present on this agent's API (`paasagent_<64 hex>`,
    /// made by the agent and kept in its state dir). A controller that stored it answers
    /// with the header [`AGENT_TOKEN_STORED`]; the agent then refuses its bootstrap token.
    #[serde(default)]
    pub agent_token: Option<String>,
    /// A new measurement of what the volumes of the node's services hold (the volumes
    /// mounted by its jobs that are not builds: add-ons' data, apps' sized volumes), sent
    /// in the heartbeats after each measurement until one is answered, and empty (left
    /// out) in between: an empty list means "nothing new", not "no volumes". The agent
    /// measures about every 30 s, and at once when a job mounts a volume it has not
    /// measured yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeUse>,
}

/// What one volume on a node holds ([`NodeHeartbeat::volumes`]): for a sized volume the
/// use its filesystem reports (`statvfs`), for a plain directory the blocks its files take
/// (as `du -s` counts them). A volume the agent could not measure is left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeUse {
    /// The agent's volume name (`addon-<id>`, `app-<id>-<name>`).
    pub name: String,
    pub used_bytes: u64,
    /// When it was measured, RFC 3339 UTC.
    pub measured_at: String,
}

/// Response header of `POST /v1/nodes/heartbeat`: the controller stored the heartbeat's
/// `agent_token` and calls the agent with it from now on.
pub const AGENT_TOKEN_STORED: &str = "paas-agent-token-stored";

/// Response header of `POST /v1/nodes/heartbeat`: the API address of every other node
/// the controller knows, `IPV4:PORT` separated by commas (empty when there is none). The
/// agent keeps its containers from those machines' host ports and agent ports; an answer
/// without the header (an older controller) changes nothing.
pub const PEER_NODES: &str = "paas-peer-nodes";

/// Response header of `POST /v1/nodes/heartbeat`: the add-ons on OTHER nodes and the apps
/// attached to them, `IPV4:PORT/APP` (the add-on's advertised address and an attached app's
/// number) separated by commas. The agent lets that app's jobs through its wall against
/// other nodes' host ports to that one address and port; an answer without the header (an
/// older controller) changes nothing.
pub const ADDON_PORTS: &str = "paas-addon-ports";

/// Resource use of one running job, read by its agent from the job's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStats {
    pub job_id: String,
    /// CPU time used since the job started, in microseconds (a rate is the difference of
    /// two samples divided by the time between their `at`s).
    pub cpu_usage_usec: u64,
    /// Memory in use now, bytes (cgroup memory usage, page cache included).
    pub memory_bytes: u64,
    /// The job's memory limit, bytes; `None` when unlimited.
    #[serde(default)]
    pub memory_limit_bytes: Option<u64>,
    /// Processes (tasks) in the job's cgroup.
    #[serde(default)]
    pub pids: u64,
    /// When the sample was read, RFC 3339 UTC.
    pub at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_shape_is_stable() {
        let body = ErrorBody::new(codes::NOT_FOUND, "no app named x");
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": {"code": "not_found", "message": "no app named x"}})
        );
    }

    #[test]
    fn job_spec_defaults_fill_in() {
        let spec: JobSpec = serde_json::from_str(
            r#"{"id":"j1","image":{"registry":"http://r","repository":"a","reference":"latest"}}"#,
        )
        .unwrap();
        assert!(spec.command.is_empty());
        assert!(spec.output.is_none());
        assert_eq!(spec.port, None);
    }

    #[test]
    fn job_state_is_snake_case() {
        assert_eq!(
            serde_json::to_string(&JobState::Crashed).unwrap(),
            "\"crashed\""
        );
    }
}
