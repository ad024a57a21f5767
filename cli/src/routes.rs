//! Every (method, path) of the controller's API this CLI calls, in the OpenAPI document's
//! spelling. Two tests hold it to the code: the CLI's own (every `/v1/…` path its source
//! names is here, with the method of the client call that sends it) and the controller's
//! OpenAPI drift test (`controller/src/http/openapi_tests.rs` includes `routes_list.rs`:
//! every pair is documented and mounted). The list is plain data in its own file, with no
//! imports, so the controller can `include!` it.

include!("routes_list.rs");

#[cfg(test)]
mod tests {
    use super::ROUTES;
    use std::collections::BTreeSet;

    /// `/v1/apps/{app}?x=1` → `/v1/apps/{}`: placeholders and queries do not matter.
    fn normal(path: &str) -> String {
        let path = path.split('?').next().unwrap_or(path);
        let mut out = String::new();
        let mut in_brace = false;
        for ch in path.chars() {
            match ch {
                '{' => {
                    in_brace = true;
                    out.push_str("{}");
                }
                '}' => in_brace = false,
                _ if !in_brace => out.push(ch),
                _ => {}
            }
        }
        out
    }

    /// The method of the client call whose first argument starts at `prefix`'s end, if
    /// the literal is that argument (`client.get(&format!("/v1/…` or `.delete("/v1/…`).
    fn method_before(prefix: &str) -> Option<&'static str> {
        let p = prefix.trim_end();
        let p = p.strip_suffix("format!(").unwrap_or(p).trim_end();
        let p = p.strip_suffix('&').unwrap_or(p).trim_end();
        let p = p.strip_suffix('(')?;
        let name: String = p
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        match name.as_str() {
            "get" | "get_stream" | "download" => Some("GET"),
            "post" => Some("POST"),
            "put" => Some("PUT"),
            "patch" | "patch_if_match" => Some("PATCH"),
            "delete" => Some("DELETE"),
            _ => None,
        }
    }

    /// Every `/v1/…` in a string literal of the CLI's source (comments skipped), with the
    /// method when the literal is a client call's path.
    fn used() -> Vec<(Option<&'static str>, String, String)> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut files = vec![std::path::PathBuf::from(root)];
        let mut found = Vec::new();
        while let Some(path) = files.pop() {
            if path.is_dir() {
                for e in std::fs::read_dir(&path).unwrap() {
                    files.push(e.unwrap().path());
                }
                continue;
            }
            let name = path.display().to_string();
            if !name.ends_with(".rs")
                || name.ends_with("routes.rs")
                || name.ends_with("routes_list.rs")
            {
                continue;
            }
            let src = std::fs::read_to_string(&path).unwrap();
            let code: String = src
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for (at, _) in code.match_indices("/v1/") {
                // Inside a literal: the quote before it on the same line.
                let line_start = code[..at].rfind('\n').map_or(0, |i| i + 1);
                let Some(quote) = code[line_start..at].rfind('"') else {
                    continue;
                };
                let quote = line_start + quote;
                let end = code[at..].find('"').map_or(code.len(), |i| at + i);
                let literal = &code[quote + 1..end];
                // `{url}/v1/…`: the part from /v1.
                let path = &literal[literal.find("/v1/").unwrap()..];
                // The one-line path literals only (not prose in messages).
                if path.contains(' ') {
                    continue;
                }
                let method = if quote == at - (literal.find("/v1/").unwrap() + 1) {
                    method_before(&code[..quote])
                } else {
                    None
                };
                found.push((method, normal(path), name.clone()));
            }
        }
        found
    }

    #[test]
    fn every_path_the_cli_sends_is_listed_with_its_method() {
        let listed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), normal(p)))
            .collect();
        let paths: BTreeSet<String> = listed.iter().map(|(_, p)| p.clone()).collect();
        let used = used();
        assert!(used.len() > 30, "the scanner found too few paths: {used:?}");
        let with_method = used.iter().filter(|(m, _, _)| m.is_some()).count();
        assert!(with_method > 25, "too few client calls read: {used:?}");
        for (method, path, file) in &used {
            assert!(
                paths.contains(path),
                "{file} sends {path}, which cli/src/routes.rs does not list"
            );
            if let Some(m) = method {
                assert!(
                    listed.contains(&(m.to_string(), path.clone())),
                    "{file} sends {m} {path}, which cli/src/routes.rs does not list"
                );
            }
        }
        // Nothing listed that the CLI no longer sends.
        let sent: BTreeSet<&String> = used.iter().map(|(_, p, _)| p).collect();
        for (m, p) in &listed {
            assert!(
                sent.contains(p),
                "routes.rs lists {m} {p}, which no command sends"
            );
        }
    }

    #[test]
    fn the_scanner_reads_methods_and_normalizes_paths() {
        assert_eq!(
            normal("/v1/apps/{app}/builds?limit={n}"),
            "/v1/apps/{}/builds"
        );
        assert_eq!(method_before("    client.get(&format!("), Some("GET"));
        assert_eq!(
            method_before("x.patch_if_match(\n   &format!("),
            Some("PATCH")
        );
        assert_eq!(method_before("ctx.client()?.delete("), Some("DELETE"));
        assert_eq!(method_before("let path = format!("), None);
    }
}
