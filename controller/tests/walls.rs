//! The controller's inner walls, read from its source (ARCHITECTURE.md, "Inside the
//! controller"): which file names which through `crate::…` and `super::…` paths, comments
//! included (a doc link is a dependency of the reader too).
//!
//! * No import circle spans more than one folder of `controller/src`.
//! * The ground the shared state stands on (`state.rs`'s imports) never names `state.rs`
//!   back, nor anything that does.
//!
//! The graph is read from text, not from the compiler: an edge is a path that resolves to a
//! module file by its longest prefix. Test-only files and `#[cfg(test)] mod … { … }` blocks
//! are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every non-test `.rs` file under `dir`, relative to `root`.
fn files(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("reading controller/src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files(root, &path, out);
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let name = path.file_name().unwrap().to_string_lossy();
        if !name.ends_with(".rs") || name.contains("test") {
            continue;
        }
        out.insert(
            rel,
            std::fs::read_to_string(&path).expect("reading a source file"),
        );
    }
}

/// The module path of a file: `scheduler/plan.rs` → [scheduler, plan]; `mod.rs` is its folder.
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The text without `#[cfg(test)] mod name { … }` blocks.
fn without_test_blocks(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        let after = &rest[at + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        let inline = (trimmed.starts_with("mod ") || trimmed.starts_with("pub mod "))
            && trimmed
                .find('{')
                .is_some_and(|b| trimmed.find(';').is_none_or(|s| b < s));
        out.push_str(&rest[..at]);
        if !inline {
            out.push_str("#[cfg(test)]");
            rest = after;
            continue;
        }
        let open = rest.len() - trimmed.len() + trimmed.find('{').unwrap();
        let mut depth = 0usize;
        let mut end = rest.len();
        for (i, ch) in rest[open..].char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Every `crate::a::b…` and `super::a…` path in `text`, as module segments from the
/// crate root; `use crate::{a, b::c}` groups are expanded.
fn paths(text: &str, me: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let base: Vec<String> = if start == "crate::" {
                Vec::new()
            } else {
                me[..me.len().saturating_sub(1)].to_vec()
            };
            let tail = &text[from..];
            if tail.starts_with('{') {
                let mut depth = 0;
                let mut end = tail.len();
                for (j, ch) in tail.char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = j;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                expand(&tail[1..end], &base, &mut found);
            } else {
                found.push(base.into_iter().chain(segments(tail)).collect());
            }
        }
    }
    found
}

/// The identifier segments at the start of `s` (`a::b::C` → [a, b, C]).
fn segments(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        let n = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if n == 0 {
            break;
        }
        out.push(rest[..n].to_string());
        rest = &rest[n..];
        match rest.strip_prefix("::") {
            Some(r) if !r.starts_with('{') => rest = r,
            _ => break,
        }
    }
    out
}

/// The members of a `{…}` use group, each prefixed with `base`.
fn expand(group: &str, base: &[String], out: &mut Vec<Vec<String>>) {
    let mut depth = 0;
    let mut item = String::new();
    let mut items = Vec::new();
    for ch in group.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(ch);
    }
    items.push(item);
    for item in items {
        let item = item.trim();
        if item.is_empty() || item == "self" {
            continue;
        }
        let mut prefix = base.to_vec();
        prefix.extend(segments(item));
        match item.find("::{") {
            Some(b) => expand(&item[b + 3..item.len() - 1], &prefix, out),
            None => out.push(prefix),
        }
    }
}

struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
}

fn graph() -> Graph {
    let root = src();
    let mut texts = BTreeMap::new();
    files(&root, &root, &mut texts);
    let modules: BTreeMap<Vec<String>, String> = texts
        .keys()
        .map(|rel| (module_of(rel), rel.clone()))
        .collect();
    let mut edges = BTreeMap::new();
    for (rel, text) in &texts {
        let me = module_of(rel);
        let text = without_test_blocks(text);
        let mut to = BTreeSet::new();
        for path in paths(&text, &me) {
            let target = (1..=path.len()).rev().find_map(|n| modules.get(&path[..n]));
            if let Some(t) = target {
                if t != rel && t != "lib.rs" {
                    to.insert(t.clone());
                }
            }
        }
        edges.insert(rel.clone(), to);
    }
    Graph { edges }
}

impl Graph {
    /// Strongly connected groups of more than one file (Tarjan).
    fn circles(&self) -> Vec<Vec<String>> {
        struct T<'a> {
            g: &'a Graph,
            index: BTreeMap<&'a str, usize>,
            low: BTreeMap<&'a str, usize>,
            stack: Vec<&'a str>,
            on: BTreeSet<&'a str>,
            out: Vec<Vec<String>>,
        }
        fn visit<'a>(t: &mut T<'a>, v: &'a str) {
            let n = t.index.len();
            t.index.insert(v, n);
            t.low.insert(v, n);
            t.stack.push(v);
            t.on.insert(v);
            let g = t.g;
            for w in &g.edges[v] {
                let w = w.as_str();
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let lw = t.low[w];
                    let lv = t.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if t.on.contains(w) {
                    let iw = t.index[w];
                    let lv = t.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if t.low[v] == t.index[v] {
                let mut comp = Vec::new();
                loop {
                    let w = t.stack.pop().unwrap();
                    t.on.remove(w);
                    comp.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    t.out.push(comp);
                }
            }
        }
        let mut t = T {
            g: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on: BTreeSet::new(),
            out: Vec::new(),
        };
        for v in self.edges.keys() {
            if !t.index.contains_key(v.as_str()) {
                visit(&mut t, v);
            }
        }
        t.out
    }

    /// Every file `from` reaches.
    fn reach(&self, from: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(f) = todo.pop() {
            for t in self.edges.get(&f).into_iter().flatten() {
                if seen.insert(t.clone()) {
                    todo.push(t.clone());
                }
            }
        }
        seen
    }
}

fn folder(rel: &str) -> &str {
    rel.rsplit_once('/').map_or(".", |(d, _)| d)
}

#[test]
fn no_import_circle_spans_two_folders() {
    let g = graph();
    assert!(
        g.edges.len() > 100,
        "the graph read too few files: {}",
        g.edges.len()
    );
    let wide: Vec<String> = g
        .circles()
        .into_iter()
        .filter(|c| c.iter().map(|f| folder(f)).collect::<BTreeSet<_>>().len() > 1)
        .map(|c| {
            let inside: BTreeSet<&String> = c.iter().collect();
            c.iter()
                .map(|f| {
                    let to: Vec<&String> =
                        g.edges[f].iter().filter(|t| inside.contains(t)).collect();
                    format!("  {f} -> {to:?}")
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    assert!(
        wide.is_empty(),
        "import circles across folders of controller/src (take the narrow part that is \
         needed, or move the shared piece down):\n{}",
        wide.join("\n\n")
    );
}

#[test]
fn the_ground_under_the_shared_state_never_reaches_it() {
    let g = graph();
    let ground = &g.edges["state.rs"];
    for expected in [
        "store/mod.rs",
        "config.rs",
        "scheduler/handle.rs",
        "auth/tokens.rs",
    ] {
        assert!(
            ground.contains(expected),
            "state.rs no longer names {expected}: {ground:?}"
        );
    }
    for f in ground {
        let reach = g.reach(f);
        assert!(
            !reach.contains("state.rs"),
            "{f} (which state.rs stands on) reaches state.rs back: it must take the narrow \
             values it needs, not the Controller"
        );
    }
}

#[test]
fn the_reader_sees_groups_tests_and_doc_links() {
    let me = module_of("scheduler/jobs.rs");
    let text = "use crate::{a::{b, c::D}, e};\n/// see [`super::runner`]\n\
                #[cfg(test)]\nmod tests {\n    use crate::zz;\n}\n";
    let found = paths(&without_test_blocks(text), &me);
    let want: Vec<Vec<String>> = [
        vec!["a", "b"],
        vec!["a", "c", "D"],
        vec!["e"],
        vec!["scheduler", "runner"],
    ]
    .iter()
    .map(|v| v.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(found, want);
}
