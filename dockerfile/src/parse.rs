//! Reading a Dockerfile into instructions, as Docker's parser reads it: parser directives
//! at the top (`# escape=` is honoured, `# syntax=` and `# check=` are noted and ignored:
//! there is no BuildKit frontend to pick), `#` comment lines (also inside a continued
//! instruction), lines continued by the escape character, instruction keywords in any
//! case, the JSON (exec) and shell forms, and `--flag=value` options. Heredocs,
//! `ONBUILD`, `FROM --platform` and BuildKit-only RUN options are refused with what to do
//! instead. Every error names the line. Variables are not expanded here (see `plan`).

use crate::words;

/// A syntax error (or something paas's builder does not do), with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile line {line}: {why}")]
pub struct ParseError {
    /// 1-based line of the instruction's first line.
    pub line: usize,
    pub why: String,
}

/// A command of RUN, CMD, ENTRYPOINT or HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `["prog", "arg"]`: run as it is.
    Exec(Vec<String>),
    /// `prog arg`: run by the SHELL (`/bin/sh -c` unless changed).
    Shell(String),
}

/// COPY's and ADD's sources and options (words not yet expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    /// `--from=STAGE|IMAGE`.
    pub from: Option<String>,
    /// `--chown=USER[:GROUP]`.
    pub chown: Option<String>,
    /// `--chmod=OCTAL`.
    pub chmod: Option<String>,
    pub sources: Vec<String>,
    pub dest: String,
}

/// HEALTHCHECK's options and command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    pub command: Command,
    /// Seconds.
    pub interval: Option<u64>,
    pub timeout: Option<u64>,
    pub start_period: Option<u64>,
    pub retries: Option<u32>,
}

/// One instruction. Words are kept as written (quotes, `$VAR`); `plan` expands them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From {
        image: String,
        stage: Option<String>,
    },
    Run(Command),
    Cmd(Command),
    Entrypoint(Command),
    Shell(Vec<String>),
    /// `KEY=VALUE` pairs (or the old `KEY VALUE` form).
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Copy(CopySpec),
    Add(CopySpec),
    Workdir(String),
    User(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
    /// `None`: `HEALTHCHECK NONE`.
    Healthcheck(Option<HealthSpec>),
    Maintainer(String),
}

impl Instruction {
    /// True for the instructions that change the filesystem (one layer each).
    pub fn makes_layer(&self) -> bool {
        matches!(
            self,
            Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_)
        )
    }
}

/// An instruction where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// 1-based line of its first line.
    pub line: usize,
    /// The instruction as written, continuations joined (what `Step 3/9 : …` shows).
    pub text: String,
    pub instruction: Instruction,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub escape: char,
    /// Things the push should mention (an ignored `# syntax=` directive, MAINTAINER).
    pub notes: Vec<String>,
    pub instructions: Vec<Located>,
}

fn err(line: usize, why: impl Into<String>) -> ParseError {
    ParseError {
        line,
        why: why.into(),
    }
}

/// Parses a whole Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut escape = '\\';
    let mut notes = Vec::new();
    let mut i = 0;
    // Parser directives: `# key=value` lines at the very top, each key once.
    let mut seen = Vec::new();
    while i < lines.len() {
        let Some((key, value)) = directive(lines[i]) else {
            break;
        };
        if seen.contains(&key) {
            return Err(err(
                i + 1,
                format!("the parser directive `{key}` is given twice"),
            ));
        }
        match key.as_str() {
            "escape" => {
                escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(err(
                            i + 1,
                            format!("`# escape={value}`: the escape character must be \\ or `"),
                        ))
                    }
                }
            }
            "syntax" => notes.push(format!(
                "`# syntax={value}` is ignored: paas builds with its own builder (see docs/builds.md for what it supports)"
            )),
            "check" => notes.push(format!("`# check={value}` is ignored")),
            _ => break, // Not a directive Docker knows: an ordinary comment.
        }
        seen.push(key);
        i += 1;
    }
    let mut instructions = Vec::new();
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i;
        // Join continuation lines; comment lines inside are dropped, empty ones skipped.
        let mut joined = String::new();
        let mut current = line;
        loop {
            let body = current.trim_end();
            match body.strip_suffix(escape) {
                Some(rest) if i + 1 < lines.len() => {
                    joined.push_str(rest);
                    i += 1;
                    while i < lines.len() {
                        let t = lines[i].trim_start();
                        if t.starts_with('#') || t.is_empty() {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    if i >= lines.len() {
                        break;
                    }
                    current = lines[i];
                }
                Some(rest) => {
                    // The file ends with a continuation: what there is counts.
                    joined.push_str(rest);
                    break;
                }
                None => {
                    joined.push_str(body);
                    break;
                }
            }
        }
        i += 1;
        let text = joined.trim().to_string();
        let instruction = instruction(&text, start + 1, escape, &mut notes)?;
        instructions.push(Located {
            line: start + 1,
            text,
            instruction,
        });
    }
    if instructions.is_empty() {
        return Err(err(1, "the Dockerfile has no instructions"));
    }
    if !matches!(
        instructions[0].instruction,
        Instruction::From { .. } | Instruction::Arg(_)
    ) || !instructions
        .iter()
        .any(|l| matches!(l.instruction, Instruction::From { .. }))
    {
        let first = instructions
            .iter()
            .find(|l| !matches!(l.instruction, Instruction::Arg(_)))
            .unwrap_or(&instructions[0]);
        return Err(err(
            first.line,
            "a Dockerfile must start with FROM (only ARG may come before it)",
        ));
    }
    Ok(Dockerfile {
        escape,
        notes,
        instructions,
    })
}

/// `# key=value` with a known-looking key (letters only), lowercased.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim().strip_prefix('#')?.trim_start();
    let (key, value) = rest.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.trim().to_string()))
}

/// `--name=value` (or `--name`) options at the start of `rest`, then the remainder.
fn flags(rest: &str) -> (Vec<(String, Option<String>)>, &str) {
    let mut out = Vec::new();
    let mut rest = rest.trim_start();
    while let Some(after) = rest.strip_prefix("--") {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let flag = &after[..end];
        match flag.split_once('=') {
            Some((k, v)) => out.push((k.to_ascii_lowercase(), Some(v.to_string()))),
            None => out.push((flag.to_ascii_lowercase(), None)),
        }
        rest = after[end..].trim_start();
    }
    (out, rest)
}

/// A JSON array of strings, when `rest` is one (else Docker reads the shell form).
fn json_array(rest: &str) -> Option<Vec<String>> {
    let t = rest.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn command(rest: &str) -> Command {
    match json_array(rest) {
        Some(argv) => Command::Exec(argv),
        None => Command::Shell(rest.trim().to_string()),
    }
}

/// True when `text` has a heredoc (`<<EOF`, `<<-"EOF"`), which Docker's classic builder
/// does not know either.
fn has_heredoc(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(off) = text[i..].find("<<") {
        let mut j = i + off + 2;
        if b.get(j) == Some(&b'-') {
            j += 1;
        }
        if matches!(b.get(j), Some(b'"') | Some(b'\'')) {
            j += 1;
        }
        if b.get(j)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        {
            return true;
        }
        i = i + off + 2;
    }
    false
}

fn no_flags(
    keyword: &str,
    flags: &[(String, Option<String>)],
    line: usize,
) -> Result<(), ParseError> {
    match flags.first() {
        Some((name, _)) => Err(err(line, format!("{keyword} has no option --{name}"))),
        None => Ok(()),
    }
}

fn instruction(
    text: &str,
    line: usize,
    escape: char,
    notes: &mut Vec<String>,
) -> Result<Instruction, ParseError> {
    let (keyword, rest) = match text.find(char::is_whitespace) {
        Some(at) => (&text[..at], text[at..].trim_start()),
        None => (text, ""),
    };
    let upper = keyword.to_ascii_uppercase();
    let split = |s: &str| words::split(s, escape).map_err(|e| err(line, format!("{upper}: {e}")));
    let (opts, args) = flags(rest);
    let need_args = |what: &str| -> Result<(), ParseError> {
        if args.trim().is_empty() {
            Err(err(line, format!("{upper} needs {what}")))
        } else {
            Ok(())
        }
    };
    if matches!(upper.as_str(), "RUN" | "COPY" | "ADD") && has_heredoc(args) {
        return Err(err(
            line,
            format!(
                "{upper} with a heredoc (`<<EOF`) is not supported by paas's builder: put the \
                 script in a file of the repository and COPY it, or join the lines with `&& \\`"
            ),
        ));
    }
    let parsed = match upper.as_str() {
        "FROM" => {
            if let Some((name, _)) = opts.first() {
                let why = if name == "platform" {
                    "FROM --platform is not supported: paas builds and runs linux/amd64 only; remove the option".to_string()
                } else {
                    format!("FROM has no option --{name}")
                };
                return Err(err(line, why));
            }
            let w = split(args)?;
            match w.as_slice() {
                [image] => Instruction::From {
                    image: image.clone(),
                    stage: None,
                },
                [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    let lower = name.to_ascii_lowercase();
                    if !valid_stage_name(&lower) {
                        return Err(err(line, format!("`{name}` is not a valid stage name (letters, digits, `_`, `-` and `.`, starting with a letter)")));
                    }
                    Instruction::From {
                        image: image.clone(),
                        stage: Some(lower),
                    }
                }
                _ => return Err(err(line, "FROM takes `IMAGE` or `IMAGE AS NAME`")),
            }
        }
        "RUN" => {
            if let Some((name, _)) = opts.first() {
                return Err(err(line, format!("RUN --{name} is a BuildKit option paas's builder does not support; remove it (RUN steps run with the app's build network)")));
            }
            need_args("a command")?;
            Instruction::Run(command(args))
        }
        "CMD" | "ENTRYPOINT" => {
            no_flags(&upper, &opts, line)?;
            let c = command(args);
            if upper == "CMD" {
                Instruction::Cmd(c)
            } else {
                Instruction::Entrypoint(c)
            }
        }
        "SHELL" => {
            no_flags(&upper, &opts, line)?;
            match json_array(args) {
                Some(v) if !v.is_empty() => Instruction::Shell(v),
                _ => return Err(err(line, "SHELL takes a JSON array, e.g. SHELL [\"/bin/bash\", \"-c\"]")),
            }
        }
        "ENV" | "LABEL" => {
            no_flags(&upper, &opts, line)?;
            need_args("KEY=VALUE")?;
            let p = pairs(&upper, args, line, escape)?;
            if upper == "ENV" {
                Instruction::Env(p)
            } else {
                Instruction::Label(p)
            }
        }
        "ARG" => {
            no_flags(&upper, &opts, line)?;
            need_args("a NAME or NAME=default")?;
            let mut out = Vec::new();
            for w in split(args)? {
                let (k, v) = match w.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (w.clone(), None),
                };
                if !valid_var_name(&k) {
                    return Err(err(line, format!("ARG: `{k}` is not a valid name")));
                }
                out.push((k, v));
            }
            Instruction::Arg(out)
        }
        "COPY" | "ADD" => {
            let mut spec = CopySpec {
                from: None,
                chown: None,
                chmod: None,
                sources: Vec::new(),
                dest: String::new(),
            };
            for (name, value) in opts {
                let slot = match (name.as_str(), upper.as_str()) {
                    ("from", "COPY") => &mut spec.from,
                    ("chown", _) => &mut spec.chown,
                    ("chmod", _) => &mut spec.chmod,
                    ("link", _) => continue, // Only changes how BuildKit caches; same result.
                    _ => return Err(err(line, format!("{upper} --{name} is not supported by paas's builder"))),
                };
                match value {
                    Some(v) if !v.is_empty() => *slot = Some(v),
                    _ => return Err(err(line, format!("{upper} --{name} needs a value (--{name}=…)"))),
                }
            }
            let mut w = match json_array(args) {
                Some(v) => v,
                None => split(args)?,
            };
            if w.len() < 2 {
                return Err(err(line, format!("{upper} needs at least one source and a destination")));
            }
            spec.dest = w.pop().unwrap_or_default();
            spec.sources = w;
            if upper == "COPY" {
                Instruction::Copy(spec)
            } else {
                Instruction::Add(spec)
            }
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" | "MAINTAINER" => {
            no_flags(&upper, &opts, line)?;
            need_args("a value")?;
            let v = args.trim().to_string();
            match upper.as_str() {
                "WORKDIR" => Instruction::Workdir(v),
                "USER" => Instruction::User(v),
                "STOPSIGNAL" => Instruction::StopSignal(v),
                _ => {
                    notes.push(format!("MAINTAINER (line {line}) is deprecated; it is kept as the label `maintainer`"));
                    Instruction::Maintainer(v)
                }
            }
        }
        "EXPOSE" => {
            no_flags(&upper, &opts, line)?;
            need_args("a port")?;
            Instruction::Expose(split(args)?)
        }
        "VOLUME" => {
            no_flags(&upper, &opts, line)?;
            need_args("a path")?;
            match json_array(args) {
                Some(v) => Instruction::Volume(v),
                None => Instruction::Volume(split(args)?),
            }
        }
        "HEALTHCHECK" => health(&opts, args, line)?,
        "ONBUILD" => {
            return Err(err(
                line,
                "ONBUILD is not supported by paas's builder: write the instructions into the Dockerfile that uses this image",
            ))
        }
        _ => {
            return Err(err(
                line,
                format!(
                    "unknown instruction `{keyword}` (paas's builder knows FROM, RUN, CMD, \
                     ENTRYPOINT, SHELL, ENV, ARG, LABEL, COPY, ADD, WORKDIR, USER, EXPOSE, \
                     VOLUME, STOPSIGNAL, HEALTHCHECK and MAINTAINER)"
                ),
            ))
        }
    };
    Ok(parsed)
}

/// ENV's and LABEL's `KEY=VALUE …` (values may be quoted), or the old `KEY VALUE` form.
fn pairs(
    keyword: &str,
    args: &str,
    line: usize,
    escape: char,
) -> Result<Vec<(String, String)>, ParseError> {
    let words = words::split(args, escape).map_err(|e| err(line, format!("{keyword}: {e}")))?;
    let first_has_eq = words.first().is_some_and(|w| w.contains('='));
    if !first_has_eq {
        // `ENV KEY VALUE WITH SPACES`: everything after the key is the value.
        let key = words.first().cloned().unwrap_or_default();
        let value = args.trim()[key.len()..].trim().to_string();
        if value.is_empty() {
            return Err(err(
                line,
                format!("{keyword} {key} needs a value (`{keyword} {key}=VALUE`)"),
            ));
        }
        return Ok(vec![(key, value)]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(err(
                line,
                format!("{keyword}: `{w}` has no `=`: write KEY=VALUE (quote values with spaces)"),
            ));
        };
        if k.is_empty() {
            return Err(err(
                line,
                format!("{keyword}: `{w}` has no name before `=`"),
            ));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

fn valid_var_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_stage_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A duration as HEALTHCHECK takes it: `30s`, `1m30s`, `500ms` (rounded up to seconds).
pub fn duration_secs(text: &str) -> Option<u64> {
    let mut total_ms: u64 = 0;
    let mut num = String::new();
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit_ms = match c {
            'h' => 3_600_000,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            'm' => 60_000,
            's' => 1000,
            _ => return None,
        };
        total_ms = total_ms.checked_add(n.checked_mul(unit_ms)?)?;
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(total_ms.div_ceil(1000))
}

fn health(
    opts: &[(String, Option<String>)],
    args: &str,
    line: usize,
) -> Result<Instruction, ParseError> {
    let (cmd_word, rest) = match args.find(char::is_whitespace) {
        Some(at) => (&args[..at], args[at..].trim_start()),
        None => (args, ""),
    };
    if cmd_word.eq_ignore_ascii_case("NONE") {
        if !opts.is_empty() || !rest.is_empty() {
            return Err(err(line, "HEALTHCHECK NONE takes no options or command"));
        }
        return Ok(Instruction::Healthcheck(None));
    }
    if !cmd_word.eq_ignore_ascii_case("CMD") || rest.is_empty() {
        return Err(err(
            line,
            "HEALTHCHECK takes `[OPTIONS] CMD command` or `NONE`",
        ));
    }
    let mut spec = HealthSpec {
        command: command(rest),
        interval: None,
        timeout: None,
        start_period: None,
        retries: None,
    };
    for (name, value) in opts {
        let value = value.as_deref().unwrap_or("");
        let bad = || {
            err(
                line,
                format!("HEALTHCHECK --{name}={value}: not a duration like 30s or 1m30s"),
            )
        };
        match name.as_str() {
            "interval" => spec.interval = Some(duration_secs(value).ok_or_else(bad)?),
            "timeout" => spec.timeout = Some(duration_secs(value).ok_or_else(bad)?),
            "start-period" => spec.start_period = Some(duration_secs(value).ok_or_else(bad)?),
            "start-interval" => {
                duration_secs(value).ok_or_else(bad)?;
            }
            "retries" => {
                spec.retries = Some(value.parse().map_err(|_| {
                    err(line, format!("HEALTHCHECK --retries={value}: not a number"))
                })?)
            }
            _ => return Err(err(line, format!("HEALTHCHECK has no option --{name}"))),
        }
    }
    Ok(Instruction::Healthcheck(Some(spec)))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
