//! `paas git:remote -a APP` (adds or updates the folder's `paas` git remote) and
//! `paas open` (opens the app's web URL in a browser, or prints it).

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
