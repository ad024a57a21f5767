//! Names are not inheritance, in the store: a destroyed app's job rows (and the output they
//! keep) never show under a new app of the same name, and a rename points the releases at
//! the moved registry repository. Both backends.

use std::collections::BTreeMap;

use super::tests::fresh_on;
use super::*;

macro_rules! on_both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$body(super::Backend::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$body(super::Backend::Postgres).await;
            }
        }
    };
}

fn digest() -> String {
    format!("sha256:{}", "b".repeat(64))
}

fn release(app: &str, version: u32, image: String) -> ReleaseRow {
    ReleaseRow {
        app: app.into(),
        version,
        image,
        source_version: None,
        process_types: BTreeMap::from([("web".to_string(), "run".to_string())]),
        config: BTreeMap::new(),
        description: "test".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
    }
}

fn job(id: &str, app: &str, state: &str) -> JobRow {
    JobRow {
        id: id.into(),
        app: app.into(),
        release: 1,
        process_type: "web".into(),
        node: "n1".into(),
        state: state.into(),
        addr: Some("127.0.0.1:1".into()),
        exit_reason: None,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    }
}

on_both!(
    a_destroyed_apps_jobs_never_show_under_its_name,
    destroyed_jobs
);
async fn destroyed_jobs(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    let old = store.create_app("vic").await.unwrap();
    store.insert_job(&job("vic-up", "vic", "up")).await.unwrap();
    store
        .insert_job(&job("vic-gone", "vic", "removed"))
        .await
        .unwrap();
    store
        .set_job_log("vic-gone", "NPM_TOKEN=secret")
        .await
        .unwrap();
    assert_eq!(store.removed_job_logs("vic", 10).await.unwrap().len(), 1);

    store.delete_app("vic").await.unwrap();
    assert!(matches!(
        store.delete_app("vic").await,
        Err(StoreError::NoApp(_))
    ));
    let new = store.create_app("vic").await.unwrap();
    assert_ne!(new.id, old.id, "a number is never given twice");

    // The running job is still there for the scheduler to stop, under a name no app has.
    let active = store.active_jobs().await.unwrap();
    let up = active.iter().find(|j| j.id == "vic-up").unwrap();
    assert_eq!(up.app, destroyed_name("vic", old.id));
    assert!(active.iter().all(|j| j.app != "vic"));
    assert!(store.removed_job_logs("vic", 10).await.unwrap().is_empty());
    assert!(store.job_restarts("vic").await.unwrap().is_empty());
}

on_both!(
    a_rename_points_the_releases_at_the_moved_repository,
    renamed_images
);
async fn renamed_images(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    store.create_app("vic").await.unwrap();
    let d = digest();
    store
        .create_release(&release("vic", 1, format!("apps/vic@{d}")))
        .await
        .unwrap();
    store
        .create_release(&release("vic", 2, format!("stacks/tiny@{d}")))
        .await
        .unwrap();
    store.create_app("victor").await.unwrap();
    store
        .create_release(&release("victor", 1, format!("apps/victor@{d}")))
        .await
        .unwrap();

    store.rename_app("vic", "vic2").await.unwrap();
    let images: Vec<String> = store
        .list_releases("vic2")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.image)
        .collect();
    assert!(images.contains(&format!("apps/vic2@{d}")), "{images:?}");
    assert!(images.contains(&format!("stacks/tiny@{d}")), "{images:?}");
    let victor = store.get_release("victor", 1).await.unwrap().unwrap();
    assert_eq!(victor.image, format!("apps/victor@{d}"));
    assert!(store.list_releases("vic").await.unwrap().is_empty());
}

/// Volumes (migration 0024): a rename keeps them (same number, so the same volume on the
/// node), a destroy drops them, and a new app of the name starts with none.
async fn volumes_follow_the_app_not_the_name(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    let app = store.create_app("shop").await.unwrap();
    assert!(store
        .add_volume("shop", "data", app.id, 1 << 30, "n1")
        .await
        .unwrap());
    assert!(!store
        .add_volume("shop", "data", app.id, 1 << 30, "n1")
        .await
        .unwrap());
    assert!(store
        .set_volume_mount("shop", "data", Some(("web", "/data")))
        .await
        .unwrap());
    store.rename_app("shop", "store").await.unwrap();
    assert!(store.volumes(Some("shop")).await.unwrap().is_empty());
    let moved = store.volume("store", "data").await.unwrap().unwrap();
    assert_eq!(moved.agent_name(), format!("app-{}-data", app.id));
    assert_eq!(moved.mount, Some(("web".into(), "/data".into())));
    store.delete_app("store").await.unwrap();
    assert!(store.volumes(None).await.unwrap().is_empty());
    let again = store.create_app("store").await.unwrap();
    assert_ne!(again.id, app.id);
    assert!(store.volumes(Some("store")).await.unwrap().is_empty());
}
on_both!(
    volumes_move_with_a_rename,
    volumes_follow_the_app_not_the_name
);
