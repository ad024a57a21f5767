//! `paas releases -a APP`

use paas_api::Release;

use super::{CommandError, Context};
use crate::output::{self, Spinner, Table};

/// VERSION, DESCRIPTION, CREATED, newest first (JSON keeps the controller's order).
pub(super) fn list(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let mut releases: Vec<Release> = {
        let _spinner = Spinner::start("Listing releases…", ctx.json);
        client.get(&format!("/v1/apps/{app}/releases"))?
    };
    if ctx.json {
        output::print(&output::json(&releases));
        return Ok(());
    }
    if releases.is_empty() {
        output::print(&format!(
            "{app} has no releases yet. Deploy it with `git push paas main`.\n"
        ));
        return Ok(());
    }
    releases.sort_by_key(|r| std::cmp::Reverse(r.version));
    let mut table = Table::new(&["version", "description", "created"]);
    for release in &releases {
        table.row(vec![
            format!("v{}", release.version),
            release.description.clone(),
            release.created_at.clone(),
        ]);
    }
    output::print(&table.render());
    Ok(())
}
