//! `paas apps`, `paas apps:create NAME`, `paas apps:info -a APP`, `paas apps:destroy APP
//! --confirm APP`, `paas apps:rename NEW -a APP`.

use paas_api::{App, CreateApp};

use super::{validate_app_name, CommandError, Context};
use crate::output::{self, key_values, Spinner, Table};

/// `paas apps`: NAME, RELEASE, STATUS, URL.
pub(super) fn list(ctx: &Context) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let mut apps: Vec<App> = {
        let _spinner = Spinner::start("Listing apps…", ctx.json);
        client.get("/v1/apps")?
    };
    if ctx.json {
        output::print(&output::json(&apps));
        return Ok(());
    }
    if apps.is_empty() {
        output::print(
            "No apps yet. Create one with `paas apps:create NAME`, then deploy it with \
             `git push paas main`.\n",
        );
        return Ok(());
    }
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    let mut table = Table::new(&["name", "release", "status", "url"]);
    for app in &apps {
        table.row(vec![
            app.name.clone(),
            release_label(app.current_release),
            app.status.clone(),
            app.web_url.clone(),
        ]);
    }
    output::print(&table.render());
    Ok(())
}

/// `paas apps:create NAME`
pub(super) fn create(ctx: &Context, name: &str) -> Result<(), CommandError> {
    validate_app_name(name)?;
    let client = ctx.client()?;
    let app: App = {
        let _spinner = Spinner::start("Creating app…", ctx.json);
        client.post(
            "/v1/apps",
            &CreateApp {
                name: name.to_string(),
            },
        )?
    };
    if ctx.json {
        output::print(&output::json(&app));
        return Ok(());
    }
    output::print(&format!(
        "Created app {}\n{}\nDeploy it from the app's git folder:\n  git remote add paas {}\n  \
         git push paas main\n",
        app.name,
        key_values(&[
            ("Web URL", app.web_url.clone()),
            ("Git URL", app.git_url.clone())
        ]),
        app.git_url,
    ));
    Ok(())
}

/// `paas apps:info -a APP`
pub(super) fn info(ctx: &Context, name: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let app: App = {
        let _spinner = Spinner::start("Loading app…", ctx.json);
        client.get(&format!("/v1/apps/{name}"))?
    };
    if ctx.json {
        output::print(&output::json(&app));
        return Ok(());
    }
    output::print(&format!(
        "=== {}\n{}",
        app.name,
        key_values(&[
            ("Status", app.status.clone()),
            ("Release", release_label(app.current_release)),
            ("Web URL", app.web_url.clone()),
            ("Git URL", app.git_url.clone()),
            ("Created", app.created_at.clone()),
        ])
    ));
    Ok(())
}

/// `v2`, or `-` before the first release.
fn release_label(version: Option<u32>) -> String {
    version.map_or_else(|| "-".to_string(), |v| format!("v{v}"))
}

/// `paas apps:destroy APP --confirm APP`.
pub(super) fn destroy(ctx: &Context, app: &str, confirm: Option<&str>) -> Result<(), CommandError> {
    if confirm != Some(app) {
        return Err(CommandError::Usage(format!(
            "this deletes {app}'s releases, config, jobs and git repository for good: \
             run `paas apps:destroy {app} --confirm {app}` to go ahead"
        )));
    }
    let client = ctx.client()?;
    {
        let _spinner = Spinner::start("Destroying…", ctx.json);
        client.delete(&format!("/v1/apps/{app}?confirm={app}"))?;
    }
    if ctx.json {
        output::print(&output::json(&serde_json::json!({"destroyed": app})));
    } else {
        output::print(&format!("Destroyed {app}\n"));
    }
    Ok(())
}

/// `paas apps:rename NEW -a APP`: renames the app; when this folder's `paas` git remote
/// pointed at it, the remote is moved to the new git URL.
pub(super) fn rename(ctx: &Context, app: &str, new_name: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let renamed: App = {
        let _spinner = Spinner::start("Renaming…", ctx.json);
        client.patch(
            &format!("/v1/apps/{app}"),
            &serde_json::json!({ "name": new_name }),
        )?
    };
    let here = crate::git_remote::app_from_remote(std::path::Path::new("."))
        .ok()
        .flatten();
    let moved_remote = here.as_deref() == Some(app)
        && std::process::Command::new("git")
            .args([
                "remote",
                "set-url",
                crate::git_remote::REMOTE,
                &renamed.git_url,
            ])
            .status()
            .is_ok_and(|s| s.success());
    if ctx.json {
        output::print(&output::json(&renamed));
        return Ok(());
    }
    let mut text = format!(
        "Renamed {app} to {new_name}\n{}\n{}\n",
        renamed.web_url, renamed.git_url
    );
    if moved_remote {
        text.push_str("Updated the `paas` git remote of this folder.\n");
    } else {
        text.push_str(&format!(
            "Update your git remotes: git remote set-url paas {}\n",
            renamed.git_url
        ));
    }
    output::print(&text);
    Ok(())
}
