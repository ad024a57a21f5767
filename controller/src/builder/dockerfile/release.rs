//! What a Dockerfile image gives its release: process types (`web` is the image's
//! ENTRYPOINT + CMD unless a Procfile in its working dir says otherwise; other Procfile
//! types run with the image's ENTRYPOINT before them), app.json from the working dir, the
//! port (the first EXPOSEd TCP port) and a health check from HEALTHCHECK when it is an HTTP
//! GET of localhost and app.json has none.

use paas_dockerfile::plan::ImageConfig;

use super::image::Layer;
use super::tree;
use crate::builder::healthcheck::HealthCheck;
use crate::builder::BuildError;
use crate::scheduler::command::to_exec_form;
use crate::state::Controller;

/// Largest Procfile or app.json read from the image.
const MAX_FILE: u64 = 1 << 20;

/// What the release takes from the image.
#[derive(Debug, Default)]
pub struct Finished {
    pub procfile: Option<String>,
    pub app_json: Option<String>,
    /// The default process types (`web` from ENTRYPOINT + CMD), as a release.yml would.
    pub defaults: std::collections::BTreeMap<String, String>,
    /// Quoted ENTRYPOINT put before every Procfile command that uses the shell.
    pub entrypoint: Option<String>,
    /// ENTRYPOINT's argv, put before every Procfile command of plain words.
    pub entrypoint_argv: Vec<String>,
    /// Whether the image has `/bin/sh` (a `FROM scratch` image may not).
    pub has_shell: bool,
    pub port: Option<u16>,
    pub health: Option<HealthCheck>,
    /// Notes for the push (a HEALTHCHECK that is not used, …).
    pub notes: Vec<String>,
}

/// Quotes `word` for `sh` when it needs it.
pub fn sh_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn quoted(argv: &[String]) -> String {
    argv.iter()
        .map(|w| sh_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The command a Procfile line `name: command` runs in this image: ENTRYPOINT before it
/// (Dokku's rule). A JSON array runs as that argv; in an image without `/bin/sh`, plain
/// words run as an argv too, and a line that uses the shell is an error naming it (better
/// than a process that cannot start).
pub fn procfile_command(f: &Finished, name: &str, command: &str) -> Result<String, String> {
    use crate::scheduler::command::{exec_form, plain_words};
    let prefixed = |words: Vec<String>| {
        let mut argv = f.entrypoint_argv.clone();
        argv.extend(words);
        to_exec_form(&argv)
    };
    if let Some(argv) = exec_form(command) {
        return Ok(prefixed(argv));
    }
    if !f.has_shell {
        return match plain_words(command) {
            Some(words) => Ok(prefixed(words)),
            None => Err(format!(
                "the Procfile's `{name}: {command}` needs a shell ($VAR, |, &&, >, globs, cd, …) \
                 and the image has no /bin/sh: write it as plain words or as a JSON array \
                 (`{name}: [\"/server\", \"--port\", \"8080\"]`), or build the image FROM one \
                 with a shell"
            )),
        };
    }
    Ok(match &f.entrypoint {
        Some(entry) => format!("{entry} {command}"),
        None => command.to_string(),
    })
}

/// A health check from a HEALTHCHECK command that GETs `http://localhost[:port]/path`
/// (curl, wget); `None` for anything else.
pub fn http_check(
    test: &[String],
    interval: Option<u64>,
    timeout: Option<u64>,
    start: Option<u64>,
    retries: Option<u32>,
) -> Option<HealthCheck> {
    let text = test.iter().skip(1).cloned().collect::<Vec<_>>().join(" ");
    let at = text
        .find("http://localhost")
        .or_else(|| text.find("http://127.0.0.1"))?;
    let url = text[at + "http://".len()..]
        .split(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == '|' || c == ';')
        .next()?;
    let path = match url.find('/') {
        Some(i) => url[i..].to_string(),
        None => "/".to_string(),
    };
    Some(HealthCheck {
        name: "HEALTHCHECK".into(),
        path,
        content: None,
        attempts: retries.unwrap_or(3).clamp(1, 20),
        timeout: timeout.unwrap_or(5).clamp(1, 60),
        wait: interval.unwrap_or(5).clamp(1, 60),
        initial_delay: start.unwrap_or(0).min(300),
    })
}

/// Reads what the release needs from the image of `layers` with `config`.
pub async fn finish(
    c: &Controller,
    config: &ImageConfig,
    layers: &[Layer],
) -> Result<Finished, BuildError> {
    let named: Vec<(String, std::path::PathBuf)> = layers
        .iter()
        .filter_map(|l| {
            c.registry
                .blob_path(&l.digest)
                .map(|p| (l.digest.clone(), p))
        })
        .collect();
    let wd = config.working_dir.trim_end_matches('/').to_string();
    let (procfile, app_json, has_shell) = tokio::task::spawn_blocking(move || {
        let read = |name: &str| {
            tree::read_file(&named, &format!("{wd}/{name}"), MAX_FILE)
                .ok()
                .flatten()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let tree = tree::image_tree(&named).unwrap_or_default();
        (read("Procfile"), read("app.json"), tree.is_file("/bin/sh"))
    })
    .await
    .map_err(|e| BuildError::Lost(e.to_string()))?;
    let mut f = Finished {
        procfile,
        app_json,
        has_shell,
        ..Finished::default()
    };
    // As Docker runs them: the argv itself, no shell (a shell-form CMD is already
    // `[SHELL..., "-c", "…"]`).
    let mut argv = config.entrypoint.clone().unwrap_or_default();
    argv.extend(config.cmd.clone().unwrap_or_default());
    if !argv.is_empty() {
        f.defaults.insert("web".into(), to_exec_form(&argv));
    }
    f.entrypoint_argv = config.entrypoint.clone().unwrap_or_default();
    f.entrypoint = config
        .entrypoint
        .as_ref()
        .filter(|e| !e.is_empty())
        .map(|e| quoted(e));
    f.port = config.first_tcp_port();
    if let Some(h) = &config.healthcheck {
        if h.test.first().map(String::as_str) != Some("NONE") {
            f.health = http_check(
                &h.test,
                h.interval_secs,
                h.timeout_secs,
                h.start_period_secs,
                h.retries,
            );
            if f.health.is_none() {
                f.notes.push(format!(
                    "HEALTHCHECK {} is not an HTTP GET of localhost: paas checks web processes over HTTP, so it is not used (app.json's healthchecks can say what to check)",
                    h.test.iter().skip(1).cloned().collect::<Vec<_>>().join(" ")
                ));
            }
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthcheck_commands_that_get_localhost_become_http_checks() {
        let t = |s: &str| vec!["CMD-SHELL".to_string(), s.to_string()];
        let h = http_check(
            &t("curl -fsS http://localhost:8080/healthz || exit 1"),
            Some(10),
            None,
            None,
            Some(4),
        )
        .unwrap();
        assert_eq!((h.path.as_str(), h.attempts, h.wait), ("/healthz", 4, 10));
        let h = http_check(
            &[
                "CMD".into(),
                "wget".into(),
                "-qO-".into(),
                "http://127.0.0.1".into(),
            ],
            None,
            None,
            None,
            None,
        )
        .unwrap();
        assert_eq!(h.path, "/");
        assert!(http_check(&t("pg_isready"), None, None, None, None).is_none());
    }

    #[test]
    fn procfile_lines_need_a_shell_only_when_they_use_one() {
        let scratch = Finished {
            entrypoint: Some("/tini --".into()),
            entrypoint_argv: vec!["/tini".into(), "--".into()],
            has_shell: false,
            ..Finished::default()
        };
        assert_eq!(
            procfile_command(&scratch, "worker", "/server --queue 'a b'").unwrap(),
            r#"["/tini","--","/server","--queue","a b"]"#
        );
        assert_eq!(
            procfile_command(&scratch, "x", r#"["/server", "$PORT"]"#).unwrap(),
            r#"["/tini","--","/server","$PORT"]"#
        );
        let e = procfile_command(&scratch, "web", "/server --port $PORT").unwrap_err();
        assert!(
            e.contains("`web: /server --port $PORT` needs a shell") && e.contains("no /bin/sh"),
            "{e}"
        );
        let with_shell = Finished {
            has_shell: true,
            ..scratch
        };
        assert_eq!(
            procfile_command(&with_shell, "web", "/server --port $PORT").unwrap(),
            "/tini -- /server --port $PORT"
        );
        let plain = Finished {
            has_shell: true,
            ..Finished::default()
        };
        assert_eq!(
            procfile_command(&plain, "web", "bin/web").unwrap(),
            "bin/web"
        );
    }

    #[test]
    fn words_are_quoted_for_sh() {
        assert_eq!(
            quoted(&["/bin/app".into(), "--name=x y".into(), "it's".into()]),
            "/bin/app '--name=x y' 'it'\\''s'"
        );
    }
}
