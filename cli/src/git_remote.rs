//! Finding the app of the current folder from its `paas` git remote, the way
//! `git remote add paas http://<controller>/git/<app>.git` set it up.

use std::path::Path;
use std::process::Command;

/// The name of the git remote that points at the controller.
pub const REMOTE: &str = "paas";

/// A `paas` remote that exists but does not name an app.
#[derive(Debug, thiserror::Error)]
pub enum GitRemoteError {
    #[error(
        "the `{REMOTE}` git remote is {url:?}, which does not look like a paas app \
         (…/git/<app>.git); use -a APP, or fix it with `git remote set-url {REMOTE} URL`"
    )]
    NotAnApp { url: String },
}

/// The app named by the `paas` remote of the git repository at `dir`; `Ok(None)` when
/// there is no such remote (or no repository, or no git).
pub fn app_from_remote(dir: &Path) -> Result<Option<String>, GitRemoteError> {
    let output = Command::new("git")
        .args(["remote", "get-url", REMOTE])
        .current_dir(dir)
        .output();
    let url = match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => return Ok(None),
    };
    match app_from_git_url(&url) {
        Some(app) => Ok(Some(app)),
        None => Err(GitRemoteError::NotAnApp { url }),
    }
}

/// `http://host:8080/git/myapp.git` → `myapp` (also with a trailing `/`, credentials in
/// the URL, or the controller under a path prefix). `None` if the URL is not of that shape
/// or the name is not a valid app name.
pub fn app_from_git_url(url: &str) -> Option<String> {
    let path = url.trim().trim_end_matches('/').strip_suffix(".git")?;
    let (rest, app) = path.rsplit_once('/')?;
    if !rest.ends_with("/git") {
        return None;
    }
    paas_api::names::validate_app_name(app).ok()?;
    Some(app.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_app_urls() {
        for (url, app) in [
            ("http://x/git/myapp.git", "myapp"),
            ("http://127.0.0.1:8080/git/my-app.git/\n", "my-app"),
            ("https://user:tok@paas.example.com/git/hello.git", "hello"),
            ("http://x/prefix/git/a1.git", "a1"),
        ] {
            assert_eq!(app_from_git_url(url).as_deref(), Some(app), "{url}");
        }
        for url in [
            "",
            "http://x/git/.git",
            "http://x/myapp.git",
            "git@github.com:me/myapp.git",
            "http://x/git/My_App.git",
            "http://x/git/myapp",
        ] {
            assert_eq!(app_from_git_url(url), None, "{url}");
        }
    }
}
