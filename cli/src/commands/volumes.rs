//! `paas volumes -a APP`, `volumes:create NAME --size 1G [--node N]`, `volumes:mount NAME
//! PATH --type web`, `volumes:unmount NAME`, `volumes:destroy NAME --confirm APP`: an app's
//! persistent volumes (see docs/volumes.md).

use serde::Deserialize;
use serde_json::json;

use super::{CommandError, Context};
use crate::output::{self, Spinner, Table};

/// A volume as the controller returns it.
#[derive(Debug, Deserialize, serde::Serialize)]
struct Volume {
    name: String,
    size_bytes: u64,
    used_bytes: Option<u64>,
    available_bytes: Option<u64>,
    full: Option<bool>,
    node: String,
    node_state: String,
    mounts: Vec<Mount>,
    created_at: String,
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct Mount {
    #[serde(rename = "type")]
    process_type: String,
    path: String,
}

/// `n` bytes as people read them: `1G`, `1.5G`, `512M`, `3.2K`.
fn human(n: u64) -> String {
    match crate::output::scale_1024(n) {
        (_, 0) => format!("{n}B"),
        (v, p) => {
            let v = format!("{v:.1}");
            format!(
                "{}{}",
                v.trim_end_matches(".0"),
                ["K", "M", "G", "T"][p - 1]
            )
        }
    }
}

fn used(v: &Volume) -> String {
    match (v.used_bytes, v.full) {
        (Some(u), Some(true)) => format!("{} (FULL)", human(u)),
        (Some(u), _) => format!("{} ({}%)", human(u), u * 100 / v.size_bytes.max(1)),
        (None, _) => "unknown".into(),
    }
}

fn mounts(v: &Volume) -> String {
    if v.mounts.is_empty() {
        return "-".into();
    }
    v.mounts
        .iter()
        .map(|m| format!("{}:{}", m.process_type, m.path))
        .collect::<Vec<_>>()
        .join(", ")
}

/// NAME, SIZE, USED, NODE, NODE STATE, MOUNTS.
pub(super) fn list(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let volumes: Vec<Volume> = {
        let _spinner = Spinner::start("Listing volumes…", ctx.json);
        client.get(&format!("/v1/apps/{app}/volumes"))?
    };
    if ctx.json {
        output::print(&output::json(&volumes));
        return Ok(());
    }
    if volumes.is_empty() {
        output::print(&format!(
            "{app} has no volumes. Create one with `paas volumes:create uploads -a {app} --size 1G`.\n"
        ));
        return Ok(());
    }
    let mut table = Table::new(&["name", "size", "used", "node", "node state", "mounts"]);
    for v in &volumes {
        table.row(vec![
            v.name.clone(),
            human(v.size_bytes),
            used(v),
            v.node.clone(),
            v.node_state.clone(),
            mounts(v),
        ]);
    }
    let mut text = table.render();
    for v in &volumes {
        if v.full == Some(true) {
            text.push_str(&format!(
                "{} is full: the app's writes to it fail with \"No space left on device\". Delete \
                 files, or create a bigger volume and copy them over.\n",
                v.name
            ));
        }
        if v.node_state == "down" {
            text.push_str(&format!(
                "{} is unavailable: its node {} is down; what mounts it waits until the node is \
                 back.\n",
                v.name, v.node
            ));
        }
    }
    output::print(&text);
    Ok(())
}

pub(super) fn create(
    ctx: &Context,
    app: &str,
    name: &str,
    size: &str,
    node: Option<&str>,
) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let mut body = json!({ "name": name, "size": size });
    if let Some(n) = node {
        body["node"] = json!(n);
    }
    let v: Volume = {
        let _spinner = Spinner::start("Creating volume…", ctx.json);
        client.post(&format!("/v1/apps/{app}/volumes"), &body)?
    };
    if ctx.json {
        output::print(&output::json(&v));
    } else {
        output::print(&format!(
            "Created volume {} ({}) on node {}. Mount it with `paas volumes:mount {} /app/{} -a \
             {app} --type web`.\n",
            v.name,
            human(v.size_bytes),
            v.node,
            v.name,
            v.name
        ));
    }
    Ok(())
}

pub(super) fn mount(
    ctx: &Context,
    app: &str,
    name: &str,
    path: &str,
    process_type: &str,
) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let v: Volume = {
        let _spinner = Spinner::start("Mounting volume…", ctx.json);
        client.put(
            &format!("/v1/apps/{app}/volumes/{name}/mount"),
            &json!({ "type": process_type, "path": path }),
        )?
    };
    if ctx.json {
        output::print(&output::json(&v));
    } else {
        output::print(&format!(
            "Mounted {} at {path} in {app}'s {process_type} processes. Restarting \
             {process_type} on node {} (the old process stops before the new one starts).\n",
            v.name, v.node
        ));
    }
    Ok(())
}

pub(super) fn unmount(ctx: &Context, app: &str, name: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    {
        let _spinner = Spinner::start("Unmounting volume…", ctx.json);
        client.delete(&format!("/v1/apps/{app}/volumes/{name}/mount"))?;
    }
    if ctx.json {
        output::print(&output::json(&json!({ "unmounted": name })));
    } else {
        output::print(&format!(
            "Unmounted {name}; restarting the processes that had it. Its files stay: mount it \
             again, or destroy it with `paas volumes:destroy {name} -a {app} --confirm {app}`.\n"
        ));
    }
    Ok(())
}

pub(super) fn destroy(
    ctx: &Context,
    app: &str,
    name: &str,
    confirm: Option<&str>,
) -> Result<(), CommandError> {
    if confirm != Some(app) {
        return Err(CommandError::Usage(format!(
            "destroying volume {name} deletes its files: confirm with `paas volumes:destroy \
             {name} -a {app} --confirm {app}`"
        )));
    }
    let client = ctx.client()?;
    {
        let _spinner = Spinner::start("Destroying volume…", ctx.json);
        client.delete(&format!("/v1/apps/{app}/volumes/{name}?confirm={app}"))?;
    }
    if ctx.json {
        output::print(&output::json(&json!({ "destroyed": name })));
    } else {
        output::print(&format!(
            "Destroyed volume {name} of {app} and its files.\n"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(super::human(100), "100B");
        assert_eq!(super::human(3277), "3.2K");
        assert_eq!(super::human(512 << 20), "512M");
        assert_eq!(super::human(1 << 30), "1G");
        assert_eq!(super::human(3 << 29), "1.5G");
        assert_eq!(super::human(2 << 40), "2T");
    }
}
