//! Hostile app.json and cron schedules (tests/fuzz.sh target `appjson`): the JSONC reader
//! never panics, keeps the text's length and lines, leaves plain JSON as it is and makes
//! commented JSON read as the JSON without its comments; app.json's parser never panics;
//! the cron parser never panics and every next run it finds is after the time asked,
//! on a whole minute and matched again from one second before it.

use paas_controller::builder::{app_json, jsonc};
use paas_controller::cron::Schedule;
use proptest::prelude::*;
use serde_json::Value;

fn json_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("//".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just("\n".to_string()),
        Just(" ".to_string()),
        Just("\"formation\"".to_string()),
        Just("\"cron\"".to_string()),
        Just("\"env\"".to_string()),
        Just("\"scripts\"".to_string()),
        Just("1".to_string()),
        Just("é🦀".to_string()),
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

/// Any JSON value, to be written out with comments and trailing commas.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        "[a-z/*,\\]}\" ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z/*]{0,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `v` as text with a comment between every token and a trailing comma in every
/// non-empty list and object.
fn commented(v: &Value) -> String {
    match v {
        Value::Array(items) if !items.is_empty() => {
            let inner: Vec<String> = items.iter().map(commented).collect();
            format!("[ /* a */ {}, // b\n]", inner.join(" ,// c\n"))
        }
        Value::Object(map) if !map.is_empty() => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} /*k*/ : {}", Value::String(k.clone()), commented(v)))
                .collect();
            format!("{{ // o\n{},\n}}", inner.join(", /* , */ "))
        }
        other => other.to_string(),
    }
}

fn schedule_like() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("*".to_string()),
        Just("*/5".to_string()),
        "[0-9]{1,2}",
        "[0-9]{1,2}-[0-9]{1,2}",
        "[0-9]{1,2}-[0-9]{1,2}/[0-9]{1,2}",
        "[0-9]{1,2},[0-9]{1,2}",
        Just("mon-fri".to_string()),
        Just("jan".to_string()),
        any::<String>(),
    ];
    prop_oneof![
        proptest::collection::vec(field, 4..7).prop_map(|v| v.join(" ")),
        Just("@daily".to_string()),
        any::<String>(),
    ]
}

proptest! {
    #[test]
    fn jsonc_never_panics_and_keeps_lines(text in json_like()) {
        if let Ok(plain) = jsonc::strip(&text) {
            prop_assert_eq!(plain.len(), text.len());
            prop_assert_eq!(plain.matches('\n').count(), text.matches('\n').count());
        }
        let _ = app_json::parse(&text);
    }

    #[test]
    fn commented_json_reads_as_the_json(v in value()) {
        let plain = v.to_string();
        prop_assert_eq!(jsonc::strip(&plain).unwrap(), plain.clone());
        let text = commented(&v);
        prop_assert_eq!(jsonc::parse(&text), Ok(v), "{}", text);
    }

    #[test]
    fn cron_next_runs_are_later_whole_minutes_that_match(
        text in schedule_like(),
        now in 0i64..4_102_444_800,
    ) {
        if let Ok(s) = Schedule::parse(&text) {
            if let Some(next) = s.next_after(now) {
                prop_assert!(next > now);
                prop_assert_eq!(next % 60, 0);
                prop_assert_eq!(s.next_after(next - 1), Some(next));
            }
        }
    }
}
