//! `paas releases -a APP`

use paas_api::Release;

use super::{CommandError, Context};
use crate::output::{self, Spinner, Table};

/// VERSION, STATUS, DESCRIPTION, CREATED, newest first (JSON keeps the controller's
/// order); then why each failed release failed.
pub(super) fn list(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let mut releases: Vec<Release> = {
        let _spinner = Spinner::start("Listing releases…", ctx.json);
        client.get(&format!("/v1/apps/{app}/releases"))?
    };
    if ctx.json {
        output::print(&output::json(&releases));
        return Ok(());
    }
    if releases.is_empty() {
        output::print(&format!(
            "{app} has no releases yet. Deploy it with `git push paas main`.\n"
        ));
        return Ok(());
    }
    releases.sort_by_key(|r| std::cmp::Reverse(r.version));
    let mut table = Table::new(&["version", "status", "description", "created"]);
    for release in &releases {
        table.row(vec![
            format!("v{}", release.version),
            status(release).to_string(),
            release.description.clone(),
            release.created_at.clone(),
        ]);
    }
    let mut text = table.render();
    let failed: Vec<String> = releases
        .iter()
        .filter_map(|r| {
            let reason = r.status_reason.as_deref()?;
            (status(r) == "failed").then(|| format!("v{} failed: {reason}\n", r.version))
        })
        .collect();
    if !failed.is_empty() {
        text.push('\n');
        text.push_str(&failed.concat());
    }
    output::print(&text);
    Ok(())
}

/// A release's deploy status; `-` from a controller that does not say.
fn status(release: &Release) -> &str {
    release.status.as_deref().unwrap_or("-")
}

/// `v3`, `3` → 3.
fn parse_version(s: &str) -> Result<u32, CommandError> {
    s.trim_start_matches('v').parse().map_err(|_| {
        CommandError::Usage(format!(
            "{s:?} is not a release version: use a number such as v3 (see `paas releases`)"
        ))
    })
}

fn print_release(ctx: &Context, release: &Release) {
    if ctx.json {
        output::print(&output::json(release));
        return;
    }
    let types: Vec<String> = release
        .process_types
        .iter()
        .map(|(t, cmd)| format!("{t}: {cmd}"))
        .collect();
    output::print(&format!(
        "=== Release v{}\n{}",
        release.version,
        output::key_values(&[
            ("Description", release.description.clone()),
            ("Image", release.image.clone()),
            (
                "Source",
                release.source_version.clone().unwrap_or_else(|| "-".into())
            ),
            ("Process types", types.join(", ")),
            ("Config vars", release.config_keys.join(", ")),
            ("Created", release.created_at.clone()),
            ("Status", status(release).to_string()),
            (
                "Why",
                release.status_reason.clone().unwrap_or_else(|| "-".into())
            ),
        ])
    ));
}

/// `paas releases:info [vN]`: one release, the current one by default.
pub(super) fn info(ctx: &Context, app: &str, version: Option<&str>) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let release: Release = match version {
        Some(v) => {
            let v = parse_version(v)?;
            client.get(&format!("/v1/apps/{app}/releases/{v}"))?
        }
        None => {
            let releases: Vec<Release> = client.get(&format!("/v1/apps/{app}/releases"))?;
            releases
                .into_iter()
                .max_by_key(|r| r.version)
                .ok_or_else(|| {
                    CommandError::Usage(format!(
                        "{app} has no releases yet: deploy it with `git push paas main`"
                    ))
                })?
        }
    };
    print_release(ctx, &release);
    Ok(())
}

/// `paas rollback [vN]`: a new release with vN's image and config (default: the previous).
pub(super) fn rollback(
    ctx: &Context,
    app: &str,
    version: Option<&str>,
) -> Result<(), CommandError> {
    let to = version.map(parse_version).transpose()?;
    let client = ctx.client()?;
    let release: Release = {
        let _spinner = Spinner::start("Rolling back…", ctx.json);
        client.post(
            &format!("/v1/apps/{app}/releases"),
            &serde_json::json!({ "rollback": to }),
        )?
    };
    if ctx.json {
        output::print(&output::json(&release));
    } else {
        output::print(&format!(
            "{} on {app}: released v{}\n",
            release.description, release.version
        ));
    }
    Ok(())
}
