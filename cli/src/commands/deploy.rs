//! `paas deploy -a APP --image REF` (deploy an image already in the controller's registry,
//! no build) and `paas buildpacks -a APP`, `buildpacks:set -a APP NAME`,
//! `buildpacks:clear -a APP` (the buildpack builds use instead of detection: a built-in one
//! or a third-party classic buildpack from a git URL or a path, which the controller fetches
//! when it is set).

use serde_json::Value;

use super::{CommandError, Context};
use crate::output::{self, Spinner};

pub(super) fn deploy_image(ctx: &Context, app: &str, image: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let release: Value = {
        let _spinner = Spinner::start("Deploying the image…", ctx.json);
        client.post(
            &format!("/v1/apps/{app}/releases"),
            &serde_json::json!({ "image": image }),
        )?
    };
    if ctx.json {
        output::print(&output::json(&release));
    } else {
        output::print(&format!(
            "Deployed {image} to {app} as v{} (web: {}).\n",
            release["version"],
            release["process_types"]["web"].as_str().unwrap_or("?")
        ));
    }
    Ok(())
}

pub(super) fn show(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let answer: Value = client.get(&format!("/v1/apps/{app}/buildpack"))?;
    if ctx.json {
        output::print(&output::json(&answer));
    } else {
        match answer["buildpack"].as_str() {
            Some(bp) => output::print(&format!("{app} builds with the {bp} buildpack.\n")),
            None => output::print(&format!(
                "{app} has no buildpack set: it is detected at each push.\n"
            )),
        }
    }
    Ok(())
}

pub(super) fn set(ctx: &Context, app: &str, name: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let answer: Value = client.post(
        &format!("/v1/apps/{app}/buildpack"),
        &serde_json::json!({ "buildpack": name }),
    )?;
    if ctx.json {
        output::print(&output::json(&answer));
    } else {
        output::print(&format!(
            "{app} now builds with the {name} buildpack; push again to use it.\n"
        ));
    }
    Ok(())
}

pub(super) fn clear(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    client.delete(&format!("/v1/apps/{app}/buildpack"))?;
    if !ctx.json {
        output::print(&format!(
            "{app}'s buildpack is detected again at each push.\n"
        ));
    }
    Ok(())
}
