//! How a process's command becomes the argv of its job.
//!
//! A command is stored as text (a Procfile line, app.json's, `paas run`'s). Two forms:
//! * the exec form, a JSON array of strings (`["/server", "--port", "8080"]`), as
//!   Dockerfile's exec-form CMD/ENTRYPOINT: the argv itself, run without a shell (a
//!   `FROM scratch` image with one static binary has none);
//! * anything else is shell text, run by `/bin/sh -c` after the app's `.profile.d`
//!   scripts ([`super::PROFILE_PRELUDE`]).
//!
//! [`plain_words`] says whether shell text needs a shell at all: words, quotes and
//! backslashes only (no `$`, `|`, `;`, `&`, redirections, globs, `~`, comments, `VAR=x`
//! prefixes, or a shell builtin as the program). Such a line can run as an argv.

use paas_api::exec::SHELL_BUILTINS;

use super::PROFILE_PRELUDE;

/// The argv of an exec-form command (a JSON array of strings, at least one, the first not
/// empty); `None` for shell text.
pub fn exec_form(command: &str) -> Option<Vec<String>> {
    let t = command.trim();
    if !t.starts_with('[') {
        return None;
    }
    let argv: Vec<String> = serde_json::from_str(t).ok()?;
    argv.first().filter(|a| !a.is_empty())?;
    Some(argv)
}

/// `argv` written in the exec form (`["/server","--port","8080"]`).
pub fn to_exec_form(argv: &[String]) -> String {
    serde_json::to_string(argv).unwrap_or_default()
}

/// The words of `line` when it needs no shell to run (see the module doc); a leading
/// `exec` is dropped. `None` when it uses the shell.
pub fn plain_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.trim().chars();
    while let Some(ch) = chars.next() {
        match ch {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '$' | '`' => return None,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\') => cur.push(c),
                            '$' | '`' => return None,
                            c => {
                                cur.push('\\');
                                cur.push(c);
                            }
                        },
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next()? {
                    '\n' => return None,
                    c => cur.push(c),
                }
            }
            '$' | '`' | '|' | '&' | ';' | '<' | '>' | '(' | ')' | '*' | '?' | '[' | ']' | '{'
            | '}' | '\n' | '\r' => return None,
            '~' | '#' if !in_word => return None,
            '=' if words.is_empty() && !cur.contains('/') => return None,
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    if words.first().map(String::as_str) == Some("exec") {
        words.remove(0);
    }
    let first = words.first()?;
    if first.is_empty() || SHELL_BUILTINS.contains(&first.as_str()) {
        return None;
    }
    Some(words)
}

/// The job argv of a process type's command: the exec form as it is, shell text through
/// `/bin/sh -c` after the `.profile.d` scripts.
pub fn process_argv(command: &str) -> Vec<String> {
    match exec_form(command) {
        Some(argv) => argv,
        None => vec![
            "/bin/sh".into(),
            "-c".into(),
            PROFILE_PRELUDE.into(),
            command.into(),
        ],
    }
}

/// The job argv of a one-off command (`paas run`): the exec form or plain words run
/// directly (so they work in an image without a shell), anything else by `/bin/sh -c`.
pub fn one_off_argv(command: &str) -> Vec<String> {
    exec_form(command)
        .or_else(|| plain_words(command))
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), command.into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Option<Vec<String>> {
        plain_words(s)
    }

    #[test]
    fn exec_form_is_a_json_array_of_strings() {
        assert_eq!(
            exec_form(r#" ["/server", "-p", "8080"] "#).unwrap(),
            ["/server", "-p", "8080"]
        );
        assert_eq!(exec_form("/server -p 8080"), None);
        assert_eq!(exec_form("[ -f x ] && run"), None);
        assert_eq!(exec_form("[]"), None);
        assert_eq!(exec_form(r#"[""]"#), None);
        assert_eq!(exec_form("[1, 2]"), None);
        let argv = vec!["/a b".to_string(), "it's \"q\"".to_string()];
        assert_eq!(exec_form(&to_exec_form(&argv)).unwrap(), argv);
    }

    #[test]
    fn plain_words_split_as_sh_does() {
        assert_eq!(
            w("/server --port 8080").unwrap(),
            ["/server", "--port", "8080"]
        );
        assert_eq!(
            w("exec  bin/web   'a b' \"c d\"").unwrap(),
            ["bin/web", "a b", "c d"]
        );
        assert_eq!(w(r"echo a\ b 'it''s'").unwrap(), ["echo", "a b", "its"]);
        assert_eq!(w(r#"say "a \"q\" \n""#).unwrap(), ["say", "a \"q\" \\n"]);
        assert_eq!(w("run --opt=x a=b").unwrap(), ["run", "--opt=x", "a=b"]);
        assert_eq!(w("./bin/x~y").unwrap(), ["./bin/x~y"]);
        assert_eq!(w("x ''").unwrap(), ["x", ""]);
    }

    #[test]
    fn anything_the_shell_does_needs_a_shell() {
        for line in [
            "server --port $PORT",
            "server --port ${PORT}",
            "echo \"$HOME\"",
            "a | b",
            "a && b",
            "a; b",
            "a > log",
            "a < in",
            "(a)",
            "ls *.txt",
            "ls ?",
            "ls ~",
            "echo `date`",
            "PORT=1 server",
            "cd /app",
            "exit 3",
            ". ./env",
            "source env",
            "exec",
            "",
            "a # comment",
            "echo 'unclosed",
            "echo \"unclosed",
            "a\nb",
            "{ a; }",
        ] {
            assert_eq!(w(line), None, "{line:?} needs a shell");
        }
    }

    #[test]
    fn processes_and_one_offs_get_their_argv() {
        assert_eq!(process_argv(r#"["/server"]"#), ["/server"]);
        let sh = process_argv("/server --port $PORT");
        assert_eq!(
            (sh[0].as_str(), sh[1].as_str(), sh[3].as_str()),
            ("/bin/sh", "-c", "/server --port $PORT")
        );
        assert_eq!(one_off_argv("/server --version"), ["/server", "--version"]);
        assert_eq!(one_off_argv(r#"["ls", "-l"]"#), ["ls", "-l"]);
        assert_eq!(one_off_argv("echo $PORT"), ["/bin/sh", "-c", "echo $PORT"]);
    }
}
