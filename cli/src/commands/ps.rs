//! `paas ps` (the formation and the running jobs), `ps:scale web=2 worker=1` and
//! `ps:resize web=512M`, over `/v1/apps/{app}/formation` and `/v1/apps/{app}/jobs`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{CommandError, Context};
use crate::output::{self, Spinner, Table};

#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    process_type: String,
    quantity: u32,
    size: String,
    command: String,
}

#[derive(Debug, Deserialize)]
struct Job {
    id: String,
    #[serde(rename = "type")]
    process_type: String,
    release: u32,
    node: String,
    state: String,
    restarts: u32,
    /// Why a `pending` process waits (its volume's node is down).
    #[serde(default)]
    reason: Option<String>,
}

fn formation_table(entries: &[Entry]) -> String {
    let mut table = Table::new(&["type", "quantity", "size", "command"]);
    for e in entries {
        table.row(vec![
            e.process_type.clone(),
            e.quantity.to_string(),
            e.size.clone(),
            e.command.clone(),
        ]);
    }
    table.render()
}

/// `paas ps`: the formation, then one row per job. JSON: `{"formation": …, "jobs": …}`.
pub(super) fn ps(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let (formation, jobs): (Value, Value) = {
        let _spinner = Spinner::start("Listing processes…", ctx.json);
        (
            client.get(&format!("/v1/apps/{app}/formation"))?,
            client.get(&format!("/v1/apps/{app}/jobs"))?,
        )
    };
    if ctx.json {
        output::print(&output::json(
            &json!({"formation": formation, "jobs": jobs}),
        ));
        return Ok(());
    }
    let entries: Vec<Entry> = serde_json::from_value(formation).unwrap_or_default();
    let jobs: Vec<Job> = serde_json::from_value(jobs).unwrap_or_default();
    if entries.is_empty() && jobs.is_empty() {
        output::print(&format!(
            "{app} has no processes yet. Deploy it with `git push paas main`.\n"
        ));
        return Ok(());
    }
    // An app of no process types may still have one-off jobs (`paas run`, cron).
    let mut text = String::new();
    if !entries.is_empty() {
        text = formation_table(&entries);
        text.push('\n');
    }
    if jobs.is_empty() {
        text.push_str("No jobs run right now.\n");
    } else {
        let mut table = Table::new(&["job", "type", "release", "node", "state", "restarts"]);
        for j in &jobs {
            table.row(vec![
                j.id.clone(),
                j.process_type.clone(),
                format!("v{}", j.release),
                j.node.clone(),
                j.state.clone(),
                j.restarts.to_string(),
            ]);
        }
        text.push_str(&table.render());
        for j in jobs.iter().filter(|j| j.reason.is_some()) {
            text.push_str(&format!(
                "{} {}: {}\n",
                j.process_type,
                j.state,
                j.reason.as_deref().unwrap_or_default()
            ));
        }
    }
    output::print(&text);
    Ok(())
}

/// `TYPE=VALUE` arguments, in order, type checked to look like a process type.
fn pairs<'a>(args: &'a [String], example: &str) -> Result<Vec<(&'a str, &'a str)>, CommandError> {
    args.iter()
        .map(|a| {
            a.split_once('=')
                .filter(|(t, v)| !t.is_empty() && !v.is_empty())
                .ok_or_else(|| {
                    CommandError::Usage(format!("{a:?} is not TYPE=VALUE: write it as {example}"))
                })
        })
        .collect()
}

fn patch(ctx: &Context, app: &str, body: &Value) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let entries: Value = {
        let _spinner = Spinner::start("Scaling…", ctx.json);
        client.patch_if_match(
            &format!("/v1/apps/{app}/formation"),
            body,
            ctx.if_match.as_deref(),
        )?
    };
    if ctx.json {
        output::print(&output::json(&entries));
        return Ok(());
    }
    let entries: Vec<Entry> = serde_json::from_value(entries).unwrap_or_default();
    output::print(&formation_table(&entries));
    Ok(())
}

/// `paas ps:scale web=2 worker=1`.
pub(super) fn scale(ctx: &Context, app: &str, args: &[String]) -> Result<(), CommandError> {
    let mut body = BTreeMap::new();
    for (t, v) in pairs(args, "web=2")? {
        let quantity: u32 = v.parse().map_err(|_| {
            CommandError::Usage(format!(
                "{v:?} is not a number of processes: write it as {t}=2"
            ))
        })?;
        body.insert(t.to_string(), json!({ "quantity": quantity }));
    }
    patch(ctx, app, &json!(body))
}

/// `paas ps:resize web=standard-2x worker=768M`, or `paas ps:resize web --memory 768M`.
/// Sizes are checked here first (`paas_api::sizes`), with the list of named ones.
pub(super) fn resize(
    ctx: &Context,
    app: &str,
    args: &[String],
    memory: Option<&str>,
) -> Result<(), CommandError> {
    let mut body = BTreeMap::new();
    let given: Vec<(&str, &str)> = match memory {
        Some(m) => args
            .iter()
            .map(|t| {
                if t.contains('=') {
                    Err(CommandError::Usage(format!(
                        "with --memory give process types only: paas ps:resize web --memory {m}"
                    )))
                } else {
                    Ok((t.as_str(), m))
                }
            })
            .collect::<Result<_, _>>()?,
        None => pairs(args, "web=standard-2x or web=768M")?,
    };
    for (t, v) in given {
        paas_api::sizes::parse(v).map_err(CommandError::Usage)?;
        body.insert(t.to_string(), json!({ "size": v }));
    }
    patch(ctx, app, &json!(body))
}
