//! Add-ons: a PostgreSQL 15 or Redis 7 service per add-on, run as a paas job (kind
//! `addon`) from the service images `deploy/build-stack postgresql|redis` makes (imported as
//! `services/<name>`, which members can neither push nor deploy as app images), with its
//! data on a node-local volume of the agent (`addon-<id>`) and pinned to that node.
//!
//! An add-on is its own tenant on the nodes ([`tenant`]: its own uid range and walls); the
//! apps it is attached to are its job's [`paas_api::JobSpec::guests`], so their jobs (and
//! nothing else) pass the agent's walls to its port. Its credential is generated here, kept
//! in the store, handed to the job in its environment (never its argv) and set on each
//! attached app as a config var (`DATABASE_URL`, `REDIS_URL`, or `<AS>_URL`) in a release
//! of [`crate::apps::set_config`], once the add-on answers.
//!
//! The pure parts (services, plans, names, URLs, the job spec, the restart delay) live here;
//! [`supervisor`] is the leader's loop that starts, checks, restarts and tears down the
//! jobs; [`ops`] are the create/attach/detach/destroy operations the API calls.

pub mod backups;
pub mod ops;
pub mod supervisor;

use std::collections::BTreeMap;
use std::time::Duration;

use paas_api::{ImageRef, JobSpec, VolumeMount};

use crate::config::Settings;
use crate::scheduler::labels;
use crate::store::AddonRow;

/// The job label kind of add-on jobs.
pub const KIND_ADDON: &str = "addon";
/// The label with the add-on's name.
pub const LABEL_ADDON: &str = "paas.addon";
/// The label with the guests (attached apps' numbers) the job was started with.
pub const LABEL_GUESTS: &str = "paas.guests";

/// Add-on tenants are `2^30 + id`: above every app's number (apps are numbered from 1
/// and would need a billion apps to meet them) and below the agent's own-tenant marks
/// (`2^31`).
pub const TENANT_BASE: u32 = 1 << 30;

/// A service plan: the job's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub name: &'static str,
    pub memory_bytes: u64,
    pub cpu_millicores: u32,
}

/// A service paas offers as an add-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub name: &'static str,
    /// The port the service listens on in its job.
    pub port: u16,
    /// The config var an attachment gets unless `--as` names another.
    pub default_var: &'static str,
    pub plans: &'static [Plan],
    /// The plan `addons:create` takes without `--plan`.
    pub default_plan: &'static str,
}

const MIB: u64 = 1024 * 1024;

/// Every service, in the order `paas addons:services` would list them.
pub const SERVICES: &[Service] = &[
    Service {
        name: "postgresql",
        port: 5432,
        default_var: "DATABASE_URL",
        plans: &[
            Plan {
                name: "mini",
                memory_bytes: 256 * MIB,
                cpu_millicores: 500,
            },
            Plan {
                name: "basic",
                memory_bytes: 512 * MIB,
                cpu_millicores: 1000,
            },
            Plan {
                name: "standard",
                memory_bytes: 2048 * MIB,
                cpu_millicores: 2000,
            },
        ],
        default_plan: "mini",
    },
    Service {
        name: "redis",
        port: 6379,
        default_var: "REDIS_URL",
        plans: &[
            Plan {
                name: "mini",
                memory_bytes: 128 * MIB,
                cpu_millicores: 250,
            },
            Plan {
                name: "basic",
                memory_bytes: 256 * MIB,
                cpu_millicores: 500,
            },
            Plan {
                name: "standard",
                memory_bytes: 1024 * MIB,
                cpu_millicores: 1000,
            },
        ],
        default_plan: "mini",
    },
];

/// Errors of choosing a service, plan or attachment name (the API's 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddonsError {
    #[error("there is no add-on service {given:?}: the services are {known}")]
    UnknownService { given: String, known: String },
    #[error("{service} has no plan {given:?}: its plans are {known}")]
    UnknownPlan {
        service: String,
        given: String,
        known: String,
    },
    #[error(
        "--as {0:?} is not a valid attachment name: letters, digits and `_`, starting with a \
         letter (it becomes the config var <NAME>_URL), like ANALYTICS"
    )]
    BadAttachmentName(String),
}

impl AddonsError {
    /// The stable code of the API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            AddonsError::UnknownService { .. } => "unknown_addon_service",
            AddonsError::UnknownPlan { .. } => "unknown_addon_plan",
            AddonsError::BadAttachmentName(_) => "invalid_attachment_name",
        }
    }
}

/// The service named `name`.
pub fn service(name: &str) -> Result<&'static Service, AddonsError> {
    SERVICES
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| AddonsError::UnknownService {
            given: name.to_string(),
            known: SERVICES
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The plan `name` of `service` (its default plan for `None`).
pub fn plan(service: &Service, name: Option<&str>) -> Result<&'static Plan, AddonsError> {
    let want = name.unwrap_or(service.default_plan);
    let known = || {
        service
            .plans
            .iter()
            .map(|p| format!("{} ({} MiB)", p.name, p.memory_bytes / MIB))
            .collect::<Vec<_>>()
            .join(", ")
    };
    service
        .plans
        .iter()
        .find(|p| p.name == want)
        .ok_or_else(|| AddonsError::UnknownPlan {
            service: service.name.to_string(),
            given: want.to_string(),
            known: known(),
        })
}

/// The registry repository of a service image (`services/<name>`), or None when `name` is
/// not a service (then it is a stack).
pub fn image_repository(name: &str) -> Option<String> {
    SERVICES
        .iter()
        .any(|s| s.name == name)
        .then(|| format!("services/{name}"))
}

/// The config var of an attachment: `<AS>_URL` (upper-cased, a trailing `_URL` not
/// doubled), or the service's default.
pub fn attachment_var(service: &Service, as_name: Option<&str>) -> Result<String, AddonsError> {
    let Some(raw) = as_name else {
        return Ok(service.default_var.to_string());
    };
    let name = raw.trim().to_ascii_uppercase();
    let ok = name.len() <= 60
        && name.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(AddonsError::BadAttachmentName(raw.to_string()));
    }
    Ok(if name.ends_with("_URL") {
        name
    } else {
        format!("{name}_URL")
    })
}

/// The tenant of add-on number `id` on the nodes.
pub fn tenant(id: u32) -> u32 {
    TENANT_BASE + (id % TENANT_BASE)
}

/// The node-local volume with the add-on's data.
pub fn volume(id: u32) -> String {
    format!("addon-{id}")
}

/// The add-on number whose volume is named `name` (the inverse of [`volume`]).
pub fn volume_addon_id(name: &str) -> Option<u32> {
    let id = name.strip_prefix("addon-")?;
    // Canonical digits only, so one volume has one name.
    (!id.starts_with('0')).then(|| id.parse().ok()).flatten()
}

/// Records the sizes of add-on volumes that a heartbeat of `node` carries (the agent's
/// measurement, [`paas_api::NodeHeartbeat::volumes`]). Other volumes (apps' sized volumes)
/// are asked from the agent when they are listed. A failure is logged: the size waits for
/// the next measurement.
pub async fn record_volume_use(
    c: &crate::state::Controller,
    node: &str,
    volumes: &[paas_api::VolumeUse],
) {
    for v in volumes {
        let Some(id) = volume_addon_id(&v.name) else {
            continue;
        };
        if let Err(e) = c
            .store
            .record_addon_data(id, node, v.used_bytes, &v.measured_at)
            .await
        {
            tracing::warn!(%node, volume = %v.name, "recording an add-on's data size: {e}");
        }
    }
}

/// The database user and name of a PostgreSQL add-on.
pub fn pg_user(id: u32) -> String {
    format!("u{id}")
}

pub fn pg_database(id: u32) -> String {
    format!("d{id}")
}

/// The URL an attached app gets for an add-on reached at `addr` (`IP:PORT`).
pub fn url(a: &AddonRow, addr: &str) -> String {
    match a.service.as_str() {
        "postgresql" => format!(
            "postgres://{}:{}@{addr}/{}",
            pg_user(a.id),
            a.password,
            pg_database(a.id)
        ),
        _ => format!("redis://default:{}@{addr}", a.password),
    }
}

/// The CPU weight of `plan`: 1024 `cpu.shares` per core, as apps' sizes
/// ([`paas_api::sizes::cpu`]).
pub fn plan_shares(plan: &Plan) -> u64 {
    (u64::from(plan.cpu_millicores) * 1024 / 1000).clamp(2, 262_144)
}

/// The job that runs add-on `a` now: its service image, the plan's limits, its volume at
/// `/data`, its own tenant and `guests` (the attached apps' numbers) let in.
pub fn job_spec(settings: &Settings, a: &AddonRow, job_id: &str, guests: &[u32]) -> JobSpec {
    let service = service(&a.service).unwrap_or(&SERVICES[0]);
    let plan = plan(service, Some(&a.plan))
        .copied()
        .unwrap_or(service.plans[0]);
    let mut env = BTreeMap::new();
    env.insert("PAAS_ADDON_PASSWORD".to_string(), a.password.clone());
    if a.service == "postgresql" {
        env.insert("PAAS_ADDON_USER".to_string(), pg_user(a.id));
        env.insert("PAAS_ADDON_DB".to_string(), pg_database(a.id));
    }
    let guest_list: Vec<String> = guests.iter().map(u32::to_string).collect();
    let labels = BTreeMap::from([
        (labels::KIND.to_string(), KIND_ADDON.to_string()),
        (LABEL_ADDON.to_string(), a.name.clone()),
        (LABEL_GUESTS.to_string(), guest_list.join(",")),
        (labels::TYPE.to_string(), KIND_ADDON.to_string()),
        (labels::DYNO.to_string(), format!("addon.{}", a.name)),
    ]);
    JobSpec {
        id: job_id.to_string(),
        labels,
        image: ImageRef {
            registry: settings.internal_url.clone(),
            repository: format!("services/{}", a.service),
            reference: "latest".to_string(),
        },
        command: Vec::new(),
        env,
        working_dir: None,
        port: Some(service.port),
        memory_bytes: Some(plan.memory_bytes),
        pids_limit: Some(512),
        cpu_millicores: Some(plan.cpu_millicores),
        // 1024 shares per core of the plan, as an app's size has: under contention a
        // `standard` database gets twice the CPU of a one-core app, not the default weight
        // of any job.
        cpu_shares: Some(plan_shares(&plan)),
        inputs: Vec::new(),
        volumes: vec![VolumeMount {
            name: volume(a.id),
            path: "/data".to_string(),
            readonly: false,
        }],
        output: None,
        hostname: Some(a.name.clone()),
        user_namespace: true,
        tenant: Some(tenant(a.id)),
        api_access: false,
        guests: guests.to_vec(),
    }
}

/// The heartbeat answer's [`paas_api::ADDON_PORTS`] for node `me`: `IPV4:PORT/APP` for every
/// add-on on another node with an address and every app attached to it.
pub async fn remote_ports(
    c: &crate::state::Controller,
    me: &str,
) -> Result<String, crate::store::StoreError> {
    let addons = c.store.addons().await?;
    if addons.is_empty() {
        return Ok(String::new());
    }
    let attachments = c.store.addon_attachments(None).await?;
    Ok(remote_ports_of(&addons, &attachments, me).join(","))
}

/// The entries of [`remote_ports`] (pure).
pub fn remote_ports_of(
    addons: &[AddonRow],
    attachments: &[crate::store::AttachmentRow],
    me: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for a in addons.iter().filter(|a| a.node.as_deref() != Some(me)) {
        let Some(addr) = a
            .addr
            .as_deref()
            .and_then(|s| s.parse::<std::net::SocketAddrV4>().ok())
        else {
            continue;
        };
        for t in attachments.iter().filter(|t| t.addon == a.name) {
            out.push(format!("{addr}/{}", t.app_id));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The jobs of `app`'s own add-ons, as job rows for `paas logs` (type `addon`).
pub async fn log_jobs(
    c: &crate::state::Controller,
    app: &str,
) -> Result<Vec<crate::store::JobRow>, crate::store::StoreError> {
    let Some(id) = c.store.app_id(app).await? else {
        return Ok(Vec::new());
    };
    Ok(c.store
        .addons()
        .await?
        .into_iter()
        .filter(|a| a.app_id == id)
        .filter_map(|a| {
            Some(crate::store::JobRow {
                id: a.job_id?,
                app: app.to_string(),
                release: 0,
                process_type: KIND_ADDON.to_string(),
                node: a.node?,
                state: a.state,
                addr: None,
                exit_reason: a.last_exit,
                created_at: a.created_at.clone(),
                updated_at: a.created_at,
            })
        })
        .collect())
}

/// How long to wait before starting a crashed add-on again: 1 s doubling per crash in a
/// row, at most 5 min.
pub fn restart_delay(crashes: u32) -> Duration {
    let secs = 1u64 << crashes.saturating_sub(1).min(9);
    Duration::from_secs(secs.min(300))
}

/// The guests a job was started with, from its label.
pub fn guests_of(labels: &BTreeMap<String, String>) -> Vec<u32> {
    let mut g: Vec<u32> = labels
        .get(LABEL_GUESTS)
        .map(|s| s.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    g.sort_unstable();
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> AddonRow {
        AddonRow {
            name: "postgresql-shop-1a2b".into(),
            id: 42,
            service: "postgresql".into(),
            plan: "mini".into(),
            app_id: 3,
            password: "s3cret".into(),
            node: None,
            job_id: None,
            state: "creating".into(),
            addr: None,
            restarts: 0,
            last_exit: None,
            next_start_ms: 0,
            created_at: "2026-12-07T00:00:00Z".into(),
            data_bytes: None,
            data_measured_at: None,
        }
    }

    #[test]
    fn unknown_services_and_plans_list_the_ones_there_are() {
        let err = service("mysql").unwrap_err();
        assert_eq!(err.code(), "unknown_addon_service");
        assert!(err.to_string().contains("postgresql, redis"), "{err}");
        let pg = service("postgresql").unwrap();
        assert_eq!(plan(pg, None).unwrap().name, "mini");
        let err = plan(pg, Some("huge")).unwrap_err().to_string();
        assert!(
            err.contains("mini (256 MiB), basic (512 MiB), standard"),
            "{err}"
        );
    }

    #[test]
    fn attachment_names_become_url_vars() {
        let pg = service("postgresql").unwrap();
        assert_eq!(attachment_var(pg, None).unwrap(), "DATABASE_URL");
        assert_eq!(
            attachment_var(pg, Some("analytics")).unwrap(),
            "ANALYTICS_URL"
        );
        assert_eq!(attachment_var(pg, Some("CACHE_URL")).unwrap(), "CACHE_URL");
        for bad in ["", "1X", "A-B", "A B", "É"] {
            assert!(attachment_var(pg, Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_job_keeps_the_password_out_of_its_argv_and_runs_as_its_own_tenant() {
        let s = Settings::new(
            std::env::temp_dir(),
            "127.0.0.1:8080".parse().unwrap(),
            8000,
            "localhost",
        )
        .unwrap();
        let spec = job_spec(&s, &row(), "addon-42-abcd", &[3, 7]);
        assert!(spec.command.iter().all(|a| !a.contains("s3cret")));
        assert_eq!(spec.env["PAAS_ADDON_PASSWORD"], "s3cret");
        assert_eq!(spec.tenant, Some(TENANT_BASE + 42));
        assert!(spec.user_namespace);
        assert_eq!(spec.guests, [3, 7]);
        assert_eq!(guests_of(&spec.labels), [3, 7]);
        assert_eq!(spec.image.repository, "services/postgresql");
        assert_eq!(spec.volumes[0].name, "addon-42");
        assert_eq!(spec.memory_bytes, Some(256 * MIB));
        assert!(!format!("{:?}", row()).contains("s3cret"), "Debug hides it");
        assert_eq!(
            url(&row(), "10.0.0.5:5432"),
            "postgres://u42:s3cret@10.0.0.5:5432/d42"
        );
    }

    #[test]
    fn other_nodes_learn_each_attached_app_of_an_addon_with_an_address() {
        let mut a = row();
        a.node = Some("n1".into());
        a.addr = Some("10.240.0.11:20005".into());
        let mut b = row();
        b.name = "redis-x-0000".into();
        b.node = Some("n2".into());
        b.addr = None;
        let t = |addon: &str, app_id: u32| crate::store::AttachmentRow {
            addon: addon.into(),
            app_id,
            app: Some("x".into()),
            var: "DATABASE_URL".into(),
            created_at: String::new(),
        };
        let ts = [t(&a.name, 3), t(&a.name, 9), t("redis-x-0000", 4)];
        let addons = [a.clone(), b];
        assert_eq!(
            remote_ports_of(&addons, &ts, "n2"),
            ["10.240.0.11:20005/3", "10.240.0.11:20005/9"]
        );
        assert!(
            remote_ports_of(&addons, &ts, "n1").is_empty(),
            "its own node"
        );
    }

    #[test]
    fn a_plans_cores_are_its_cpu_weight() {
        let pg = service("postgresql").unwrap();
        let shares: Vec<u64> = pg.plans.iter().map(plan_shares).collect();
        assert_eq!(shares, [512, 1024, 2048], "mini, basic, standard");
        assert_eq!(
            paas_api::sizes::cpu(1024 * MIB).shares,
            2048,
            "an app of two cores weighs the same"
        );
    }

    #[test]
    fn restarts_back_off_to_five_minutes() {
        assert_eq!(restart_delay(1), Duration::from_secs(1));
        assert_eq!(restart_delay(2), Duration::from_secs(2));
        assert_eq!(restart_delay(5), Duration::from_secs(16));
        assert_eq!(restart_delay(50), Duration::from_secs(300));
    }

    #[test]
    fn volume_names_name_their_addon() {
        assert_eq!(volume_addon_id(&volume(42)), Some(42));
        for other in [
            "addon-",
            "addon-042",
            "addon-x",
            "app-3-uploads",
            "addon-1-x",
        ] {
            assert_eq!(volume_addon_id(other), None, "{other}");
        }
    }

    #[test]
    fn only_service_names_are_service_images() {
        assert_eq!(image_repository("redis").as_deref(), Some("services/redis"));
        assert_eq!(image_repository("bookworm"), None);
    }
}
