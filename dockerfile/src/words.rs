//! Words and variable substitution, as Docker's shell lexer does them for the instructions
//! that get it (FROM, COPY, ADD, ENV, ARG, LABEL, EXPOSE, USER, WORKDIR, VOLUME,
//! STOPSIGNAL): quotes are removed (`'…'` is literal, `"…"` expands variables), the escape
//! character (`\`, or `` ` `` after `# escape=`) makes the next character literal, and
//! `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
//! `${VAR:?message}` and `${VAR?message}` expand from the variables in effect (an unset
//! variable is empty). RUN, CMD and ENTRYPOINT are left to the shell, as Docker leaves them.

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    #[error("a quote ({0}) is not closed")]
    Unclosed(char),
    #[error("`${{` is not closed by `}}`")]
    UnclosedBrace,
    #[error(
        "`${{{name}{op}…}}` is not supported here: Docker's builder knows `:-`, `-`, `:+`, `+`, \
         `:?` and `?` (use a RUN step's shell for the rest)"
    )]
    Operator { name: String, op: String },
    #[error("`${{{0}}}`: {0} is not set ({1})")]
    Required(String, String),
    #[error("`${{…}}` needs a variable name")]
    NoName,
}

/// Splits `text` at unquoted, unescaped white space, keeping quotes and escapes (they are
/// removed by [`expand`] later, as Docker does).
pub fn split(text: &str, escape: char) -> Result<Vec<String>, WordError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(ch);
                if ch == escape && q == '"' {
                    if let Some(next) = chars.next() {
                        cur.push(next);
                    }
                } else if ch == q {
                    quote = None;
                }
            }
            None if ch.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                cur.push(ch);
                if ch == escape {
                    if let Some(next) = chars.next() {
                        cur.push(next);
                    }
                } else if ch == '"' || ch == '\'' {
                    quote = Some(ch);
                }
            }
        }
    }
    if let Some(q) = quote {
        return Err(WordError::Unclosed(q));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Expands one word: quotes removed, escapes applied, variables substituted from `vars`
/// (`None`: unset).
pub fn expand<'a>(
    word: &str,
    escape: char,
    vars: &dyn Fn(&str) -> Option<&'a str>,
) -> Result<String, WordError> {
    let chars: Vec<char> = word.chars().collect();
    let mut pos = 0;
    let out = expand_until(&chars, &mut pos, escape, vars, None)?;
    Ok(out)
}

/// Expands every white-space separated word of `text` (EXPOSE, VOLUME's shell form).
pub fn expand_fields<'a>(
    text: &str,
    escape: char,
    vars: &dyn Fn(&str) -> Option<&'a str>,
) -> Result<Vec<String>, WordError> {
    split(text, escape)?
        .iter()
        .map(|w| expand(w, escape, vars))
        .collect()
}

/// Expands from `pos` until `stop` (the `}` of a `${…:-word}`) or the end.
fn expand_until<'a>(
    chars: &[char],
    pos: &mut usize,
    escape: char,
    vars: &dyn Fn(&str) -> Option<&'a str>,
    stop: Option<char>,
) -> Result<String, WordError> {
    let mut out = String::new();
    while *pos < chars.len() {
        let ch = chars[*pos];
        if Some(ch) == stop {
            return Ok(out);
        }
        *pos += 1;
        if ch == escape {
            if let Some(&next) = chars.get(*pos) {
                out.push(next);
                *pos += 1;
            } else {
                out.push(ch);
            }
        } else if ch == '\'' {
            loop {
                match chars.get(*pos) {
                    None => return Err(WordError::Unclosed('\'')),
                    Some('\'') => {
                        *pos += 1;
                        break;
                    }
                    Some(&c) => {
                        out.push(c);
                        *pos += 1;
                    }
                }
            }
        } else if ch == '"' {
            loop {
                match chars.get(*pos) {
                    None => return Err(WordError::Unclosed('"')),
                    Some('"') => {
                        *pos += 1;
                        break;
                    }
                    Some(&c) if c == escape => match chars.get(*pos + 1) {
                        Some(&n) if n == '"' || n == '$' || n == escape => {
                            out.push(n);
                            *pos += 2;
                        }
                        _ => {
                            out.push(c);
                            *pos += 1;
                        }
                    },
                    Some('$') => {
                        *pos += 1;
                        out.push_str(&variable(chars, pos, escape, vars)?);
                    }
                    Some(&c) => {
                        out.push(c);
                        *pos += 1;
                    }
                }
            }
        } else if ch == '$' {
            out.push_str(&variable(chars, pos, escape, vars)?);
        } else {
            out.push(ch);
        }
    }
    if stop.is_some() {
        return Err(WordError::UnclosedBrace);
    }
    Ok(out)
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// After a `$`: `NAME`, `{NAME}` or `{NAME<op>word}`; a `$` followed by anything else is
/// kept as it is.
fn variable<'a>(
    chars: &[char],
    pos: &mut usize,
    escape: char,
    vars: &dyn Fn(&str) -> Option<&'a str>,
) -> Result<String, WordError> {
    match chars.get(*pos) {
        Some('{') => {
            *pos += 1;
            let start = *pos;
            while chars.get(*pos).is_some_and(|&c| is_name(c)) {
                *pos += 1;
            }
            let name: String = chars[start..*pos].iter().collect();
            if name.is_empty() {
                return Err(WordError::NoName);
            }
            let value = vars(&name);
            match chars.get(*pos) {
                None => Err(WordError::UnclosedBrace),
                Some('}') => {
                    *pos += 1;
                    Ok(value.unwrap_or("").to_string())
                }
                Some(&c) => {
                    let colon = c == ':';
                    if colon {
                        *pos += 1;
                    }
                    let op = chars.get(*pos).copied().unwrap_or('}');
                    if !matches!(op, '-' | '+' | '?') {
                        let op = if colon {
                            format!(":{op}")
                        } else {
                            op.to_string()
                        };
                        return Err(WordError::Operator { name, op });
                    }
                    *pos += 1;
                    let word = expand_until(chars, pos, escape, vars, Some('}'))?;
                    *pos += 1; // the `}`
                               // With `:`, an empty value counts as unset.
                    let set = match value {
                        Some(v) => !(colon && v.is_empty()),
                        None => false,
                    };
                    Ok(match op {
                        '-' if set => value.unwrap_or("").to_string(),
                        '-' => word,
                        '+' if set => word,
                        '+' => String::new(),
                        _ if set => value.unwrap_or("").to_string(),
                        _ => {
                            let why = if word.is_empty() {
                                "it must be set".to_string()
                            } else {
                                word
                            };
                            return Err(WordError::Required(name, why));
                        }
                    })
                }
            }
        }
        Some(&c) if c.is_ascii_digit() => {
            *pos += 1;
            Ok(vars(&c.to_string()).unwrap_or("").to_string())
        }
        Some(&c) if is_name(c) => {
            let start = *pos;
            while chars.get(*pos).is_some_and(|&c| is_name(c)) {
                *pos += 1;
            }
            let name: String = chars[start..*pos].iter().collect();
            Ok(vars(&name).unwrap_or("").to_string())
        }
        _ => Ok("$".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ex(word: &str, vars: &[(&str, &str)]) -> Result<String, WordError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        expand(word, '\\', &|k| map.get(k).map(String::as_str))
    }

    #[test]
    fn plain_braced_and_default_forms_expand_as_docker_does() {
        let v = [("A", "x"), ("E", "")];
        assert_eq!(ex("$A", &v).unwrap(), "x");
        assert_eq!(ex("${A}/bin", &v).unwrap(), "x/bin");
        assert_eq!(ex("$A$A-$NOPE.", &v).unwrap(), "xx-.");
        assert_eq!(ex("${NOPE:-def}", &v).unwrap(), "def");
        assert_eq!(ex("${E:-def}", &v).unwrap(), "def");
        assert_eq!(ex("${E-def}", &v).unwrap(), "");
        assert_eq!(ex("${A:-def}", &v).unwrap(), "x");
        assert_eq!(ex("${A:+set}", &v).unwrap(), "set");
        assert_eq!(ex("${E:+set}", &v).unwrap(), "");
        assert_eq!(ex("${E+set}", &v).unwrap(), "set");
        assert_eq!(ex("${NOPE:+set}", &v).unwrap(), "");
        assert_eq!(ex("${NOPE:-${A}y}", &v).unwrap(), "xy");
        assert_eq!(
            ex("${NOPE:?give a tag}", &v).unwrap_err(),
            WordError::Required("NOPE".into(), "give a tag".into())
        );
        assert_eq!(ex("${A:?x}", &v).unwrap(), "x");
    }

    #[test]
    fn quotes_and_escapes_follow_the_shell_lexer() {
        let v = [("A", "x")];
        assert_eq!(ex("'$A'", &v).unwrap(), "$A");
        assert_eq!(ex("\"$A y\"", &v).unwrap(), "x y");
        assert_eq!(ex("\\$A", &v).unwrap(), "$A");
        assert_eq!(ex("\"a\\\"b\"", &v).unwrap(), "a\"b");
        assert_eq!(ex("\"a\\nb\"", &v).unwrap(), "a\\nb");
        assert_eq!(ex("cost$", &v).unwrap(), "cost$");
        assert_eq!(ex("a$/b", &v).unwrap(), "a$/b");
        assert_eq!(ex("\"open", &v).unwrap_err(), WordError::Unclosed('"'));
        assert_eq!(ex("${A", &v).unwrap_err(), WordError::UnclosedBrace);
        assert!(matches!(
            ex("${A#x}", &v).unwrap_err(),
            WordError::Operator { .. }
        ));
        let with_tick = expand("`$A", '`', &|_| Some("x")).unwrap();
        assert_eq!(with_tick, "$A");
    }

    #[test]
    fn split_keeps_quoted_spaces_in_one_word() {
        assert_eq!(
            split(r#"a="b c" d\ e 'f g'"#, '\\').unwrap(),
            vec![r#"a="b c""#, r"d\ e", "'f g'"]
        );
        assert_eq!(split("  ", '\\').unwrap(), Vec::<String>::new());
        assert_eq!(split("'x", '\\').unwrap_err(), WordError::Unclosed('\''));
    }

    proptest::proptest! {
        #[test]
        fn plain_words_expand_to_themselves(w in "[a-zA-Z0-9_./:@-]{0,30}") {
            proptest::prop_assert_eq!(ex(&w, &[]).unwrap(), w);
        }
    }
}
