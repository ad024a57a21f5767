//! Hostile Procfiles and buildpack release output: the parsers never panic on any input,
//! every error names a line that exists and says what is wrong, and whatever they accept
//! is a valid process type name with a non-empty command.

use paas_controller::builder::procfile::{parse_procfile, parse_release_yml, ProcfileError};
use proptest::prelude::*;

fn valid_type_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 63
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Text made of Procfile/YAML-ish pieces and hostile characters, so that random input
/// reaches the interesting branches instead of failing on the first line.
fn procfile_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("web".to_string()),
        Just("worker".to_string()),
        Just(": ".to_string()),
        Just(":".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("  ".to_string()),
        Just("\t".to_string()),
        Just("#".to_string()),
        Just("default_process_types:".to_string()),
        Just("{}".to_string()),
        Just("---".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("\0".to_string()),
        Just("é".to_string()),
        Just("🦀".to_string()),
        "[a-z ./$-]{0,12}",
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn check(text: &str, result: Result<std::collections::BTreeMap<String, String>, ProcfileError>) {
    let lines = text.lines().count();
    match result {
        Ok(types) => {
            for (name, command) in &types {
                assert!(
                    valid_type_name(name),
                    "accepted bad name {name:?} from {text:?}"
                );
                assert!(
                    !command.trim().is_empty(),
                    "accepted empty command from {text:?}"
                );
            }
        }
        Err(ProcfileError::Procfile { line, why }) | Err(ProcfileError::Release { line, why }) => {
            assert!(
                line >= 1 && line <= lines,
                "line {line} of {lines} in {text:?}"
            );
            assert!(!why.is_empty());
        }
    }
}

/// `PROPTEST_CASES` (tests/fuzz.sh raises it) or `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(500)))]

    #[test]
    fn procfile_never_panics(text in procfile_like()) {
        check(&text, parse_procfile(&text));
    }

    #[test]
    fn release_yml_never_panics(text in procfile_like()) {
        check(&text, parse_release_yml(&text));
    }

    #[test]
    fn procfile_any_string(text in any::<String>()) {
        check(&text, parse_procfile(&text));
        check(&text, parse_release_yml(&text));
    }

    #[test]
    fn procfile_roundtrips_valid_lines(
        entries in proptest::collection::btree_map("[a-z][a-z0-9_-]{0,20}", "[a-z./$][a-z0-9 ./$:-]{0,40}", 1..8)
    ) {
        let text: String = entries.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        let parsed = parse_procfile(&text).unwrap();
        let want: std::collections::BTreeMap<_, _> =
            entries.iter().map(|(k, v)| (k.clone(), v.trim().to_string())).collect();
        prop_assert_eq!(parsed, want);
    }
}

#[test]
fn hostile_procfile_lines_are_refused_with_the_line_number() {
    for (text, line, words) in [
        ("web: ok\n../../etc/passwd: x\n", 2, "not a valid name"),
        ("web: ok\nwéb: x\n", 2, "not a valid name"),
        (&format!("{}: x\n", "a".repeat(64)), 1, "not a valid name"),
        ("web\0: x\n", 1, "not a valid name"),
        (": x\n", 1, "not a valid name"),
        ("web: \n", 1, "no command"),
        ("\u{feff}web: x\n", 1, "not a valid name"),
        ("web: ok\nworker: run\0 --evil\n", 2, "control character"),
    ] {
        let e = parse_procfile(text).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("Procfile line {line}:")) && msg.contains(words),
            "{text:?}: {msg}"
        );
    }
    // A huge Procfile is parsed (or refused) without trouble.
    let huge = "web: x\n".to_string() + &"# comment\n".repeat(200_000) + "bad line\n";
    let e = parse_procfile(&huge).unwrap_err().to_string();
    assert!(e.starts_with("Procfile line 200002:"), "{e}");
}
