//! `paas git:remote -a APP` (adds or updates the folder's `paas` git remote), `paas
//! git:clone -a APP [DIR]` (clones the app's repository) and `paas open` (opens the app's
//! web URL in a browser, or prints it).

use std::process::Command;

use paas_api::App;

use super::{CommandError, Context};
use crate::git_remote::REMOTE;
use crate::output;

fn app(ctx: &Context, name: &str) -> Result<App, CommandError> {
    Ok(ctx.client()?.get(&format!("/v1/apps/{name}"))?)
}

/// Points the current folder's `paas` remote at the app's git URL.
pub(super) fn git_remote(ctx: &Context, name: &str) -> Result<(), CommandError> {
    let app = app(ctx, name)?;
    let git = |args: &[&str]| Command::new("git").args(args).output();
    let exists = git(&["remote", "get-url", REMOTE]).is_ok_and(|o| o.status.success());
    let verb = if exists { "set-url" } else { "add" };
    let out = git(&["remote", verb, REMOTE, &app.git_url]).map_err(|e| {
        CommandError::Usage(format!(
            "could not run git ({e}): install git and try again"
        ))
    })?;
    if !out.status.success() {
        return Err(CommandError::Usage(format!(
            "git remote {verb} failed: {} (run it inside a git repository: `git init`)",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    if ctx.json {
        output::print(&output::json(
            &serde_json::json!({"remote": REMOTE, "url": app.git_url}),
        ));
    } else {
        output::print(&format!("set git remote {REMOTE} to {}\n", app.git_url));
    }
    Ok(())
}

/// Opens the app's URL with `xdg-open` when there is a display; prints it either way.
pub(super) fn open(ctx: &Context, name: &str) -> Result<(), CommandError> {
    let app = app(ctx, name)?;
    if ctx.json {
        output::print(&output::json(&serde_json::json!({"web_url": app.web_url})));
        return Ok(());
    }
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let opened = display
        && Command::new("xdg-open")
            .arg(&app.web_url)
            .status()
            .is_ok_and(|s| s.success());
    if opened {
        output::print(&format!("Opening {}\n", app.web_url));
    } else {
        output::print(&format!("{}\n", app.web_url));
    }
    Ok(())
}

/// `paas git:clone -a APP [DIR]`: clones the app's repository into DIR (default: the app's
/// name) with its remote named `paas`, like `heroku git:clone`. The token goes to git in
/// its environment (an `Authorization` header for the app's git URL only), never on the
/// command line.
pub(super) fn git_clone(ctx: &Context, name: &str, dir: Option<&str>) -> Result<(), CommandError> {
    let app = app(ctx, name)?;
    let dir = dir.unwrap_or(name);
    if std::path::Path::new(dir).exists() {
        return Err(CommandError::Usage(format!(
            "{dir} already exists: give another folder (`paas git:clone -a {name} FOLDER`)"
        )));
    }
    let mut cmd = Command::new("git");
    cmd.args(["clone", "--origin", REMOTE, "--", &app.git_url, dir]);
    if let Some(token) = &ctx.settings.token {
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env(
                "GIT_CONFIG_KEY_0",
                format!("http.{}.extraHeader", app.git_url),
            )
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: Bearer {token}"),
            );
    }
    let status = cmd.status().map_err(|e| {
        CommandError::Usage(format!(
            "could not run git ({e}): install git and try again"
        ))
    })?;
    if !status.success() {
        return Err(CommandError::Usage(format!(
            "git clone of {name} failed ({status}); its message is above"
        )));
    }
    if !ctx.json {
        output::print(&format!(
            "Cloned {name} into {dir}; `git push {REMOTE} main` deploys it.\n"
        ));
    }
    Ok(())
}
