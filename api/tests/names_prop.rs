//! Property tests for the name validators: they never panic, and accept exactly the
//! documented grammar (app names `[a-z][a-z0-9-]{0,28}[a-z0-9]`, config keys
//! `[A-Za-z_][A-Za-z0-9_]{0,254}`) for any input, including unicode, NUL and very long
//! strings. (proptest rather than cargo-fuzz: the validators are pure functions and
//! proptest runs on stable in the ordinary `cargo test`.)

use paas_api::names::{validate_app_name, validate_config_key};
use proptest::prelude::*;

/// The app-name grammar written independently of the validator, byte by byte.
fn app_name_spec(s: &str) -> bool {
    let b = s.as_bytes();
    (2..=30).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-'
}

fn config_key_spec(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=255).contains(&b.len())
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Strings that are often near the grammar: its alphabet plus the usual troublemakers.
fn nearly_valid() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            8 => proptest::char::range('a', 'z'),
            2 => proptest::char::range('0', '9'),
            2 => Just('-'),
            2 => Just('_'),
            1 => proptest::char::range('A', 'Z'),
            1 => prop::sample::select(vec!['\0', '.', '/', ' ', '\n', '=', 'é', 'ß', 'İ', '\u{212A}', '\u{FF41}', '🦀']),
        ],
        0..300,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// `PROPTEST_CASES` (tests/fuzz.sh raises it) or `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(1000)))]

    #[test]
    fn app_name_matches_grammar_on_any_string(s in any::<String>()) {
        prop_assert_eq!(validate_app_name(&s).is_ok(), app_name_spec(&s));
    }

    #[test]
    fn app_name_matches_grammar_near_the_grammar(s in nearly_valid()) {
        let r = validate_app_name(&s);
        prop_assert_eq!(r.is_ok(), app_name_spec(&s));
        if let Err(e) = r {
            // The message says what is wrong and shows an example of what is right.
            prop_assert!(e.starts_with("invalid app name"), "{}", e);
            prop_assert!(e.contains("for example"), "{}", e);
        }
    }

    #[test]
    fn valid_app_names_are_accepted(s in "[a-z][a-z0-9-]{0,28}[a-z0-9]") {
        prop_assert!(validate_app_name(&s).is_ok(), "{}", s);
    }

    #[test]
    fn config_key_matches_grammar_on_any_string(s in any::<String>()) {
        prop_assert_eq!(validate_config_key(&s).is_ok(), config_key_spec(&s));
    }

    #[test]
    fn config_key_matches_grammar_near_the_grammar(s in nearly_valid()) {
        let upper = s.to_ascii_uppercase();
        for s in [&s, &upper] {
            let r = validate_config_key(s);
            prop_assert_eq!(r.is_ok(), config_key_spec(s), "{:?}", s);
            if let Err(e) = r {
                prop_assert!(e.starts_with("invalid config key"), "{}", e);
            }
        }
    }

    #[test]
    fn valid_config_keys_are_accepted(s in "[A-Za-z_][A-Za-z0-9_]{0,254}") {
        prop_assert!(validate_config_key(&s).is_ok(), "{}", s);
    }
}

#[test]
fn very_long_and_nul_inputs_are_refused_with_a_message() {
    let long = "a".repeat(1 << 20);
    assert!(validate_app_name(&long).is_err());
    assert!(validate_config_key(&long).is_err());
    assert!(validate_config_key(&"A".repeat(255)).is_ok());
    assert!(validate_config_key(&"A".repeat(256)).is_err());
    for nul in ["ab\0", "\0ab", "A\0B"] {
        let e = validate_app_name(nul).unwrap_err();
        assert!(e.contains("\\0"), "the NUL is shown escaped: {e}");
        assert!(validate_config_key(nul).is_err());
    }
    // Unicode that lowercases/uppercases to ASCII is still refused.
    for tricky in ["\u{212A}ey", "\u{FF41}pp", "İd"] {
        assert!(validate_app_name(tricky).is_err(), "{tricky}");
        assert!(validate_config_key(tricky).is_err(), "{tricky}");
    }
}
