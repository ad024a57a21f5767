//! Store tests: each gets a fresh, migrated SQLite database in a temporary directory.

use std::collections::BTreeMap;

use super::*;

async fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("paas.db")).await.unwrap();
    (dir, store)
}

fn release(app: &str, version: u32, types: &[(&str, &str)]) -> ReleaseRow {
    ReleaseRow {
        app: app.into(),
        version,
        image: format!("apps/{app}@sha256:{}", "a".repeat(64)),
        source_version: Some("0123456789".into()),
        process_types: types
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        config: BTreeMap::from([("FOO".to_string(), "bar".to_string())]),
        description: format!("Deploy v{version}"),
        created_at: crate::util::now_rfc3339(),
    }
}

fn job(id: &str, app: &str, release: u32) -> JobRow {
    let now = crate::util::now_rfc3339();
    JobRow {
        id: id.into(),
        app: app.into(),
        release,
        process_type: "web".into(),
        node: "local".into(),
        state: job_state::PENDING.into(),
        addr: None,
        exit_reason: None,
        created_at: now.clone(),
        updated_at: now,
    }
}

#[tokio::test]
async fn apps_create_list_get_and_duplicates() {
    let (_dir, store) = fresh().await;
    assert!(store.list_apps().await.unwrap().is_empty());
    let a = store.create_app("hello").await.unwrap();
    assert_eq!(a.current_release, None);
    store.create_app("another").await.unwrap();
    let err = store.create_app("hello").await.unwrap_err();
    assert!(
        matches!(err, StoreError::AppExists(ref n) if n == "hello"),
        "{err}"
    );
    let names: Vec<_> = store
        .list_apps()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["another", "hello"]);
    assert_eq!(store.get_app("hello").await.unwrap().unwrap(), a);
    assert!(store.get_app("nope").await.unwrap().is_none());
    let (again, created) = store.ensure_app("hello").await.unwrap();
    assert!(!created);
    assert_eq!(again, a);
    let (_, created) = store.ensure_app("third").await.unwrap();
    assert!(created);
}

#[tokio::test]
async fn releases_number_up_and_set_current_and_default_web_formation() {
    let (_dir, store) = fresh().await;
    store.create_app("hello").await.unwrap();
    assert_eq!(store.next_release_version("hello").await.unwrap(), 1);
    let v1 = release("hello", 1, &[("web", "httpd"), ("worker", "sleep")]);
    store.create_release(&v1).await.unwrap();
    assert_eq!(store.next_release_version("hello").await.unwrap(), 2);
    assert_eq!(
        store
            .get_app("hello")
            .await
            .unwrap()
            .unwrap()
            .current_release,
        Some(1)
    );
    assert_eq!(store.get_release("hello", 1).await.unwrap().unwrap(), v1);
    let err = store.create_release(&v1).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ReleaseExists { version: 1, .. }),
        "{err}"
    );

    let formations = store.formations().await.unwrap();
    assert_eq!(
        formations,
        [FormationRow {
            app: "hello".into(),
            process_type: "web".into(),
            count: 1,
            release: Some(1)
        }]
    );
    // A scaled formation survives the next release.
    store.set_formation("hello", "web", 3).await.unwrap();
    store
        .create_release(&release("hello", 2, &[("web", "httpd")]))
        .await
        .unwrap();
    let formations = store.formations().await.unwrap();
    assert_eq!(formations[0].count, 3);
    assert_eq!(formations[0].release, Some(2));
    let versions: Vec<u32> = store
        .list_releases("hello")
        .await
        .unwrap()
        .iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, [2, 1]);
    let api = store
        .get_release("hello", 1)
        .await
        .unwrap()
        .unwrap()
        .to_api();
    assert_eq!(api.config_keys, ["FOO"]);
}

#[tokio::test]
async fn release_without_web_sets_no_formation() {
    let (_dir, store) = fresh().await;
    store.create_app("worker-only").await.unwrap();
    store
        .create_release(&release("worker-only", 1, &[("worker", "sleep 1")]))
        .await
        .unwrap();
    assert!(store.formations().await.unwrap().is_empty());
}

#[tokio::test]
async fn release_of_unknown_app_is_refused() {
    let (_dir, store) = fresh().await;
    let err = store
        .create_release(&release("ghost", 1, &[("web", "x")]))
        .await
        .unwrap_err();
    // The foreign key or the missing app row stops it; either way nothing is stored.
    assert!(
        matches!(err, StoreError::NoApp(_) | StoreError::Query { .. }),
        "{err}"
    );
    assert!(store.list_releases("ghost").await.unwrap().is_empty());
}

#[tokio::test]
async fn config_vars_set_replace_and_remove() {
    let (_dir, store) = fresh().await;
    store.create_app("hello").await.unwrap();
    store.set_config_var("hello", "B", Some("2")).await.unwrap();
    store.set_config_var("hello", "A", Some("1")).await.unwrap();
    store
        .set_config_var("hello", "A", Some("one"))
        .await
        .unwrap();
    let vars = store.config_vars("hello").await.unwrap();
    assert_eq!(
        vars,
        BTreeMap::from([("A".into(), "one".into()), ("B".into(), "2".into())])
    );
    store.set_config_var("hello", "B", None).await.unwrap();
    assert_eq!(store.config_vars("hello").await.unwrap().len(), 1);
    let err = store
        .set_config_var("ghost", "A", Some("1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NoApp(_)), "{err}");
}

#[tokio::test]
async fn builds_are_recorded_and_interrupted_ones_fail_on_restart() {
    let (dir, store) = fresh().await;
    store.create_app("hello").await.unwrap();
    let b = store
        .create_build("b1", "hello", Some("abc"))
        .await
        .unwrap();
    assert_eq!(b.status, "building");
    store.create_build("b2", "hello", None).await.unwrap();
    store
        .finish_build("b2", "succeeded", Some(1), "-----> ok\n")
        .await
        .unwrap();
    let done = store.get_build("b2").await.unwrap().unwrap();
    assert_eq!(done.status, "succeeded");
    assert_eq!(done.release, Some(1));
    assert!(done.finished_at.is_some());
    assert_eq!(store.list_builds("hello").await.unwrap().len(), 2);

    // A restart: the running build cannot finish any more.
    drop(store);
    let store = Store::open(&dir.path().join("paas.db")).await.unwrap();
    assert_eq!(store.fail_interrupted_builds().await.unwrap(), 1);
    let b1 = store.get_build("b1").await.unwrap().unwrap();
    assert_eq!(b1.status, "failed");
    assert!(b1.log.contains("restarted"), "{}", b1.log);
}

#[tokio::test]
async fn jobs_move_through_states_and_removed_ones_leave_the_active_list() {
    let (_dir, store) = fresh().await;
    store
        .insert_job(&job("hello-v1-aaaa", "hello", 1))
        .await
        .unwrap();
    store
        .insert_job(&job("hello-v2-bbbb", "hello", 2))
        .await
        .unwrap();
    assert!(store
        .insert_job(&job("hello-v1-aaaa", "hello", 1))
        .await
        .is_err());
    store
        .update_job("hello-v1-aaaa", job_state::UP, Some("10.0.0.2:5000"), None)
        .await
        .unwrap();
    let active = store.active_jobs().await.unwrap();
    assert_eq!(active.len(), 2);
    assert_eq!(active[0].addr.as_deref(), Some("10.0.0.2:5000"));
    store
        .update_job("hello-v2-bbbb", job_state::CRASHED, None, Some("exited 1"))
        .await
        .unwrap();
    // A later update without a reason keeps the reason.
    store
        .update_job("hello-v2-bbbb", job_state::REMOVED, None, None)
        .await
        .unwrap();
    let active = store.active_jobs().await.unwrap();
    assert_eq!(active.len(), 1);
    let v2 = store.release_jobs("hello", 2).await.unwrap();
    assert_eq!(v2[0].state, "removed");
    assert_eq!(v2[0].exit_reason.as_deref(), Some("exited 1"));
}

#[tokio::test]
async fn heartbeats_upsert_nodes() {
    let (_dir, store) = fresh().await;
    store
        .upsert_node("local", "http://127.0.0.1:1", 1024, 1000)
        .await
        .unwrap();
    store
        .upsert_node("local", "http://127.0.0.1:2", 2048, 2000)
        .await
        .unwrap();
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(
        nodes,
        [NodeRow {
            name: "local".into(),
            url: "http://127.0.0.1:2".into(),
            memory_bytes: 2048,
            last_seen_ms: 2000
        }]
    );
}
