//! `paas cron -a APP`: the `cron` entries of the current release's app.json with their
//! next run (UTC).

use serde::Deserialize;
use serde::Serialize;

use super::{CommandError, Context};
use crate::output::{self, Spinner, Table};

/// One entry as `GET /v1/apps/{app}/cron` answers it.
#[derive(Debug, Serialize, Deserialize)]
struct CronEntry {
    command: String,
    schedule: String,
    next_run: Option<String>,
}

/// SCHEDULE, NEXT RUN (UTC), COMMAND.
pub(super) fn list(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let entries: Vec<CronEntry> = {
        let _spinner = Spinner::start("Listing cron entries…", ctx.json);
        client.get(&format!("/v1/apps/{app}/cron"))?
    };
    if ctx.json {
        output::print(&output::json(&entries));
        return Ok(());
    }
    if entries.is_empty() {
        output::print(&format!(
            "{app} has no cron entries. Add them to app.json: \"cron\": [{{\"command\": \"./report\", \"schedule\": \"0 * * * *\"}}]\n"
        ));
        return Ok(());
    }
    let mut table = Table::new(&["schedule", "next run (UTC)", "command"]);
    for e in &entries {
        table.row(vec![
            e.schedule.clone(),
            e.next_run.clone().unwrap_or_else(|| "never".into()),
            e.command.clone(),
        ]);
    }
    output::print(&table.render());
    Ok(())
}
