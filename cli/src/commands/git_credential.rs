//! `paas git-credential get` (hidden): a git credential helper. `paas login` registers it
//! for the controller URL (`git config --global credential.<url>.helper "!<paas>
//! git-credential"`), so `git push paas main` authenticates with the stored token and
//! asks for no password. git sends `protocol=…`, `host=…` lines on stdin; for a host that
//! is the logged-in controller's we answer `username=paas` and `password=<token>`.
//! `store` and `erase` are accepted and ignored (the token lives in paas's config file).

use std::io::BufRead;

use super::{CommandError, Context};
use crate::output;

/// Answers one git credential request read from stdin.
pub(super) fn credential(ctx: &Context, operation: &str) -> Result<(), CommandError> {
    if operation != "get" {
        return Ok(());
    }
    let mut fields = std::collections::BTreeMap::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once('=') {
            fields.insert(k.to_string(), v.to_string());
        }
    }
    let Some(token) = &ctx.settings.token else {
        return Ok(()); // nothing to offer: git falls back to asking
    };
    if !same_host(&ctx.settings.url, fields.get("host").map(String::as_str)) {
        return Ok(());
    }
    output::print(&format!("username=paas\npassword={token}\n"));
    Ok(())
}

/// True when git's `host` (`127.0.0.1:8080`) is the controller URL's host and port.
fn same_host(url: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return true };
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    let mine = match (parsed.host_str(), parsed.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => return false,
    };
    mine.eq_ignore_ascii_case(host)
}

/// Registers this binary as git's credential helper for `url` (in the user's global git
/// config). Errors are reported, not fatal: the login itself succeeded.
pub(super) fn install(url: &str) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding the paas binary: {e}"))?;
    let exe = exe.display().to_string().replace('\'', "'\\''");
    let key = format!("credential.{}.helper", url.trim_end_matches('/'));
    let helper = format!("!'{exe}' git-credential");
    // Replace any earlier paas helper for this URL, keep others.
    let _ = std::process::Command::new("git")
        .args(["config", "--global", "--unset-all", &key])
        .output();
    let out = std::process::Command::new("git")
        .args(["config", "--global", "--add", &key, &helper])
        .output()
        .map_err(|e| format!("running git: {e}"))?;
    if out.status.success() {
        Ok(key)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_controller_host_gets_the_token() {
        assert!(same_host("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(same_host("http://paas.local", Some("paas.local")));
        assert!(!same_host("http://127.0.0.1:8080", Some("127.0.0.1:9090")));
        assert!(!same_host("http://127.0.0.1:8080", Some("github.com")));
    }
}
