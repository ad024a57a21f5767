//! Store tests of issue 14's limits, on SQLite and PostgreSQL (see `tests`): config
//! changes checked in one transaction, one app at a time; release outcomes that never
//! undo a success.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::tests::fresh_on;
use super::*;

macro_rules! on_both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$body(super::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$body(super::Backend::Postgres).await;
            }
        }
    };
}

on_both!(
    config_changes_are_checked_one_at_a_time,
    config_changes_are_checked_one_at_a_time_on
);
async fn config_changes_are_checked_one_at_a_time_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    store.create_app("race").await.unwrap();
    let check = paas_api::config_vars::check_change;
    let set = |k: &str, v: &str| BTreeMap::from([(k.to_string(), Some(v.to_string()))]);
    let done = store
        .change_config("race", &set("A", "1"), check)
        .await
        .unwrap();
    assert_eq!(done.unwrap()["A"], "1");
    let refused = store
        .change_config("race", &set("N", "a\0b"), check)
        .await
        .unwrap();
    assert!(refused.is_err());
    assert_eq!(
        store.config_vars("race").await.unwrap().len(),
        1,
        "nothing stored"
    );
    let err = store.change_config("ghost", &set("A", "1"), check).await;
    assert!(matches!(err, Err(StoreError::NoApp(_))), "{err:?}");

    // Ten changes of 30 KB at once: two more fit next to A (64 KB in all), no third.
    let store = Arc::new(store);
    let value = "v".repeat(30 * 1024);
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (store, value) = (Arc::clone(&store), value.clone());
            tokio::spawn(async move {
                let change = BTreeMap::from([(format!("K{i}"), Some(value))]);
                store
                    .change_config("race", &change, check)
                    .await
                    .unwrap()
                    .is_ok()
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 2);
    let total = paas_api::config_vars::total_bytes(&store.config_vars("race").await.unwrap());
    assert!(total <= paas_api::config_vars::MAX_TOTAL_BYTES, "{total}");
}

fn release(version: u32) -> ReleaseRow {
    ReleaseRow {
        app: "st".into(),
        version,
        image: format!("apps/st@sha256:{}", "c".repeat(64)),
        source_version: None,
        process_types: BTreeMap::from([("web".to_string(), "serve".to_string())]),
        config: BTreeMap::new(),
        description: format!("Set A (v{version})"),
        created_at: crate::util::now_rfc3339(),
    }
}

on_both!(
    release_outcomes_never_undo_a_success,
    release_outcomes_never_undo_a_success_on
);
async fn release_outcomes_never_undo_a_success_on(backend: Backend) {
    use super::release_status::{FAILED, PENDING, SUCCEEDED};
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    store.create_app("st").await.unwrap();
    store
        .create_release_pending(&release(1), Some("{\"path\":\"/h\"}"))
        .await
        .unwrap();
    let st = store.release_status("st", 1).await.unwrap().unwrap();
    assert_eq!(
        (st.status.as_str(), st.healthcheck.as_deref()),
        (PENDING, Some("{\"path\":\"/h\"}"))
    );
    assert_eq!(
        store.get_app("st").await.unwrap().unwrap().current_release,
        Some(1)
    );
    // Failed, the same again (no change), then it served after all.
    assert!(store
        .settle_release_status("st", 1, FAILED, Some("crashed"))
        .await
        .unwrap());
    assert!(!store
        .settle_release_status("st", 1, FAILED, Some("crashed"))
        .await
        .unwrap());
    assert!(store
        .settle_release_status("st", 1, FAILED, Some("other"))
        .await
        .unwrap());
    assert!(store
        .settle_release_status("st", 1, SUCCEEDED, None)
        .await
        .unwrap());
    // A success stays: a later crash is the app's.
    assert!(!store
        .settle_release_status("st", 1, FAILED, Some("late"))
        .await
        .unwrap());
    let st = store.release_status("st", 1).await.unwrap().unwrap();
    assert_eq!((st.status.as_str(), st.reason), (SUCCEEDED, None));
    assert_eq!(st.healthcheck.as_deref(), Some("{\"path\":\"/h\"}"), "kept");
    // A release without a record gets one.
    store.create_release(&release(2)).await.unwrap();
    assert!(store.release_status("st", 2).await.unwrap().is_none());
    assert!(store
        .settle_release_status("st", 2, FAILED, Some("x"))
        .await
        .unwrap());
    assert_eq!(store.release_statuses("st").await.unwrap().len(), 2);
}
