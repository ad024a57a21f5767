//! The output of running builds, readable while they run (`GET …/builds/{id}/log?follow=true`).
//! The store keeps a build's log only once it ends; until then its lines are here, by
//! build id. Process-wide (build ids are random, so controllers in one test process do not
//! collide).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

static LIVE: LazyLock<Mutex<HashMap<String, String>>> = LazyLock::new(Default::default);

fn live() -> std::sync::MutexGuard<'static, HashMap<String, String>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts keeping the output of build `id`.
pub fn begin(id: &str) {
    live().insert(id.to_string(), String::new());
}

/// Appends text to a running build's output.
pub fn append(id: &str, text: &str) {
    if let Some(log) = live().get_mut(id) {
        log.push_str(text);
    }
}

/// Forgets build `id` (its log is in the store now).
pub fn end(id: &str) {
    live().remove(id);
}

/// The output of build `id` from byte `from` on, or None when it is not running.
pub fn read(id: &str, from: usize) -> Option<String> {
    live()
        .get(id)
        .map(|log| log.get(from..).unwrap_or_default().to_string())
}
