//! `paas login --url URL --token TOKEN`: check the token against the controller, then save
//! both to the config file (mode 0600), and register `paas git-credential` as git's
//! credential helper for the URL so `git push paas main` needs no password.

use paas_api::App;
use serde::Serialize;

use super::{CommandError, Context};
use crate::config::{self, FileConfig};
use crate::output::{self, Spinner};

/// What `--json` prints after a login.
#[derive(Serialize)]
struct LoggedIn<'a> {
    url: &'a str,
    config_file: String,
}

pub(super) fn login(ctx: &Context, mut file: FileConfig) -> Result<(), CommandError> {
    let url = ctx.settings.url.as_str();
    let Some(token) = ctx.settings.token.clone() else {
        return Err(CommandError::Usage(format!(
            "paas login needs a token: run `paas login --url {url} --token TOKEN` (the \
             controller writes its admin token to DATA_DIR/admin-token)"
        )));
    };
    let client = ctx.client()?;
    {
        let _spinner = Spinner::start("Checking the token…", ctx.json);
        let _: Vec<App> = client.get("/v1/apps")?;
    }
    file.url = Some(url.to_string());
    file.token = Some(token);
    let path = config::save(&file)?;
    let git = super::git_credential::install(url);
    if ctx.json {
        output::print(&output::json(&LoggedIn {
            url,
            config_file: path.display().to_string(),
        }));
    } else {
        output::print(&format!(
            "Logged in to {url}\nSaved the URL and token to {}\n",
            path.display()
        ));
        match git {
            Ok(key) => output::print(&format!(
                "Set up git to push to {url} with this login ({key})\n"
            )),
            Err(e) => eprintln!(
                "warning: could not set up git's credential helper ({e}); `git push` will ask \
                 for a password: use the token"
            ),
        }
    }
    Ok(())
}
