//! `paas nodes` (the cluster's node agents with state, memory and job count),
//! `nodes:drain NAME` / `nodes:undrain NAME` and `nodes:remove NAME`, over `/v1/nodes`.

use paas_api::Node;
use serde_json::Value;

use super::{CommandError, Context};
use crate::output::{self, Table};

/// Memory in the units people read: GiB with one decimal, or MiB below 1 GiB.
fn human_bytes(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;
    if bytes >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB as f64)
    } else {
        format!("{} MiB", bytes / MIB)
    }
}

/// `paas nodes`: one row per node. JSON: the API's list as is.
pub(super) fn list(ctx: &Context) -> Result<(), CommandError> {
    let nodes: Value = ctx.client()?.get("/v1/nodes")?;
    if ctx.json {
        output::print(&output::json(&nodes));
        return Ok(());
    }
    let nodes: Vec<Node> = serde_json::from_value(nodes).unwrap_or_default();
    if nodes.is_empty() {
        output::print("No node has joined yet. Start one with `paas-agent --controller URL --token T --node-name N`.\n");
        return Ok(());
    }
    let mut table = Table::new(&["name", "state", "memory", "jobs", "last seen", "url"]);
    for n in &nodes {
        table.row(vec![
            n.name.clone(),
            n.state.clone(),
            human_bytes(n.memory_bytes),
            n.jobs.to_string(),
            n.last_seen.clone(),
            n.url.clone(),
        ]);
    }
    output::print(&table.render());
    Ok(())
}

/// `paas nodes:drain NAME` (`undo` = false) or `nodes:undrain NAME` (`undo` = true).
pub(super) fn drain(ctx: &Context, name: &str, undo: bool) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let path = format!("/v1/nodes/{name}/drain");
    if undo {
        client.delete(&path)?;
    } else {
        let _: Value = client.post(&path, &serde_json::json!({}))?;
    }
    if ctx.json {
        output::print(&output::json(
            &serde_json::json!({"node": name, "draining": !undo}),
        ));
    } else if undo {
        output::print(&format!("{name} takes new jobs again.\n"));
    } else {
        output::print(&format!(
            "{name} is draining: its jobs move to other nodes and it gets no new ones.\n"
        ));
    }
    Ok(())
}

/// `paas nodes:remove NAME`: the controller forgets the node (its URL and agent
/// credential); its agent, or a rebuilt machine under that name, registers again at its next
/// heartbeat.
pub(super) fn remove(ctx: &Context, name: &str) -> Result<(), CommandError> {
    ctx.client()?.delete(&format!("/v1/nodes/{name}"))?;
    if ctx.json {
        output::print(&output::json(
            &serde_json::json!({"node": name, "removed": true}),
        ));
    } else {
        output::print(&format!(
            "Removed {name}: the next heartbeat under that name registers it again, with the \
             agent credential it carries.\n"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_read_as_mib_or_gib() {
        assert_eq!(human_bytes(512 * 1024 * 1024), "512 MiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
    }
}
