//! Parsing a registry's `WWW-Authenticate` challenge (RFC 7235 auth-params, as the
//! distribution spec's token flow and Docker Hub send them) and the token answer.

use std::collections::BTreeMap;

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm="…",service="…",scope="…"`: get a token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// `Basic realm="…"`: send the credentials on every request.
    Basic,
}

/// The challenges of one header value, in order; schemes other than Bearer and Basic are
/// skipped. A Bearer challenge without a realm is skipped too (there is nowhere to ask).
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        // The scheme: a token up to whitespace (or the end / a comma).
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ',')
            .unwrap_or(rest.len());
        let scheme = rest[..end].to_ascii_lowercase();
        rest = rest[end..].trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        let (params, after) = parse_params(rest);
        rest = after;
        match scheme.as_str() {
            "bearer" => {
                if let Some(realm) = params.get("realm").filter(|r| !r.is_empty()) {
                    out.push(Challenge::Bearer {
                        realm: realm.clone(),
                        service: params.get("service").cloned(),
                        scope: params.get("scope").cloned(),
                    });
                }
            }
            "basic" => out.push(Challenge::Basic),
            _ => {}
        }
    }
    out
}

/// Reads `key=value` / `key="quoted"` pairs separated by commas until something that is
/// not a pair (the next challenge's scheme). Returns the pairs (keys lower-cased) and the
/// rest.
fn parse_params(mut s: &str) -> (BTreeMap<String, String>, &str) {
    let mut params = BTreeMap::new();
    loop {
        s = s.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        let Some(eq) = s.find('=') else { break };
        let key = &s[..eq];
        if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == ',' || c == '"') {
            break;
        }
        let mut value = String::new();
        let mut after = &s[eq + 1..];
        if let Some(quoted) = after.strip_prefix('"') {
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => value.push(ch),
                }
            }
            after = &quoted[end.min(quoted.len())..];
        } else {
            let end = after
                .find(|c: char| c == ',' || c.is_whitespace())
                .unwrap_or(after.len());
            value.push_str(&after[..end]);
            after = &after[end..];
        }
        params.insert(key.to_ascii_lowercase(), value);
        s = after;
    }
    (params, s)
}

/// The token of a token endpoint's JSON answer (`token`, or OAuth's `access_token`).
pub fn token_of(body: &serde_json::Value) -> Option<String> {
    ["token", "access_token"]
        .iter()
        .filter_map(|k| body.get(k).and_then(|v| v.as_str()))
        .find(|t| !t.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_all_params_and_basic_after_it() {
        let h = r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/base:pull", Basic realm="x""#;
        assert_eq!(
            parse_challenges(h),
            vec![
                Challenge::Bearer {
                    realm: "https://auth.example.com/token".into(),
                    service: Some("registry.example.com".into()),
                    scope: Some("repository:team/base:pull".into()),
                },
                Challenge::Basic,
            ]
        );
    }

    #[test]
    fn scheme_case_spaces_escapes_and_unquoted_values() {
        let h = r#"BEARER  realm = "x" , service=svc,scope="a \"b\"""#;
        // `realm = "x"` (spaces around =) is not valid auth-param syntax: no realm, skipped.
        assert_eq!(parse_challenges(h), vec![]);
        let h = r#"bearer realm="http://h/t",service=svc,scope="a \"b\"""#;
        assert_eq!(
            parse_challenges(h),
            vec![Challenge::Bearer {
                realm: "http://h/t".into(),
                service: Some("svc".into()),
                scope: Some("a \"b\"".into()),
            }]
        );
    }

    #[test]
    fn basic_alone_unknown_schemes_and_bearer_without_realm() {
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            vec![Challenge::Basic]
        );
        assert_eq!(
            parse_challenges(r#"Negotiate abc, Basic realm="r""#),
            vec![Challenge::Basic]
        );
        assert_eq!(parse_challenges(r#"Bearer service="s""#), vec![]);
        assert_eq!(parse_challenges(""), vec![]);
    }

    #[test]
    fn tokens_from_either_field() {
        assert_eq!(
            token_of(&serde_json::json!({"token": "t1", "access_token": "t2"})).as_deref(),
            Some("t1")
        );
        assert_eq!(
            token_of(&serde_json::json!({"access_token": "t2"})).as_deref(),
            Some("t2")
        );
        assert_eq!(token_of(&serde_json::json!({"token": ""})), None);
    }
}
