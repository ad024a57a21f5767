//! `paas domains -a APP`, `paas domains:add -a APP HOSTNAME`, `paas domains:remove -a APP
//! HOSTNAME`: an app's custom domains, served by the router next to `<app>.<domain>`.

use serde::Deserialize;

use super::{CommandError, Context};
use crate::client::ClientError;
use crate::output::{self, Spinner, Table};

/// A custom domain as the controller returns it.
#[derive(Debug, Deserialize, serde::Serialize)]
struct Domain {
    hostname: String,
    app: String,
    created_at: String,
}

/// HOSTNAME, ADDED.
pub(super) fn list(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let domains: Vec<Domain> = {
        let _spinner = Spinner::start("Listing domains…", ctx.json);
        client.get(&format!("/v1/apps/{app}/domains"))?
    };
    if ctx.json {
        output::print(&output::json(&domains));
        return Ok(());
    }
    if domains.is_empty() {
        output::print(&format!(
            "{app} has no custom domains. Add one with `paas domains:add -a {app} HOSTNAME`.\n"
        ));
        return Ok(());
    }
    let mut table = Table::new(&["hostname", "added"]);
    for d in &domains {
        table.row(vec![d.hostname.clone(), d.created_at.clone()]);
    }
    output::print(&table.render());
    Ok(())
}

pub(super) fn add(ctx: &Context, app: &str, hostname: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let domain: Domain = {
        let _spinner = Spinner::start("Adding domain…", ctx.json);
        client.post(
            &format!("/v1/apps/{app}/domains"),
            &serde_json::json!({ "hostname": hostname }),
        )?
    };
    if ctx.json {
        output::print(&output::json(&domain));
    } else {
        output::print(&format!(
            "Added {} to {}. Point its DNS at the router; requests with `Host: {}` now reach \
             {}.\n",
            domain.hostname, domain.app, domain.hostname, domain.app
        ));
    }
    Ok(())
}

pub(super) fn remove(ctx: &Context, app: &str, hostname: &str) -> Result<(), CommandError> {
    let url = ctx.settings.url.trim_end_matches('/').to_string();
    let http = reqwest::blocking::Client::new();
    let mut request = http.delete(format!("{url}/v1/apps/{app}/domains/{hostname}"));
    if let Some(token) = &ctx.settings.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().map_err(|e| ClientError::Unreachable {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    let status = response.status();
    if status.as_u16() == 401 {
        return Err(ClientError::NotLoggedIn { url }.into());
    }
    if !status.is_success() {
        let text = response.text().unwrap_or_default();
        return Err(match serde_json::from_str::<paas_api::ErrorBody>(&text) {
            Ok(body) => ClientError::Api {
                status: status.as_u16(),
                code: body.error.code,
                message: body.error.message,
            },
            Err(_) => ClientError::Unexpected {
                url,
                status: status.as_u16(),
                detail: text.chars().take(200).collect(),
            },
        }
        .into());
    }
    if !ctx.json {
        output::print(&format!("Removed {hostname} from {app}.\n"));
    }
    Ok(())
}
