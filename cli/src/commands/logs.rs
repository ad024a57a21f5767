//! `paas logs -a APP [-t] [--ps web] [-n N]`: the app's recent log lines (and, with `-t`,
//! the live ones as they come) from `GET /v1/apps/{app}/logs`, printed as the controller
//! sends them (`2026-11-23T05:00:00Z app[web.1]: line`).

use std::io::{BufRead, BufReader, Write};

use super::{CommandError, Context};
use crate::client::ClientError;

/// Streams the app's logs to stdout.
pub fn logs(
    ctx: &Context,
    app: &str,
    tail: bool,
    ps: Option<&str>,
    lines: usize,
) -> Result<(), CommandError> {
    let base = ctx.settings.url.trim_end_matches('/');
    let mut url = format!("{base}/v1/apps/{app}/logs?lines={lines}&tail={tail}");
    if let Some(ps) = ps {
        if ps.is_empty()
            || !ps
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        {
            return Err(CommandError::Usage(format!(
                "--ps {ps:?}: give a process type (web) or a dyno (web.1)"
            )));
        }
        url.push_str(&format!("&ps={ps}"));
    }
    let unreachable = |e: reqwest::Error| ClientError::Unreachable {
        url: base.to_string(),
        reason: e.to_string(),
    };
    let http = reqwest::blocking::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(None)
        .build()
        .map_err(unreachable)?;
    let mut req = http.get(&url).header("accept", "text/plain");
    match &ctx.settings.token {
        Some(t) => req = req.bearer_auth(t),
        None => {
            return Err(ClientError::NotLoggedIn {
                url: base.to_string(),
            }
            .into())
        }
    }
    let resp = req.send().map_err(unreachable)?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().unwrap_or_default();
        return Err(match serde_json::from_str::<paas_api::ErrorBody>(&text) {
            Ok(b) if status.as_u16() == 401 => ClientError::TokenRefused {
                url: base.to_string(),
                message: b.error.message,
            },
            Ok(b) => ClientError::Api {
                status: status.as_u16(),
                code: b.error.code,
                message: b.error.message,
            },
            Err(_) => ClientError::Unexpected {
                url: base.to_string(),
                status: status.as_u16(),
                detail: text.chars().take(200).collect(),
            },
        }
        .into());
    }
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(resp).lines() {
        let Ok(line) = line else { break };
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            break; // stdout closed (e.g. piped into head)
        }
    }
    Ok(())
}
