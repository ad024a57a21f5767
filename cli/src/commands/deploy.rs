//! `paas deploy -a APP --image REF`: deploys an image already in the controller's registry
//! (no build).

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
