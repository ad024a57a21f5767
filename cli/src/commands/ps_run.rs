//! `paas run -a APP -- CMD…`: runs CMD in a one-off job of the app's current release (with
//! its config), prints its output as it comes, removes the job and exits with its exit
//! code. Uses `POST /v1/apps/{app}/run`, `GET …/run/{id}/output` and `DELETE …/run/{id}`.

use std::io::{Read, Write};

use serde_json::{json, Value};

use super::{CommandError, Context};
use crate::client::ClientError;

/// Runs the command; returns its exit code (the process exits with it).
pub fn run(ctx: &Context, app: &str, command: &[String]) -> Result<u8, CommandError> {
    if command.is_empty() {
        return Err(CommandError::Usage(
            "no command: paas run -a APP -- CMD [ARGS…]".into(),
        ));
    }
    let base = ctx.settings.url.trim_end_matches('/').to_string();
    let Some(token) = ctx.settings.token.clone() else {
        return Err(ClientError::NotLoggedIn { url: base }.into());
    };
    let unreachable = |e: reqwest::Error| ClientError::Unreachable {
        url: base.clone(),
        reason: e.to_string(),
    };
    let http = reqwest::blocking::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(None)
        .build()
        .map_err(unreachable)?;
    let line = command
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let started = http
        .post(format!("{base}/v1/apps/{app}/run"))
        .bearer_auth(&token)
        .json(&json!({ "command": line }))
        .send()
        .map_err(unreachable)?;
    let started: Value = answer(&base, started)?;
    let id = started["id"].as_str().unwrap_or_default().to_string();
    eprintln!(
        "Running {line} on {app}... up, {id} on {}",
        started["node"].as_str().unwrap_or("?")
    );

    let mut out = http
        .get(format!("{base}/v1/apps/{app}/run/{id}/output"))
        .bearer_auth(&token)
        .send()
        .map_err(unreachable)?;
    let mut stdout = std::io::stdout().lock();
    let mut buf = [0u8; 8192];
    loop {
        match out.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stdout
                    .write_all(&buf[..n])
                    .and_then(|_| stdout.flush())
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    let done = http
        .delete(format!("{base}/v1/apps/{app}/run/{id}"))
        .bearer_auth(&token)
        .send()
        .map_err(unreachable)?;
    let done: Value = answer(&base, done)?;
    let code = done["exit_code"].as_i64().unwrap_or(1);
    Ok(code.clamp(0, 255) as u8)
}

/// Decodes a JSON answer, or turns an error answer into a [`ClientError`].
fn answer(base: &str, resp: reqwest::blocking::Response) -> Result<Value, CommandError> {
    let status = resp.status();
    let text = resp.text().unwrap_or_default();
    if status.is_success() {
        return serde_json::from_str(&text).map_err(|e| {
            ClientError::Unexpected {
                url: base.to_string(),
                status: status.as_u16(),
                detail: e.to_string(),
            }
            .into()
        });
    }
    Err(match serde_json::from_str::<paas_api::ErrorBody>(&text) {
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
    .into())
}

/// Quotes one argument for `/bin/sh -c` (plain words stay as they are).
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn arguments_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(shell_quote("ls"), "ls");
        assert_eq!(shell_quote("-la"), "-la");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }
}
