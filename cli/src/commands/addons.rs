//! `paas addons -a APP`, `addons:create SERVICE`, `addons:info ADDON`, `addons:attach ADDON
//! --as NAME`, `addons:detach ADDON`, `addons:destroy ADDON --confirm APP`: PostgreSQL and
//! Redis add-ons run by paas, with their URL set on the app as a config var.

use std::time::{Duration, Instant};

use paas_api::Addon;

use super::{CommandError, Context};
use crate::output::{self, Spinner, Table};

/// How long `addons:create --wait` waits for the add-on to answer.
const WAIT: Duration = Duration::from_secs(300);

/// `n` bytes as Heroku prints a database's size: `8.5 MB`, `1.2 GB`, `512 bytes` (units of
/// 1024, as PostgreSQL's `pg_size_pretty`).
pub(crate) fn data_size(n: u64) -> String {
    match output::scale_1024(n) {
        (_, 0) => format!("{n} bytes"),
        (v, p) => format!("{v:.1} {}", ["kB", "MB", "GB", "TB"][p - 1]),
    }
}

/// The SIZE column: the data's size, or `-` when it is not known (not measured yet, or
/// its node is down).
fn size_cell(a: &Addon) -> String {
    a.data_bytes.map_or_else(|| "-".into(), data_size)
}

/// NAME, SERVICE, PLAN, STATE, NODE, SIZE, AS, CREATED.
pub(super) fn list(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let addons: Vec<Addon> = {
        let _spinner = Spinner::start("Listing add-ons…", ctx.json);
        client.get(&format!("/v1/apps/{app}/addons"))?
    };
    if ctx.json {
        output::print(&output::json(&addons));
        return Ok(());
    }
    if addons.is_empty() {
        output::print(&format!(
            "{app} has no add-ons. Create one with `paas addons:create postgresql -a {app}` \
             (or redis).\n"
        ));
        return Ok(());
    }
    let mut table = Table::new(&[
        "name", "service", "plan", "state", "node", "size", "as", "created",
    ]);
    for a in &addons {
        let owner = if a.app == app {
            String::new()
        } else {
            format!(" (of {})", a.app)
        };
        table.row(vec![
            format!("{}{owner}", a.name),
            a.service.clone(),
            a.plan.clone(),
            a.state.clone(),
            a.node.clone().unwrap_or_else(|| "-".into()),
            size_cell(a),
            a.config_var.clone().unwrap_or_default(),
            a.created_at.clone(),
        ]);
    }
    output::print(&table.render());
    Ok(())
}

fn describe(a: &Addon) -> String {
    let mut s = format!(
        "=== {}\nService:     {}\nPlan:        {}\nOwner app:   {}\nState:       {}\n",
        a.name, a.service, a.plan, a.app, a.state
    );
    if let Some(r) = &a.state_reason {
        s.push_str(&format!("Why:         {r}\n"));
    }
    s.push_str(&format!(
        "Node:        {}\n",
        a.node.as_deref().unwrap_or("(not placed yet)")
    ));
    let size = match (&a.data_bytes, &a.data_measured_at) {
        (Some(_), Some(at)) => format!("{} (measured {at})", size_cell(a)),
        (Some(_), None) => size_cell(a),
        (None, _) if a.node.is_some() => "unknown (not measured yet, or its node is down)".into(),
        (None, _) => "-".into(),
    };
    s.push_str(&format!("Data size:   {size}\n"));
    for t in &a.attachments {
        s.push_str(&format!("Attached to: {} as {}\n", t.app, t.config_var));
    }
    s.push_str(&format!("Restarts:    {}\n", a.restarts));
    s.push_str(&format!("Created:     {}\n", a.created_at));
    s
}

pub(super) fn info(ctx: &Context, app: &str, addon: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let a: Addon = client.get(&format!("/v1/apps/{app}/addons/{addon}"))?;
    if ctx.json {
        output::print(&output::json(&a));
    } else {
        output::print(&describe(&a));
    }
    Ok(())
}

pub(super) fn create(
    ctx: &Context,
    app: &str,
    service: &str,
    plan: Option<&str>,
    as_name: Option<&str>,
    wait: bool,
) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let mut a: Addon = {
        let _spinner = Spinner::start("Creating the add-on…", ctx.json);
        client.post(
            &format!("/v1/apps/{app}/addons"),
            &serde_json::json!({ "service": service, "plan": plan, "as": as_name }),
        )?
    };
    let var = a.config_var.clone().unwrap_or_default();
    if wait {
        let _spinner = Spinner::start("Waiting for the add-on to answer…", ctx.json);
        let start = Instant::now();
        while a.state != "available" && start.elapsed() < WAIT {
            std::thread::sleep(Duration::from_secs(1));
            a = client.get(&format!("/v1/apps/{app}/addons/{}", a.name))?;
        }
    }
    if ctx.json {
        output::print(&output::json(&a));
    } else if a.state == "available" {
        output::print(&format!(
            "Created {} ({} {}) on {app}: it is available and {var} is set (a new release).\n",
            a.name, a.service, a.plan
        ));
    } else {
        output::print(&format!(
            "Created {} ({} {}) on {app}: it is {}. {var} is set on {app} (a new release) once \
             it answers; `paas addons:info {} -a {app}` shows its state.\n",
            a.name, a.service, a.plan, a.state, a.name
        ));
    }
    Ok(())
}

pub(super) fn attach(
    ctx: &Context,
    app: &str,
    addon: &str,
    as_name: Option<&str>,
) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let a: Addon = client.post(
        &format!("/v1/apps/{app}/addon-attachments"),
        &serde_json::json!({ "addon": addon, "as": as_name }),
    )?;
    if ctx.json {
        output::print(&output::json(&a));
    } else {
        output::print(&format!(
            "Attached {} to {app} as {}.\n",
            a.name,
            a.config_var.unwrap_or_default()
        ));
    }
    Ok(())
}

pub(super) fn detach(ctx: &Context, app: &str, addon: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    client.delete(&format!("/v1/apps/{app}/addon-attachments/{addon}"))?;
    if ctx.json {
        output::print(&output::json(
            &serde_json::json!({"detached": addon, "app": app}),
        ));
    } else {
        output::print(&format!("Detached {addon} from {app}.\n"));
    }
    Ok(())
}

pub(super) fn destroy(
    ctx: &Context,
    app: &str,
    addon: &str,
    confirm: Option<&str>,
) -> Result<(), CommandError> {
    if confirm != Some(app) {
        return Err(CommandError::Usage(format!(
            "this deletes {addon}, all its data and its backups for good (and its URL on every app it is \
             attached to): run `paas addons:destroy {addon} -a {app} --confirm {app}` to go ahead"
        )));
    }
    let client = ctx.client()?;
    {
        let _spinner = Spinner::start("Destroying the add-on…", ctx.json);
        client.delete(&format!("/v1/apps/{app}/addons/{addon}?confirm={app}"))?;
    }
    if ctx.json {
        output::print(&output::json(&serde_json::json!({"destroyed": addon})));
    } else {
        output::print(&format!("Destroyed {addon}, its data and its backups.\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::data_size;

    #[test]
    fn sizes_read_like_herokus() {
        assert_eq!(data_size(0), "0 bytes");
        assert_eq!(data_size(512), "512 bytes");
        assert_eq!(data_size(8_912_896), "8.5 MB");
        assert_eq!(data_size(7 << 30), "7.0 GB");
        assert_eq!(data_size(1536), "1.5 kB");
    }
}
