//! Add-ons on the wire: `GET /v1/apps/{app}/addons` and friends (see docs/addons.md).

use serde::{Deserialize, Serialize};

/// One add-on as an app it is attached to sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Addon {
    /// Unique across the platform, e.g. `postgresql-shop-1a2b`.
    pub name: String,
    /// `postgresql` or `redis`.
    pub service: String,
    pub plan: String,
    /// The app that made it (and whose `--confirm` destroys it).
    pub app: String,
    /// `creating`, `starting`, `available`, `crashed` or `unavailable`.
    pub state: String,
    /// Why it is not available (the last exit, a node that is down), when it is not.
    #[serde(default)]
    pub state_reason: Option<String>,
    /// The node its data lives on (it is pinned there).
    #[serde(default)]
    pub node: Option<String>,
    /// The config var holding its URL on the app that asked.
    #[serde(default)]
    pub config_var: Option<String>,
    /// The apps it is attached to (those the caller may see) and their config vars.
    #[serde(default)]
    pub attachments: Vec<AddonAttachment>,
    /// Crashes in a row (reset once it answers again).
    #[serde(default)]
    pub restarts: u32,
    /// What its data takes on its node's disk, in bytes (its volume, measured by the node's
    /// agent about every 30 s). `null` when it is not known: before the first measurement,
    /// and while its node is down.
    #[serde(default)]
    pub data_bytes: Option<u64>,
    /// When `data_bytes` was measured (RFC 3339), when it is known.
    #[serde(default)]
    pub data_measured_at: Option<String>,
    pub created_at: String,
}

/// One app an add-on is attached to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddonAttachment {
    pub app: String,
    pub config_var: String,
}

/// `POST /v1/apps/{app}/addons`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateAddon {
    /// `postgresql` or `redis`.
    pub service: String,
    /// Default: the service's smallest plan (`mini`).
    #[serde(default)]
    pub plan: Option<String>,
    /// The attachment's name: the URL is set as `<AS>_URL` instead of `DATABASE_URL` /
    /// `REDIS_URL`.
    #[serde(default, rename = "as")]
    pub as_name: Option<String>,
}

/// `POST /v1/apps/{app}/addon-attachments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttachAddon {
    pub addon: String,
    #[serde(default, rename = "as")]
    pub as_name: Option<String>,
}

/// One backup of a PostgreSQL add-on (`GET /v1/apps/{app}/pg-backups`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PgBackup {
    /// `b` and 12 hex digits.
    pub id: String,
    /// The add-on it was taken from.
    pub addon: String,
    /// The size of the dump (`pg_dump -Fc`) in bytes.
    pub size_bytes: u64,
    /// `running`, `completed` or `failed`.
    pub state: String,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    pub created_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
}

/// `POST /v1/apps/{app}/pg-backups` and `…/pg-backups/{id}/restore`: the add-on to back
/// up or to restore into (attached to the app); without it, the app's only PostgreSQL
/// add-on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PgBackupTarget {
    #[serde(default)]
    pub addon: Option<String>,
}

/// The daily backup schedule of a PostgreSQL add-on (`pg:backups:schedule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PgBackupSchedule {
    pub addon: String,
    /// `HH:MM`, UTC.
    pub at: String,
    /// How many scheduled backups are kept (older ones are deleted).
    pub keep: u32,
    /// When it last started a backup (RFC 3339), if ever.
    #[serde(default)]
    pub last_run: Option<String>,
}

/// `PUT /v1/apps/{app}/pg-backup-schedules/{addon}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetPgBackupSchedule {
    /// `HH:MM`, UTC.
    pub at: String,
    /// 1 to 90.
    pub keep: u32,
}
