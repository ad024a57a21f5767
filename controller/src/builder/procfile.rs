//! Process types of a build: the app's `Procfile` (`name: command` lines) and the YAML
//! subset of a buildpack's `bin/release` output (`default_process_types:` followed by
//! indented `name: command` lines). The Procfile wins over the defaults.

use std::collections::BTreeMap;

/// What is wrong with a Procfile or release file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcfileError {
    #[error("Procfile line {line}: {why}")]
    Procfile { line: usize, why: String },
    #[error("the buildpack's release output (.paas/release.yml) line {line}: {why}")]
    Release { line: usize, why: String },
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One `name: command` entry; `Err(why)` for a malformed one.
fn entry(line: &str) -> Result<(String, String), String> {
    let Some((name, command)) = line.split_once(':') else {
        return Err(format!(
            "expected `name: command` (for example `web: ./server`), found {line:?}"
        ));
    };
    let name = name.trim();
    if !valid_name(name) {
        return Err(format!(
            "the process type {name:?} is not a valid name: use letters, digits, dashes and \
             underscores (for example `web` or `worker`)"
        ));
    }
    let command = command.trim();
    if command.is_empty() {
        return Err(format!(
            "the process type {name:?} has no command after the colon"
        ));
    }
    if let Some(c) = command.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(format!(
            "the command of {name:?} contains the control character {c:?}: a command is \
             one line of plain text; remove it from the Procfile"
        ));
    }
    Ok((name.to_string(), command.to_string()))
}

/// Parses a Procfile: `name: command` lines, `#` comments and blank lines.
pub fn parse_procfile(text: &str) -> Result<BTreeMap<String, String>, ProcfileError> {
    let mut types = BTreeMap::new();
    let mut first_line = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let n = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, command) =
            entry(line).map_err(|why| ProcfileError::Procfile { line: n, why })?;
        if let Some(first) = first_line.insert(name.clone(), n) {
            return Err(ProcfileError::Procfile {
                line: n,
                why: format!("the process type {name:?} is already declared on line {first}"),
            });
        }
        types.insert(name, command);
    }
    Ok(types)
}

/// Removes one level of YAML quoting from a scalar.
fn unquote(value: &str) -> String {
    let v = value.trim();
    if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        return v[1..v.len() - 1].replace("''", "'");
    }
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let inner = &v[1..v.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        return out;
    }
    v.to_string()
}

/// The `default_process_types` of a buildpack's `bin/release` YAML. Other keys are
/// ignored; `default_process_types: {}` (or no such key) means none.
pub fn parse_release_yml(text: &str) -> Result<BTreeMap<String, String>, ProcfileError> {
    let mut types = BTreeMap::new();
    let mut inside = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---" {
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if !indented {
            inside = false;
            if let Some(rest) = trimmed.strip_prefix("default_process_types:") {
                match rest.trim() {
                    "" => inside = true,
                    "{}" | "~" | "null" => {}
                    other => {
                        return Err(ProcfileError::Release {
                            line: n,
                            why: format!(
                                "expected the process types on the following indented lines, \
                                 found {other:?}"
                            ),
                        })
                    }
                }
            }
            continue;
        }
        if inside {
            let (name, command) =
                entry(trimmed).map_err(|why| ProcfileError::Release { line: n, why })?;
            let command = unquote(&command);
            if command.is_empty() {
                return Err(ProcfileError::Release {
                    line: n,
                    why: format!("the process type {name:?} has an empty command"),
                });
            }
            types.insert(name, command);
        }
    }
    Ok(types)
}

/// The release's process types: the buildpack's defaults, overridden by the Procfile. None
/// at all is a valid release, as on Heroku: nothing runs, and `paas run` works on it.
pub fn process_types(
    procfile: Option<&str>,
    release_yml: Option<&str>,
) -> Result<BTreeMap<String, String>, ProcfileError> {
    let mut types = match release_yml {
        Some(text) => parse_release_yml(text)?,
        None => BTreeMap::new(),
    };
    if let Some(text) = procfile {
        types.extend(parse_procfile(text)?);
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procfile_lines_comments_and_blanks() {
        let types = parse_procfile(
            "# my app\n\nweb: httpd -f -p $PORT -h /app\n  worker :  sh -c 'a: b'  \r\n",
        )
        .unwrap();
        assert_eq!(types["web"], "httpd -f -p $PORT -h /app");
        assert_eq!(types["worker"], "sh -c 'a: b'");
        assert_eq!(types.len(), 2);
        assert!(parse_procfile("").unwrap().is_empty());
    }

    #[test]
    fn procfile_errors_name_the_line_and_the_problem() {
        let e = parse_procfile("web: ok\njust words\n").unwrap_err();
        assert_eq!(
            e,
            ProcfileError::Procfile {
                line: 2,
                why: "expected `name: command` (for example `web: ./server`), found \"just words\""
                    .into()
            }
        );
        let e = parse_procfile("\n\nmy web: x\n").unwrap_err().to_string();
        assert!(
            e.starts_with("Procfile line 3: the process type \"my web\""),
            "{e}"
        );
        let e = parse_procfile("web:\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("no command"), "{e}");
        let e = parse_procfile("web: ./server\0 --evil\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 1") && e.contains("control character"),
            "{e}"
        );
        let e = parse_procfile("web: a\nweb: b\n").unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("already declared on line 1"),
            "{e}"
        );
    }

    #[test]
    fn release_yml_defaults() {
        let yml =
            "---\naddons: []\ndefault_process_types:\n  web: httpd -f -v -p $PORT -h /app\n  \
                   clock: 'sleep 1'\nconfig_vars:\n  A: b\n";
        let types = parse_release_yml(yml).unwrap();
        assert_eq!(types["web"], "httpd -f -v -p $PORT -h /app");
        assert_eq!(types["clock"], "sleep 1");
        assert_eq!(types.len(), 2, "config_vars are not process types");
        assert!(parse_release_yml("---\ndefault_process_types: {}\n")
            .unwrap()
            .is_empty());
        assert!(parse_release_yml("").unwrap().is_empty());
        assert_eq!(
            parse_release_yml("default_process_types:\n  web: \"a \\\"b\\\"\"\n").unwrap()["web"],
            "a \"b\""
        );
        let e = parse_release_yml("default_process_types: {web: x}\n").unwrap_err();
        assert!(matches!(e, ProcfileError::Release { line: 1, .. }), "{e}");
        let e = parse_release_yml("default_process_types:\n  nonsense\n").unwrap_err();
        assert!(matches!(e, ProcfileError::Release { line: 2, .. }), "{e}");
    }

    #[test]
    fn procfile_wins_over_defaults_and_none_is_a_release() {
        let types = process_types(
            Some("web: ./server\n"),
            Some("default_process_types:\n  web: httpd\n  worker: w\n"),
        )
        .unwrap();
        assert_eq!(types["web"], "./server");
        assert_eq!(types["worker"], "w");
        assert_eq!(
            process_types(Some("# nothing\n"), Some("default_process_types: {}\n")),
            Ok(BTreeMap::new())
        );
        assert_eq!(process_types(None, None), Ok(BTreeMap::new()));
    }
}
