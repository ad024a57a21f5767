//! JSON with comments, as app.json is written for Dokku and editors: `//` line comments,
//! `/* */` block comments and a trailing comma before `}` or `]` are accepted (the JWCC
//! subset that Dokku's and VS Code's readers take). [`strip`] turns such text into plain
//! JSON of the same length and line numbers (each comment and trailing comma becomes
//! spaces, newlines are kept), so a later JSON error points at the user's own line.

/// What makes the text not JSON with comments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsoncError {
    #[error("a /* comment opened on line {line} is never closed with */")]
    UnclosedComment { line: usize },
}

/// Plain JSON from JSON with comments and trailing commas. Text inside strings is never
/// touched (`"http://x"` stays). Whether the rest is valid JSON is serde_json's to say.
pub fn strip(text: &str) -> Result<String, JsoncError> {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut line = 1;
    // Where the last comma outside strings was written, while only blanks and comments
    // followed it.
    let mut comma: Option<usize> = None;
    // The last byte outside comments and blanks: a comma after `{`, `[` or `,` is not a
    // trailing one and is left for serde_json to refuse.
    let mut last: u8 = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' => {
                comma = None;
                last = b'"';
                out.push(b);
                i += 1;
                while i < bytes.len() {
                    let s = bytes[i];
                    out.push(s);
                    i += 1;
                    match s {
                        b'\\' if i < bytes.len() => {
                            out.push(bytes[i]);
                            i += 1;
                        }
                        b'"' => break,
                        b'\n' => line += 1,
                        _ => {}
                    }
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    out.push(b' ');
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let opened = line;
                out.extend_from_slice(b"  ");
                i += 2;
                loop {
                    if i >= bytes.len() {
                        return Err(JsoncError::UnclosedComment { line: opened });
                    }
                    if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        out.extend_from_slice(b"  ");
                        i += 2;
                        break;
                    }
                    if bytes[i] == b'\n' {
                        line += 1;
                        out.push(b'\n');
                    } else {
                        out.push(b' ');
                    }
                    i += 1;
                }
            }
            b',' => {
                comma = (!matches!(last, b'{' | b'[' | b',' | 0)).then_some(out.len());
                last = b;
                out.push(b);
                i += 1;
            }
            b'}' | b']' => {
                if let Some(at) = comma.take() {
                    out[at] = b' ';
                }
                last = b;
                out.push(b);
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {
                if b == b'\n' {
                    line += 1;
                }
                out.push(b);
                i += 1;
            }
            _ => {
                comma = None;
                last = b;
                out.push(b);
                i += 1;
            }
        }
    }
    // Only ASCII bytes were replaced, each by ASCII, and strings were copied whole: the
    // result is as much UTF-8 as `text` was.
    Ok(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into()))
}

/// Parses JSON with comments into a value; the error says what and where.
pub fn parse(text: &str) -> Result<serde_json::Value, String> {
    let plain = strip(text).map_err(|e| e.to_string())?;
    serde_json::from_str(&plain).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comments_and_trailing_commas_are_accepted() {
        let text = r#"// app.json for my app
{
  /* the checks */
  "name": "demo", // trailing comment
  "url": "http://example.test/a//b", "glob": "/*not a comment*/",
  "list": [1, 2, 3,],
  "nested": {"a": {"b": 1,},   },
}
/* end */"#;
        assert_eq!(
            parse(text).unwrap(),
            json!({"name": "demo", "url": "http://example.test/a//b",
                   "glob": "/*not a comment*/", "list": [1, 2, 3],
                   "nested": {"a": {"b": 1}}})
        );
    }

    #[test]
    fn plain_json_is_unchanged_and_lines_are_kept() {
        let plain = "{\"a\": [1, {\"b\": \"x,]\\\"y\"}], \"c\": null}";
        assert_eq!(strip(plain).unwrap(), plain);
        let text = "{\n// one\n/* two\nthree */\n\"a\": 1 2\n}";
        assert_eq!(strip(text).unwrap().lines().count(), text.lines().count());
        let e = parse(text).unwrap_err();
        assert!(e.contains("line 5"), "the user's own line: {e}");
    }

    #[test]
    fn what_stays_invalid_is_refused() {
        assert_eq!(
            strip("{\n\"a\": 1 /* open\n}"),
            Err(JsoncError::UnclosedComment { line: 2 })
        );
        assert!(parse("{,}").is_err(), "a lone comma is not a trailing one");
        assert!(parse("[1,,]").is_err());
        assert!(parse("{\"a\": 1} trailing").is_err());
        assert!(parse("").is_err());
    }
}
