//! `paas builds` (an app's builds, newest first), `builds:info ID`, `builds:output ID`
//! (the build's output; while it runs, it streams until the build ends) and
//! `builds:create [--no-cache]` (rebuild the last pushed commit, its output streamed), over
//! `/v1/apps/{app}/builds`.

use paas_api::Build;
use serde_json::Value;

use super::{CommandError, Context};
use crate::output::{self, Spinner, Table};

/// `paas builds [--limit N]`: table `ID STATUS RELEASE SOURCE CREATED`.
pub(super) fn list(ctx: &Context, app: &str, limit: Option<u32>) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let path = match limit {
        Some(n) => format!("/v1/apps/{app}/builds?limit={n}"),
        None => format!("/v1/apps/{app}/builds"),
    };
    let builds: Value = {
        let _spinner = Spinner::start("Listing builds…", ctx.json);
        client.get(&path)?
    };
    if ctx.json {
        output::print(&output::json(&builds));
        return Ok(());
    }
    let builds: Vec<Build> = serde_json::from_value(builds).unwrap_or_default();
    if builds.is_empty() {
        output::print(&format!(
            "{app} has no builds yet. Deploy it with `git push paas main`.\n"
        ));
        return Ok(());
    }
    let mut table = Table::new(&["id", "status", "release", "source", "created"]);
    for b in &builds {
        table.row(vec![
            b.id.clone(),
            b.status.clone(),
            b.release.map_or_else(|| "-".into(), |v| format!("v{v}")),
            b.source_version
                .as_deref()
                .map_or_else(|| "-".into(), |s| s.chars().take(12).collect()),
            b.created_at.clone(),
        ]);
    }
    output::print(&table.render());
    Ok(())
}

/// `paas builds:info ID`.
pub(super) fn info(ctx: &Context, app: &str, id: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let build: Value = client.get(&format!("/v1/apps/{app}/builds/{id}"))?;
    if ctx.json {
        output::print(&output::json(&build));
        return Ok(());
    }
    let b: Build = serde_json::from_value(build).map_err(|e| {
        CommandError::Usage(format!(
            "the controller sent a build this paas cannot read: {e}"
        ))
    })?;
    output::print(&format!("=== {app} build {}\n", b.id));
    output::print(&output::key_values(&[
        ("Status", b.status.clone()),
        (
            "Release",
            b.release.map_or_else(|| "-".into(), |v| format!("v{v}")),
        ),
        (
            "Source",
            b.source_version.clone().unwrap_or_else(|| "-".into()),
        ),
        ("Created", b.created_at.clone()),
        (
            "Finished",
            b.finished_at.clone().unwrap_or_else(|| "-".into()),
        ),
    ]));
    Ok(())
}

/// `paas builds:output ID`: the build's output; a running build streams until it ends.
pub(super) fn output(ctx: &Context, app: &str, id: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let mut stdout = std::io::stdout().lock();
    client.get_stream(
        &format!("/v1/apps/{app}/builds/{id}/log?follow=true"),
        &mut stdout,
    )?;
    Ok(())
}

/// `paas builds:create [--no-cache]`: rebuilds the last pushed commit and prints the
/// build's output as a push would; fails (exit 1) when the build does.
pub(super) fn create(ctx: &Context, app: &str, no_cache: bool) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let build: Value = client.post(
        &format!("/v1/apps/{app}/builds"),
        &serde_json::json!({ "no_cache": no_cache }),
    )?;
    let id = build["id"].as_str().unwrap_or_default().to_string();
    if ctx.json {
        output::print(&output::json(&build));
        return Ok(());
    }
    let rev: String = build["source_version"]
        .as_str()
        .unwrap_or("-")
        .chars()
        .take(12)
        .collect();
    output::print(&format!(
        "Rebuilding {app} from {rev}{} (build {id})\n",
        if no_cache { " without caches" } else { "" }
    ));
    {
        let mut stdout = std::io::stdout().lock();
        client.get_stream(
            &format!("/v1/apps/{app}/builds/{id}/log?follow=true"),
            &mut stdout,
        )?;
    }
    let done: Build = client.get(&format!("/v1/apps/{app}/builds/{id}"))?;
    match (done.status.as_str(), done.release) {
        ("succeeded", Some(v)) => {
            output::print(&format!("Build {id} succeeded: {app} runs v{v}\n"));
            Ok(())
        }
        (status, _) => Err(CommandError::Usage(format!(
            "build {id} {status}: see its output above (`paas builds:output {id} -a {app}`)"
        ))),
    }
}
