//! `paas ps:restart [TYPE|JOB]` (replace jobs with zero downtime: new ones start, the
//! router switches once they are healthy, the old ones drain and stop) and
//! `paas ps:stop JOB` (stop one job now; its formation starts a replacement).

use serde::Deserialize;
use serde_json::{json, Value};

use super::{CommandError, Context};
use crate::output::{self, Spinner};

#[derive(Debug, Deserialize)]
struct JobsAction {
    jobs: Vec<String>,
}

/// A job id (`<app>-v<N>-<hex>`) rather than a process type.
fn is_job_id(app: &str, arg: &str) -> bool {
    arg.strip_prefix(app)
        .and_then(|rest| rest.strip_prefix("-v"))
        .is_some_and(|rest| rest.contains('-'))
}

fn report(ctx: &Context, answer: Value, what: &str) -> Result<(), CommandError> {
    if ctx.json {
        output::print(&output::json(&answer));
        return Ok(());
    }
    let action: JobsAction = serde_json::from_value(answer).unwrap_or(JobsAction { jobs: vec![] });
    output::print(&format!(
        "{what} {}: {}\n",
        jobs(action.jobs.len()),
        action.jobs.join(", ")
    ));
    Ok(())
}

fn jobs(n: usize) -> String {
    if n == 1 {
        "1 job".into()
    } else {
        format!("{n} jobs")
    }
}

/// `paas ps:restart`, `ps:restart web`, `ps:restart JOB`.
pub(super) fn restart(ctx: &Context, app: &str, target: Option<&str>) -> Result<(), CommandError> {
    let path = match target {
        None => format!("/v1/apps/{app}/restart"),
        Some(job) if is_job_id(app, job) => format!("/v1/apps/{app}/jobs/{job}/restart"),
        Some(t) => {
            if t.is_empty()
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(CommandError::Usage(format!(
                    "{t:?} is neither a process type (web) nor a job id: `paas ps -a {app}` \
                     lists both"
                )));
            }
            format!("/v1/apps/{app}/restart?type={t}")
        }
    };
    let client = ctx.client()?;
    let answer: Value = {
        let _spinner = Spinner::start("Restarting…", ctx.json);
        client.post(&path, &json!({}))?
    };
    report(
        ctx,
        answer,
        "Restarting (new jobs start, then the old ones stop)",
    )
}

/// `paas ps:stop JOB`.
pub(super) fn stop(ctx: &Context, app: &str, job: &str) -> Result<(), CommandError> {
    if !is_job_id(app, job) {
        return Err(CommandError::Usage(format!(
            "{job:?} is not a job of {app}: `paas ps -a {app}` lists its jobs (like {app}-v3-1a2b)"
        )));
    }
    let client = ctx.client()?;
    let answer: Value = client.post(&format!("/v1/apps/{app}/jobs/{job}/stop"), &json!({}))?;
    report(ctx, answer, "Stopping (the formation starts a replacement)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_told_from_process_types() {
        assert!(is_job_id("web-app", "web-app-v3-1a2b"));
        assert!(!is_job_id("web-app", "web"));
        assert!(!is_job_id("web-app", "worker"));
        assert!(!is_job_id("web-app", "web-app-v3"));
    }
}
