//! A Dockerfile RUN step: a build job on the node over the image made so far (stored as a
//! manifest by digest in the app's repository), in the app's user namespace and tenant,
//! with the build limits and network of buildpack builds; the agent packs what the job
//! changed in its root filesystem (`JobOutput.path = "/"`) as one zstd layer.

use std::collections::BTreeMap;

use paas_api::{ImageRef, JobOutput};

use super::image::{Layer, LAYER_ZSTD};
use crate::builder::{build_job_spec, job, BuildError, BuildInput, Output};
use crate::state::Controller;

/// Lines of a failing RUN's output repeated with the error.
const LAST_LINES: usize = 10;

/// Writes the build's name servers into `/etc/resolv.conf` (left out of the layer) and
/// runs the step's argv.
const PRELUDE: &str = "[ -n \"$PAAS_RESOLV_CONF\" ] && printf '%s\\n' \"$PAAS_RESOLV_CONF\" \
     > /etc/resolv.conf 2>/dev/null; unset PAAS_RESOLV_CONF; exec \"$@\"";

/// What one RUN runs.
pub struct RunStep<'a> {
    /// The image so far: `apps/<app>@<digest>`.
    pub image_digest: &'a str,
    pub argv: &'a [String],
    /// The ARGs in effect that are not in the image's Env (`KEY=VALUE`).
    pub args: &'a [String],
    pub workdir: &'a str,
    /// The job's id (`build-<id>-<n>`).
    pub job_id: &'a str,
    /// Whether the image so far has `/bin/sh`: without one an exec-form RUN runs as it is
    /// (and the build's name servers are not written into `/etc/resolv.conf`).
    pub has_shell: bool,
}

/// Runs `step` on the node at `node_url`; returns its layer, or why it failed (exit code
/// and the last lines of its output).
pub async fn run(
    c: &Controller,
    input: &BuildInput,
    app_id: u32,
    node_url: &str,
    step: &RunStep<'_>,
    out: &mut Output,
) -> Result<Layer, BuildError> {
    let base = c.settings.internal_url.clone();
    let repo = format!("apps/{}", input.app);
    let mut spec = build_job_spec(&c.settings, input, step.job_id, app_id);
    spec.image = ImageRef {
        registry: base.clone(),
        repository: repo.clone(),
        reference: step.image_digest.to_string(),
    };
    let mut command = if step.has_shell {
        vec![
            "/bin/sh".to_string(),
            "-c".into(),
            PRELUDE.into(),
            "sh".into(),
        ]
    } else {
        Vec::new()
    };
    command.extend(step.argv.iter().cloned());
    spec.command = command;
    let mut env: BTreeMap<String, String> = job::host_build_env(
        &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        |k| std::env::var(k).ok(),
    );
    for kv in step.args {
        if let Some((k, v)) = kv.split_once('=') {
            env.insert(k.to_string(), v.to_string());
        }
    }
    spec.env = env;
    spec.working_dir = Some(step.workdir.to_string());
    spec.inputs = Vec::new();
    spec.volumes = Vec::new();
    spec.output = Some(JobOutput {
        path: "/".into(),
        registry: base,
        repository: repo,
    });
    let mark = out.log.len();
    let outcome = job::run_build_job(c, node_url, &spec, out).await;
    if let Err(e) = c.agents.delete_job(node_url, step.job_id).await {
        tracing::warn!(job = %step.job_id, "deleting a RUN job: {e}");
    }
    match outcome {
        Ok(layer) => Ok(Layer {
            digest: layer.digest,
            diff_id: layer.diff_id,
            size: layer.size,
            media_type: LAYER_ZSTD.into(),
        }),
        Err(BuildError::Failed { reason }) => {
            let printed = &out.log[mark.min(out.log.len())..];
            let lines: Vec<&str> = printed.lines().collect();
            let last = lines[lines.len().saturating_sub(LAST_LINES)..].join("\n       | ");
            Err(BuildError::Dockerfile(if last.is_empty() {
                format!("the RUN step failed ({reason}) and printed nothing")
            } else {
                format!("the RUN step failed ({reason}); its last lines:\n       | {last}")
            }))
        }
        Err(e) => Err(e),
    }
}
