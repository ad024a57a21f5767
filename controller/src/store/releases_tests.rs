//! Store tests of release writes (issue 16), on SQLite and PostgreSQL (see `tests`):
//! concurrent writers of one app get contiguous versions and never lose or half-apply a
//! change; a rollback replaces the config and makes its release in one go.

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

fn build(description: &str) -> NewRelease {
    NewRelease {
        image: format!("apps/a@sha256:{}", "b".repeat(64)),
        source_version: Some("0123456789".into()),
        process_types: BTreeMap::from([("web".to_string(), "serve".to_string())]),
        description: description.into(),
        config: None,
        pending: Some(Some("{\"path\":\"/up\"}".into())),
        app_json: Some("{\"cron\":[]}".into()),
    }
}

fn set(key: &str) -> BTreeMap<String, Option<String>> {
    BTreeMap::from([(key.to_string(), Some(format!("value of {key}")))])
}

on_both!(
    concurrent_config_changes_make_contiguous_releases,
    concurrent_config_changes_make_contiguous_releases_on
);
async fn concurrent_config_changes_make_contiguous_releases_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    store.create_app("a").await.unwrap();
    let (first, previous) = store
        .add_release("a", &build("Deploy 0123456"))
        .await
        .unwrap();
    assert_eq!((first.version, previous), (1, None));
    let store = Arc::new(store);
    let writers: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let key = format!("K{i}");
                let r = store
                    .change_config_and_release(
                        "a",
                        &set(&key),
                        paas_api::config_vars::check_change,
                        format!("Set {key}"),
                    )
                    .await;
                (key, r)
            })
        })
        .collect();
    let mut stored = Vec::new();
    for w in writers {
        let (key, result) = w.await.unwrap();
        match result {
            Ok(Ok(changed)) => {
                let release = changed.release.expect("the app has a release to copy");
                assert_eq!(release.config.get(&key), Some(&format!("value of {key}")));
                stored.push(key);
            }
            Ok(Err(refused)) => panic!("{key} refused: {refused}"),
            // The only other answer allowed: a clear "try again" (the API's 409).
            Err(e @ StoreError::Busy { .. }) => assert!(e.to_string().contains("try again")),
            Err(e) => panic!("{key}: {e}"),
        }
    }
    assert!(!stored.is_empty(), "no writer got through");
    let releases = store.list_releases("a").await.unwrap();
    let versions: Vec<u32> = releases.iter().rev().map(|r| r.version).collect();
    let want: Vec<u32> = (1..=stored.len() as u32 + 1).collect();
    assert_eq!(
        versions, want,
        "one release per change, numbered without a gap"
    );
    let newest = &releases[0];
    assert_eq!(
        store.get_app("a").await.unwrap().unwrap().current_release,
        Some(newest.version)
    );
    let vars = store.config_vars("a").await.unwrap();
    assert_eq!(
        vars, newest.config,
        "the stored config is the newest release's"
    );
    assert_eq!(
        vars.len(),
        stored.len(),
        "nothing of a refused change is stored"
    );
    for key in &stored {
        assert!(
            newest.config.contains_key(key),
            "{key} is missing from the newest release"
        );
    }
    // Each copy is pending and keeps the health check of the release it copies.
    let st = store
        .release_status("a", newest.version)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(st.status, release_status::PENDING);
    assert_eq!(st.healthcheck.as_deref(), Some("{\"path\":\"/up\"}"));
}

on_both!(
    builds_and_config_changes_interleave,
    builds_and_config_changes_interleave_on
);
/// A build's release takes the config as it is when the release is made, so a change
/// that lands while the build runs is in it; both kinds of writers share one numbering.
async fn builds_and_config_changes_interleave_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    store.create_app("a").await.unwrap();
    store
        .add_release("a", &build("Deploy first"))
        .await
        .unwrap();
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            s.change_config_and_release(
                "a",
                &set(&format!("C{i}")),
                paas_api::config_vars::check_change,
                "Set".into(),
            )
            .await
            .map(|r| r.is_ok())
        }));
        let s = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            s.add_release("a", &build(&format!("Deploy {i}")))
                .await
                .map(|_| true)
        }));
    }
    let mut made = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(true) => made += 1,
            Ok(false) => panic!("a config change was refused"),
            Err(StoreError::Busy { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let releases = store.list_releases("a").await.unwrap();
    assert_eq!(releases.len(), made + 1);
    assert_eq!(releases[0].version as usize, made + 1);
    assert_eq!(releases[0].config, store.config_vars("a").await.unwrap());
}

on_both!(rollback_is_one_write, rollback_is_one_write_on);
async fn rollback_is_one_write_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    store.create_app("a").await.unwrap();
    assert_eq!(store.rollback_release("a", None).await.unwrap(), None);
    store.add_release("a", &build("Deploy one")).await.unwrap();
    assert_eq!(
        store.rollback_release("a", None).await.unwrap(),
        None,
        "nothing earlier"
    );
    let check = paas_api::config_vars::check_change;
    store
        .change_config_and_release("a", &set("NEW"), check, "Set NEW".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.rollback_release("a", Some(9)).await.unwrap(), None);
    let back = store.rollback_release("a", None).await.unwrap().unwrap();
    assert_eq!(
        (back.version, back.description.as_str()),
        (3, "Rollback to v1")
    );
    assert!(back.config.is_empty());
    assert!(
        store.config_vars("a").await.unwrap().is_empty(),
        "config is v1's again"
    );
    let forward = store.rollback_release("a", Some(2)).await.unwrap().unwrap();
    assert_eq!(forward.version, 4);
    assert_eq!(store.config_vars("a").await.unwrap(), forward.config);
    assert!(forward.config.contains_key("NEW"));
    // Every copy keeps the build's app.json (its health check, formation, scripts, cron).
    for v in 1..=4 {
        assert_eq!(
            store.release_app_json("a", v).await.unwrap().as_deref(),
            Some("{\"cron\":[]}"),
            "v{v}"
        );
    }
}

on_both!(
    a_change_before_the_first_release_makes_none,
    first_change_on
);
async fn first_change_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    store.create_app("a").await.unwrap();
    let changed = store
        .change_config_and_release(
            "a",
            &set("A"),
            paas_api::config_vars::check_change,
            "".into(),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(changed.release.is_none());
    // The first build's release gets it.
    let (first, _) = store.add_release("a", &build("Deploy")).await.unwrap();
    assert_eq!(
        first.config.get("A").map(String::as_str),
        Some("value of A")
    );
    assert!(matches!(
        store.add_release("nope", &build("Deploy")).await,
        Err(StoreError::NoApp(_))
    ));
}

/// Contention reaches the API as 409 `conflict` saying to try again (never a 500), also
/// through the apps layer (config changes and rollbacks go through it).
#[tokio::test]
async fn contention_is_a_409_that_says_try_again() {
    use axum::response::IntoResponse;
    let busy = || StoreError::Busy { app: "a".into() };
    for e in [
        crate::api_error::ApiError::from(busy()),
        crate::api_error::ApiError::from(crate::apps::AppsError::from(busy())),
    ] {
        let resp = e.into_response();
        assert_eq!(resp.status(), http::StatusCode::CONFLICT);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("\"conflict\"") && text.contains("try again"),
            "{text}"
        );
    }
    let locked = sqlx::Error::PoolTimedOut;
    assert!(super::releases::is_contention(&locked));
}
