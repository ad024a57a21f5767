//! `paas pg:psql -a APP [ADDON] [-c SQL]`, `pg:backups -a APP`, `pg:backups:capture -a APP
//! [ADDON]`, `pg:backups:restore BACKUP -a APP [ADDON] --confirm APP`,
//! `pg:backups:delete BACKUP -a APP`, `pg:backups:download [BACKUP] -a APP [-o FILE]`,
//! `pg:backups:schedule -a APP [ADDON] --at HH:MM
//! --keep N`, `pg:backups:schedules -a APP`, `pg:backups:unschedule -a APP [ADDON]`: psql
//! and backups of PostgreSQL add-ons; `redis:backups`, `redis:backups:capture`,
//! `redis:backups:delete`, `redis:backups:download`, `redis:backups:restore BACKUP -a APP [ADDON] --confirm APP`: RDB
//! snapshots of Redis add-ons.

use std::time::{Duration, Instant};

use paas_api::{Addon, PgBackup, PgBackupSchedule};

use super::{CommandError, Context};
use crate::output::{self, Spinner, Table};

/// How long `pg:backups:capture` and `restore` wait for the dump to end.
const WAIT: Duration = Duration::from_secs(6 * 3600);

/// The PostgreSQL add-on named, or the app's only one.
fn pick(ctx: &Context, app: &str, addon: Option<&str>) -> Result<String, CommandError> {
    pick_of(ctx, app, "postgresql", addon)
}

/// The add-on of `service` named, or the app's only one.
fn pick_of(
    ctx: &Context,
    app: &str,
    service: &str,
    addon: Option<&str>,
) -> Result<String, CommandError> {
    if let Some(a) = addon {
        return Ok(a.to_string());
    }
    let addons: Vec<Addon> = ctx.client()?.get(&format!("/v1/apps/{app}/addons"))?;
    let pg: Vec<&Addon> = addons.iter().filter(|a| a.service == service).collect();
    match pg.as_slice() {
        [one] => Ok(one.name.clone()),
        [] => Err(CommandError::Usage(format!(
            "{app} has no {service} add-on: create one with `paas addons:create {service} -a \
             {app}`"
        ))),
        many => Err(CommandError::Usage(format!(
            "{app} has {} {service} add-ons: name one ({})",
            many.len(),
            many.iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `pg:psql`: the exit code of psql.
pub(super) fn psql(
    ctx: &Context,
    app: &str,
    addon: Option<&str>,
    command: Option<&str>,
) -> Result<i32, CommandError> {
    let addon = pick(ctx, app, addon)?;
    let args = match command {
        Some(sql) => vec!["-X".into(), "-c".into(), sql.to_string()],
        None => Vec::new(),
    };
    super::exec::pg_psql(ctx, app, &addon, args)
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// ID, ADDON, SIZE, CREATED, STATE of `kind` (`pg` or `redis`) backups.
pub(super) fn list(ctx: &Context, app: &str, kind: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let backups: Vec<PgBackup> = if kind == "redis" {
        client.get(&format!("/v1/apps/{app}/redis-backups"))?
    } else {
        client.get(&format!("/v1/apps/{app}/pg-backups"))?
    };
    if ctx.json {
        output::print(&output::json(&backups));
        return Ok(());
    }
    if backups.is_empty() {
        output::print(&format!(
            "{app} has no backups. Take one with `paas {kind}:backups:capture -a {app}`.\n"
        ));
        return Ok(());
    }
    let mut table = Table::new(&["id", "addon", "size", "created", "state"]);
    for b in &backups {
        let state = match &b.error {
            Some(e) => format!("{} ({e})", b.state),
            None => b.state.clone(),
        };
        table.row(vec![
            b.id.clone(),
            b.addon.clone(),
            size(b.size_bytes),
            b.created_at.clone(),
            state,
        ]);
    }
    output::print(&table.render());
    Ok(())
}

/// `pg:backups:capture` / `redis:backups:capture`: starts a backup and waits for it to end.
pub(super) fn capture(
    ctx: &Context,
    app: &str,
    kind: &str,
    addon: Option<&str>,
) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let body = serde_json::json!({ "addon": addon });
    let mut b: PgBackup = if kind == "redis" {
        client.post(&format!("/v1/apps/{app}/redis-backups"), &body)?
    } else {
        client.post(&format!("/v1/apps/{app}/pg-backups"), &body)?
    };
    {
        let _spinner = Spinner::start("Capturing the backup…", ctx.json);
        let start = Instant::now();
        while b.state == "running" && start.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(500));
            let id = &b.id;
            b = if kind == "redis" {
                client.get(&format!("/v1/apps/{app}/redis-backups/{id}"))?
            } else {
                client.get(&format!("/v1/apps/{app}/pg-backups/{id}"))?
            };
        }
    }
    if ctx.json {
        output::print(&output::json(&b));
        return Ok(());
    }
    match b.state.as_str() {
        "completed" => {
            output::print(&format!(
                "Backup {} of {} completed ({}). Restore it with `paas {kind}:backups:restore {} \
                 -a {app} --confirm {app}`.\n",
                b.id,
                b.addon,
                size(b.size_bytes),
                b.id
            ));
            Ok(())
        }
        "running" => Err(CommandError::Usage(format!(
            "backup {} is still running; `paas {kind}:backups -a {app}` shows when it ends",
            b.id
        ))),
        _ => Err(CommandError::Usage(format!(
            "backup {} failed: {}",
            b.id,
            b.error.unwrap_or_default()
        ))),
    }
}

/// `pg:backups:restore` / `redis:backups:restore` (`kind` is `pg` or `redis`).
pub(super) fn restore(
    ctx: &Context,
    app: &str,
    kind: &str,
    backup: &str,
    addon: Option<&str>,
    confirm: Option<&str>,
) -> Result<(), CommandError> {
    let what = if kind == "redis" { "Redis" } else { "database" };
    if confirm != Some(app) {
        return Err(CommandError::Usage(format!(
            "this replaces the data of {app}'s {what} with backup {backup}: run `paas \
             {kind}:backups:restore {backup} -a {app} --confirm {app}` to go ahead"
        )));
    }
    let client = ctx.client()?;
    // Each path written out whole: cli/src/routes.rs checks every path the CLI sends.
    let path = if kind == "redis" {
        format!("/v1/apps/{app}/redis-backups/{backup}/restore?confirm={app}")
    } else {
        format!("/v1/apps/{app}/pg-backups/{backup}/restore?confirm={app}")
    };
    let b: PgBackup = {
        let _spinner = Spinner::start("Restoring the backup…", ctx.json);
        client.post_slow(&path, &serde_json::json!({ "addon": addon }), WAIT)?
    };
    if ctx.json {
        output::print(&output::json(&b));
    } else {
        output::print(&format!(
            "Restored {} (from {}) into {app}'s {what}.\n",
            b.id, b.addon
        ));
    }
    Ok(())
}

/// `pg:backups:delete` / `redis:backups:delete`.
pub(super) fn delete(
    ctx: &Context,
    app: &str,
    kind: &str,
    backup: &str,
) -> Result<(), CommandError> {
    let client = ctx.client()?;
    if kind == "redis" {
        client.delete(&format!("/v1/apps/{app}/redis-backups/{backup}"))?;
    } else {
        client.delete(&format!("/v1/apps/{app}/pg-backups/{backup}"))?;
    }
    if ctx.json {
        output::print(&output::json(&serde_json::json!({"deleted": backup})));
    } else {
        output::print(&format!("Deleted backup {backup}.\n"));
    }
    Ok(())
}

/// `pg:backups:download` / `redis:backups:download`: the backup's file (the newest
/// completed one unless named) into `output` (default `latest.dump` / `latest.rdb`, as
/// Heroku's). Written next to it first and renamed when whole, so a cut download leaves
/// no file under that name.
pub(super) fn download(
    ctx: &Context,
    app: &str,
    kind: &str,
    backup: Option<&str>,
    output: Option<&std::path::Path>,
) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let id = match backup {
        Some(b) => b.to_string(),
        None => {
            let backups: Vec<PgBackup> = if kind == "redis" {
                client.get(&format!("/v1/apps/{app}/redis-backups"))?
            } else {
                client.get(&format!("/v1/apps/{app}/pg-backups"))?
            };
            backups
                .iter()
                .filter(|b| b.state == "completed")
                .max_by(|a, b| a.created_at.cmp(&b.created_at))
                .map(|b| b.id.clone())
                .ok_or_else(|| {
                    CommandError::Usage(format!(
                        "{app} has no completed backup to download: take one with `paas \
                         {kind}:backups:capture -a {app}`"
                    ))
                })?
        }
    };
    let default = if kind == "redis" {
        "latest.rdb"
    } else {
        "latest.dump"
    };
    let path = output.unwrap_or(std::path::Path::new(default));
    let partial = {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        path.with_file_name(name)
    };
    let cant = |what: &str, e: std::io::Error| {
        CommandError::Usage(format!("cannot {what} {}: {e}", partial.display()))
    };
    let mut file = std::fs::File::create(&partial).map_err(|e| cant("write", e))?;
    let got = if kind == "redis" {
        client.download(
            &format!("/v1/apps/{app}/redis-backups/{id}/download"),
            &mut file,
        )
    } else {
        client.download(
            &format!("/v1/apps/{app}/pg-backups/{id}/download"),
            &mut file,
        )
    };
    let bytes = match got.map_err(CommandError::from).and_then(|n| {
        file.sync_all().map_err(|e| cant("write", e))?;
        Ok(n)
    }) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, path).map_err(|e| cant("rename", e))?;
    if ctx.json {
        output::print(&output::json(&serde_json::json!({
            "backup": id, "file": path.display().to_string(), "bytes": bytes
        })));
    } else {
        output::print(&format!(
            "Downloaded backup {id} ({}) to {}.\n",
            size(bytes),
            path.display()
        ));
    }
    Ok(())
}

/// `pg:backups:schedule`.
pub(super) fn schedule(
    ctx: &Context,
    app: &str,
    addon: Option<&str>,
    at: &str,
    keep: u32,
) -> Result<(), CommandError> {
    let addon = pick(ctx, app, addon)?;
    let s: PgBackupSchedule = ctx.client()?.put(
        &format!("/v1/apps/{app}/pg-backup-schedules/{addon}"),
        &serde_json::json!({ "at": at, "keep": keep }),
    )?;
    if ctx.json {
        output::print(&output::json(&s));
    } else {
        output::print(&format!(
            "{} is backed up every day at {} UTC; the newest {} scheduled backups are kept.\n",
            s.addon, s.at, s.keep
        ));
    }
    Ok(())
}

/// `pg:backups:schedules`.
pub(super) fn schedules(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let all: Vec<PgBackupSchedule> = ctx
        .client()?
        .get(&format!("/v1/apps/{app}/pg-backup-schedules"))?;
    if ctx.json {
        output::print(&output::json(&all));
        return Ok(());
    }
    if all.is_empty() {
        output::print(&format!(
            "{app} has no backup schedule. Set one with `paas pg:backups:schedule -a {app} --at \
             02:00 --keep 7`.\n"
        ));
        return Ok(());
    }
    let mut table = Table::new(&["addon", "at (utc)", "keep", "last run"]);
    for s in &all {
        table.row(vec![
            s.addon.clone(),
            s.at.clone(),
            s.keep.to_string(),
            s.last_run.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    output::print(&table.render());
    Ok(())
}

/// `pg:backups:unschedule`.
pub(super) fn unschedule(
    ctx: &Context,
    app: &str,
    addon: Option<&str>,
) -> Result<(), CommandError> {
    let addon = pick(ctx, app, addon)?;
    ctx.client()?
        .delete(&format!("/v1/apps/{app}/pg-backup-schedules/{addon}"))?;
    if ctx.json {
        output::print(&output::json(&serde_json::json!({"unscheduled": addon})));
    } else {
        output::print(&format!(
            "{addon} is no longer backed up every day (its backups stay).\n"
        ));
    }
    Ok(())
}
