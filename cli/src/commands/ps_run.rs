//! `paas run -a APP -- CMD…`: runs CMD in a one-off job of the app's current release (with
//! its config), attached to this terminal: stdin goes to it, a TTY when stdin and stdout
//! are terminals (`paas run -a APP bash` is interactive), pipes otherwise (`echo hi | paas
//! run -a APP cat`). The job is removed at the end and the CLI exits with the command's
//! exit code. Uses `POST /v1/apps/{app}/run/attach` and the exec stream (see exec.rs).
//!
//! The words run as given, without a shell between (so an image without `/bin/sh` runs
//! them too), except one argument holding shell text (`paas run -- 'ls | wc -l'`) or a
//! shell builtin first (`cd`, `export`, …): those go through `/bin/sh -c`. When the image
//! has no `/bin/sh` the controller cannot attach (409 `no_shell`): the command then runs as
//! the one-off job itself, without stdin (`POST /v1/apps/{app}/run`, its output, `DELETE`
//! for the exit code).

use serde_json::Value;

use super::{CommandError, Context};
use crate::client::ClientError;

/// What the command runs as (see the module doc).
fn argv_of(command: &[String], line: &str) -> Vec<String> {
    let sh = |text: &str| vec!["/bin/sh".to_string(), "-c".into(), text.to_string()];
    if command.len() == 1
        && command[0].contains(|c: char| c.is_whitespace() || "$|&;<>()`*?~".contains(c))
    {
        return sh(&command[0]);
    }
    if paas_api::exec::SHELL_BUILTINS.contains(&command[0].as_str()) {
        return sh(line);
    }
    command.to_vec()
}

/// The command as the one-off job itself, no stdin: for images without a shell.
fn run_detached(
    ctx: &Context,
    app: &str,
    line: &str,
    argv: &[String],
) -> Result<i32, CommandError> {
    let client = ctx.client()?;
    let started: Value = client.post(
        &format!("/v1/apps/{app}/run"),
        &serde_json::json!({ "command": serde_json::to_string(argv).unwrap_or_default() }),
    )?;
    let id = started["id"].as_str().unwrap_or_default().to_string();
    eprintln!(
        "Running {line} on {app}... up, {id} on {} (the image has no /bin/sh: no stdin or terminal)",
        started["node"].as_str().unwrap_or("?")
    );
    {
        let mut stdout = std::io::stdout().lock();
        client.get_stream(&format!("/v1/apps/{app}/run/{id}/output"), &mut stdout)?;
    }
    let done: Value = client.delete_json(&format!("/v1/apps/{app}/run/{id}"))?;
    Ok(done["exit_code"].as_i64().unwrap_or(1) as i32)
}

/// Runs the command; returns its exit code (the process exits with it).
pub fn run(ctx: &Context, app: &str, command: &[String]) -> Result<u8, CommandError> {
    if command.is_empty() {
        return Err(CommandError::Usage(
            "no command: paas run -a APP -- CMD [ARGS…]".into(),
        ));
    }
    let line = command
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let argv = argv_of(command, &line);
    let code = match super::exec::run_attached(ctx, app, &line, argv.clone()) {
        Err(CommandError::Client(ClientError::Api { code, .. }))
            if code == paas_api::codes::NO_SHELL =>
        {
            run_detached(ctx, app, &line, &argv)?
        }
        other => other?,
    };
    Ok(code.clamp(0, 255) as u8)
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
    use super::{argv_of, shell_quote};

    #[test]
    fn words_run_as_given_and_shell_text_through_sh() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            argv_of(&v(&["/server", "once", "a b"]), "x"),
            v(&["/server", "once", "a b"])
        );
        assert_eq!(argv_of(&v(&["ls"]), "ls"), v(&["ls"]));
        assert_eq!(
            argv_of(&v(&["sh", "-c", "echo $X"]), "x"),
            v(&["sh", "-c", "echo $X"])
        );
        assert_eq!(
            argv_of(&v(&["ls | wc -l"]), "'ls | wc -l'"),
            v(&["/bin/sh", "-c", "ls | wc -l"])
        );
        assert_eq!(
            argv_of(&v(&["cd", "/tmp"]), "cd /tmp"),
            v(&["/bin/sh", "-c", "cd /tmp"])
        );
    }

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
