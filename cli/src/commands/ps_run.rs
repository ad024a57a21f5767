//! `paas run -a APP -- CMD…`: runs CMD in a one-off job of the app's current release (with
//! its config), attached to this terminal: stdin goes to it, a TTY when stdin and stdout
//! are terminals (`paas run -a APP bash` is interactive), pipes otherwise (`echo hi | paas
//! run -a APP cat`). The job is removed at the end and the CLI exits with the command's
//! exit code. Uses `POST /v1/apps/{app}/run/attach` and the exec stream (see exec.rs).

use super::{CommandError, Context};

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
    let code = super::exec::run_attached(ctx, app, &line)?;
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
