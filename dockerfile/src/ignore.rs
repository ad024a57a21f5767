//! `.dockerignore` and COPY's source globs, with Docker's rules: one pattern a line, `#`
//! lines are comments, blank lines skipped, surrounding white space trimmed, a leading `/`
//! (or `./`) means the context root as no `/` does, paths are cleaned (`a//b/../c` is
//! `a/c`); `*` and `?` never cross `/`, `[a-z]`/`[^a-z]` classes, `\` escapes, a `**`
//! segment matches any number of directories; a pattern that matches a directory
//! excludes everything under it; `!pattern` takes matching paths back in, and the LAST
//! pattern that matches a path decides.

/// A bad pattern (an unclosed `[`), with its line in `.dockerignore`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    #[error(".dockerignore line {line}: `{pattern}` is not a valid pattern (an unclosed `[`)")]
    Pattern { line: usize, pattern: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    segments: Vec<String>,
    exception: bool,
}

/// The rules of one `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignore {
    rules: Vec<Rule>,
}

/// `a//b/./c/../d` → `a/b/d`, no leading `/` or `./`; `..` above the root is dropped.
pub fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

impl Ignore {
    /// Reads `.dockerignore` text.
    pub fn parse(text: &str) -> Result<Ignore, IgnoreError> {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(pattern);
            if cleaned.is_empty() {
                continue;
            }
            let segments: Vec<String> = cleaned.split('/').map(str::to_string).collect();
            for s in &segments {
                if !valid_segment(s) {
                    return Err(IgnoreError::Pattern {
                        line: i + 1,
                        pattern: pattern.to_string(),
                    });
                }
            }
            rules.push(Rule {
                segments,
                exception,
            });
        }
        Ok(Ignore { rules })
    }

    /// True when `path` (relative to the context root) is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let path = clean(path);
        let parts: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for rule in &self.rules {
            // The path or one of its parent directories matches.
            let hit = (1..=parts.len()).any(|n| match_path(&rule.segments, &parts[..n]));
            if hit {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    /// True when some `!` rule could take back a path under the excluded directory `dir`
    /// (so a walk must still look inside it).
    pub fn may_take_back_under(&self, dir: &str) -> bool {
        let dir = clean(dir);
        self.rules.iter().any(|r| {
            r.exception
                && (r.segments.iter().any(|s| s.contains("**"))
                    || r.segments.join("/").starts_with(&format!("{dir}/"))
                    || r.segments
                        .first()
                        .is_some_and(|s| s.contains(['*', '?', '['])))
        })
    }

    /// No rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn valid_segment(s: &str) -> bool {
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            '\\' => i += 2,
            '[' => match class_end(&b, i) {
                Some(end) => i = end + 1,
                None => return false,
            },
            _ => i += 1,
        }
    }
    true
}

/// Whether the pattern segments match the path segments exactly (`**` spans any number).
pub fn match_path(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_path(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((seg, more)) => glob_segment(first, seg) && match_path(rest, more),
            None => false,
        },
    }
}

/// True when `s` has glob characters (`*`, `?`, `[`).
pub fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn class_end(p: &[char], open: usize) -> Option<usize> {
    let mut j = open + 1;
    if matches!(p.get(j), Some('^') | Some('!')) {
        j += 1;
    }
    if p.get(j) == Some(&']') {
        j += 1;
    }
    while j < p.len() {
        if p[j] == '\\' {
            j += 2;
            continue;
        }
        if p[j] == ']' {
            return Some(j);
        }
        j += 1;
    }
    None
}

/// Go's `filepath.Match` for one segment: `*`, `?`, `[…]`, `\x`. (`**` inside a segment
/// acts as `*`.)
pub fn glob_segment(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, 0, &n, 0)
}

fn glob_at(p: &[char], mut pi: usize, n: &[char], mut ni: usize) -> bool {
    while pi < p.len() {
        match p[pi] {
            '*' => {
                while pi < p.len() && p[pi] == '*' {
                    pi += 1;
                }
                return (ni..=n.len()).any(|k| glob_at(p, pi, n, k));
            }
            '?' => {
                if ni >= n.len() {
                    return false;
                }
                pi += 1;
                ni += 1;
            }
            '[' => {
                let Some(end) = class_end(p, pi) else {
                    return false;
                };
                let Some(&c) = n.get(ni) else { return false };
                let mut j = pi + 1;
                let negate = matches!(p.get(j), Some('^') | Some('!'));
                if negate {
                    j += 1;
                }
                let mut hit = false;
                while j < end {
                    let mut lo = p[j];
                    if lo == '\\' && j + 1 < end {
                        j += 1;
                        lo = p[j];
                    }
                    let mut hi = lo;
                    if p.get(j + 1) == Some(&'-') && j + 2 < end {
                        hi = p[j + 2];
                        j += 2;
                    }
                    if lo <= c && c <= hi {
                        hit = true;
                    }
                    j += 1;
                }
                if hit == negate {
                    return false;
                }
                pi = end + 1;
                ni += 1;
            }
            '\\' if pi + 1 < p.len() => {
                if n.get(ni) != Some(&p[pi + 1]) {
                    return false;
                }
                pi += 2;
                ni += 1;
            }
            c => {
                if n.get(ni) != Some(&c) {
                    return false;
                }
                pi += 1;
                ni += 1;
            }
        }
    }
    ni == n.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_rules_with_exceptions_and_double_star() {
        let ig = Ignore::parse(
            "# comment\n\n node_modules \n/tmp/*\n*.log\n!keep.log\n**/*.pyc\ndocs\n!docs/README.md\n./build//out/../cache\n",
        )
        .unwrap();
        assert!(ig.excludes("node_modules"));
        assert!(ig.excludes("node_modules/x/y.js"));
        assert!(!ig.excludes("src/node_modules"), "patterns are rooted");
        assert!(ig.excludes("tmp/a"));
        assert!(ig.excludes("tmp/a/b"), "a parent matched");
        assert!(!ig.excludes("tmp"));
        assert!(ig.excludes("debug.log"));
        assert!(!ig.excludes("keep.log"));
        assert!(!ig.excludes("logs/debug.log"), "* does not cross /");
        assert!(ig.excludes("a.pyc"));
        assert!(ig.excludes("a/b/c.pyc"));
        assert!(ig.excludes("docs/guide.md"));
        assert!(!ig.excludes("docs/README.md"), "the last match decides");
        assert!(ig.excludes("build/cache/x"));
        assert!(!ig.excludes("build/out"));
        assert!(ig.may_take_back_under("docs"));
        assert!(!ig.may_take_back_under("node_modules"));
    }

    #[test]
    fn classes_question_marks_and_escapes() {
        assert!(glob_segment("file?.[ch]", "file1.c"));
        assert!(!glob_segment("file?.[ch]", "file12.c"));
        assert!(glob_segment("[^a-c]x", "dx"));
        assert!(!glob_segment("[^a-c]x", "bx"));
        assert!(glob_segment("\\*lit", "*lit"));
        assert!(!glob_segment("\\*lit", "alit"));
        assert!(glob_segment("*", ""));
        assert!(glob_segment("a*b*c", "aXbYbc"));
        assert!(Ignore::parse("ok\n[oops\n")
            .unwrap_err()
            .to_string()
            .contains("line 2"));
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean("/a//b/./c/../d/"), "a/b/d");
        assert_eq!(clean("../../x"), "x");
        assert_eq!(clean("."), "");
    }

    proptest::proptest! {
        #[test]
        fn a_literal_name_matches_itself_only(a in "[a-z0-9._-]{1,12}", b in "[a-z0-9._-]{1,12}") {
            proptest::prop_assert!(glob_segment(&a, &a));
            proptest::prop_assert_eq!(glob_segment(&a, &b), a == b);
        }
    }
}
