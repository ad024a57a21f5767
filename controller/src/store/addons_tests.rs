//! Add-on rows on both backends: insert with the owner's attachment, a taken name, attach
//! and detach, the attachments' app names (gone once the app is), delete; backups and their
//! daily schedules.

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

fn addon(name: &str, id: u32, app_id: u32) -> AddonRow {
    AddonRow {
        name: name.into(),
        id,
        service: "postgresql".into(),
        plan: "mini".into(),
        app_id,
        password: "p".into(),
        node: None,
        job_id: None,
        state: "creating".into(),
        addr: None,
        restarts: 0,
        last_exit: None,
        next_start_ms: 0,
        created_at: "2026-01-01T00:00:00Z".into(),
        data_bytes: None,
        data_measured_at: None,
    }
}

on_both!(addons_are_kept_with_their_attachments, lifecycle);
async fn lifecycle(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    let shop = store.create_app("shop").await.unwrap();
    let other = store.create_app("other").await.unwrap();
    let a = addon("postgresql-shop-1a2b", 7, shop.id);
    assert_eq!(
        store.insert_addon(&a, "DATABASE_URL").await.unwrap(),
        AddonInserted::Inserted
    );
    assert_eq!(
        store.insert_addon(&a, "DATABASE_URL").await.unwrap(),
        AddonInserted::Taken
    );
    assert_eq!(
        store
            .insert_addon(&addon("x", 7, shop.id), "X_URL")
            .await
            .unwrap(),
        AddonInserted::Taken,
        "the number is unique too"
    );
    assert_eq!(store.addon(&a.name).await.unwrap(), Some(a.clone()));
    assert!(store
        .attach_addon(&a.name, other.id, "ANALYTICS_URL")
        .await
        .unwrap());
    assert!(!store
        .attach_addon(&a.name, other.id, "ANALYTICS_URL")
        .await
        .unwrap());
    let t = store.addon_attachments(Some(&a.name)).await.unwrap();
    let names: Vec<_> = t.iter().map(|t| (t.app.clone(), t.var.clone())).collect();
    assert_eq!(
        names,
        [
            (Some("shop".to_string()), "DATABASE_URL".to_string()),
            (Some("other".to_string()), "ANALYTICS_URL".to_string())
        ]
    );
    let mut running = a.clone();
    running.node = Some("n1".into());
    running.job_id = Some("addon-7-abc".into());
    running.state = "available".into();
    running.addr = Some("10.0.0.2:5432".into());
    store.update_addon_run(&running).await.unwrap();
    assert_eq!(store.addons().await.unwrap(), [running.clone()]);

    // Its data's size: only its own node's measurement counts, and never an older one.
    let t1 = "2026-01-01T00:01:00Z";
    assert!(!store.record_addon_data(7, "n2", 1 << 40, t1).await.unwrap());
    assert!(store.record_addon_data(7, "n1", 8 << 20, t1).await.unwrap());
    assert!(!store
        .record_addon_data(7, "n1", 1, "2026-01-01T00:00:30Z")
        .await
        .unwrap());
    let measured = store.addon(&a.name).await.unwrap().unwrap();
    assert_eq!(
        (measured.data_bytes, measured.data_measured_at.as_deref()),
        (Some(8 << 20), Some(t1))
    );
    // The loop's writes leave it alone.
    store.update_addon_run(&running).await.unwrap();
    assert_eq!(
        store.addon(&a.name).await.unwrap().unwrap().data_bytes,
        Some(8 << 20)
    );

    store.delete_app("other").await.unwrap();
    let t = store.addon_attachments(None).await.unwrap();
    assert_eq!(t[1].app, None, "a destroyed app's attachment names no app");
    assert!(store.detach_addon(&a.name, other.id).await.unwrap());
    assert_eq!(
        store.app_name_by_id(shop.id).await.unwrap().as_deref(),
        Some("shop")
    );
    assert_eq!(store.app_name_by_id(other.id).await.unwrap(), None);
    store.delete_addon(&a.name).await.unwrap();
    assert!(store.addons().await.unwrap().is_empty());
    assert!(store.addon_attachments(None).await.unwrap().is_empty());
}

on_both!(backups_and_schedules_are_kept, backups_and_schedules);
async fn backups_and_schedules(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    let b = |id: &str, created: &str| BackupRow {
        id: id.into(),
        addon: "postgresql-shop-1a2b".into(),
        addon_id: 7,
        app_id: 1,
        size_bytes: 0,
        state: "running".into(),
        scheduled: true,
        error: None,
        created_at: created.into(),
        finished_at: None,
    };
    store
        .insert_backup(&b("b2", "2026-01-02T00:00:00Z"))
        .await
        .unwrap();
    store
        .insert_backup(&b("b1", "2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    store
        .finish_backup("b1", "failed", 0, Some("no space"), "2026-01-01T00:01:00Z")
        .await
        .unwrap();
    store
        .finish_backup("b2", "completed", 5 << 30, None, "2026-01-02T00:01:00Z")
        .await
        .unwrap();
    let all = store.backups_of("postgresql-shop-1a2b").await.unwrap();
    assert_eq!(
        all.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        ["b1", "b2"],
        "oldest first"
    );
    assert_eq!(all[0].error.as_deref(), Some("no space"));
    assert_eq!((all[1].size_bytes, all[1].scheduled), (5 << 30, true));
    assert_eq!(store.backup("b2").await.unwrap().unwrap(), all[1]);
    store.delete_backup("b1").await.unwrap();
    assert!(store.backup("b1").await.unwrap().is_none());

    let s = ScheduleRow {
        addon: "postgresql-shop-1a2b".into(),
        at_minute: 120,
        keep: 7,
        last_run_ms: 5,
    };
    store.set_backup_schedule(&s).await.unwrap();
    store
        .set_backup_schedule(&ScheduleRow {
            at_minute: 60,
            keep: 3,
            last_run_ms: 99,
            ..s.clone()
        })
        .await
        .unwrap();
    store.schedule_ran(&s.addon, 42).await.unwrap();
    let got = store.backup_schedules().await.unwrap();
    assert_eq!(
        (got.len(), got[0].at_minute, got[0].keep, got[0].last_run_ms),
        (1, 60, 3, 42),
        "a new time replaces the old one"
    );
    assert!(store.delete_backup_schedule(&s.addon).await.unwrap());
    assert!(!store.delete_backup_schedule(&s.addon).await.unwrap());
}
