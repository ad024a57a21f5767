//! Store tests of listings: builds newest first, and pages of releases, builds, jobs and
//! apps cut by the database (after the members filter). Both backends, as in
//! [`super::tests`].

use super::tests::{fresh_on, job, release};
use super::*;

/// Runs one test body on SQLite (`<name>_sqlite`) and on PostgreSQL (`<name>_postgres`).
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

on_both!(builds_list_newest_first, builds_list_newest_first_on);
async fn builds_list_newest_first_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    store.create_app("hello").await.unwrap();
    // Within one second, and with ids that sort the other way round.
    for id in ["c", "b", "a"] {
        store.create_build(id, "hello", None).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let ids: Vec<String> = store
        .list_builds("hello")
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

on_both!(
    pages_of_releases_builds_and_jobs_are_cut_by_the_database,
    pages_of_releases_builds_and_jobs_are_cut_by_the_database_on
);
async fn pages_of_releases_builds_and_jobs_are_cut_by_the_database_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    store.create_app("ds4-a").await.unwrap();
    store.create_app("ds4-b").await.unwrap();
    for v in 1..=5 {
        store
            .create_release(&release("ds4-a", v, &[("web", "./web")]))
            .await
            .unwrap();
    }
    store
        .create_release(&release("ds4-b", 1, &[("web", "./web")]))
        .await
        .unwrap();
    let versions = |rows: Vec<ReleaseRow>| rows.iter().map(|r| r.version).collect::<Vec<_>>();
    let page = |after, limit| store.releases_page("ds4-a", after, limit);
    assert_eq!(versions(page(None, 2).await.unwrap()), [5, 4]);
    assert_eq!(versions(page(Some(4), 2).await.unwrap()), [3, 2]);
    assert_eq!(versions(page(Some(2), 2).await.unwrap()), [1]);
    assert_eq!(versions(page(Some(1), 2).await.unwrap()), Vec::<u32>::new());
    assert_eq!(versions(page(None, 100).await.unwrap()), [5, 4, 3, 2, 1]);
    // A key that names no release of the app: an empty page, not the rest of the list.
    assert!(page(Some(9), 2).await.unwrap().is_empty());
    assert_eq!(
        versions(store.releases_page("ds4-b", None, 5).await.unwrap()),
        [1]
    );

    // Builds: newest first by start time, then id (several may start in one millisecond).
    for id in ["b-1", "b-2", "b-3", "b-4", "b-5"] {
        store.create_build(id, "ds4-a", None).await.unwrap();
    }
    store.create_build("other", "ds4-b", None).await.unwrap();
    let ids = |rows: Vec<BuildRow>| rows.into_iter().map(|b| b.id).collect::<Vec<_>>();
    let all = ids(store.list_builds("ds4-a").await.unwrap());
    assert_eq!(all.len(), 5);
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let got = ids(store
            .builds_page("ds4-a", after.as_deref(), 2)
            .await
            .unwrap());
        if got.is_empty() {
            break;
        }
        assert!(got.len() <= 2);
        after = got.last().cloned();
        paged.extend(got);
    }
    assert_eq!(
        paged, all,
        "the pages add up to the whole list, in its order"
    );
    assert!(store
        .builds_page("ds4-a", Some("other"), 2)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .builds_page("ds4-a", Some("nope"), 2)
        .await
        .unwrap()
        .is_empty());

    // Jobs: not removed ones, by type then id; a removed job still marks its place.
    for (id, t) in [
        ("j-3", "web"),
        ("j-1", "web"),
        ("j-2", "worker"),
        ("j-0", "clock"),
    ] {
        store
            .insert_job(&JobRow {
                process_type: t.into(),
                ..job(id, "ds4-a", 1)
            })
            .await
            .unwrap();
    }
    store.insert_job(&job("j-9", "ds4-b", 1)).await.unwrap();
    let ids = |rows: Vec<JobRow>| rows.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.jobs_page("ds4-a", None, 10).await.unwrap()),
        ["j-0", "j-1", "j-3", "j-2"]
    );
    assert_eq!(
        ids(store.jobs_page("ds4-a", None, 2).await.unwrap()),
        ["j-0", "j-1"]
    );
    assert_eq!(
        ids(store.jobs_page("ds4-a", Some("j-1"), 2).await.unwrap()),
        ["j-3", "j-2"]
    );
    store
        .set_job_state("j-3", job_state::REMOVED, None)
        .await
        .unwrap();
    assert_eq!(
        ids(store.jobs_page("ds4-a", Some("j-1"), 2).await.unwrap()),
        ["j-2"]
    );
    assert_eq!(
        ids(store.jobs_page("ds4-a", Some("j-3"), 2).await.unwrap()),
        ["j-2"]
    );
    assert!(store
        .jobs_page("ds4-a", Some("j-9"), 2)
        .await
        .unwrap()
        .is_empty());
}

on_both!(
    pages_of_apps_are_cut_after_the_members_filter,
    pages_of_apps_are_cut_after_the_members_filter_on
);
async fn pages_of_apps_are_cut_after_the_members_filter_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    for name in ["ap4-e", "ap4-a", "ap4-d", "ap4-b", "ap4-c", "ap4-f"] {
        store.create_app(name).await.unwrap();
    }
    store
        .create_user("ap4-ann", role::MEMBER, None)
        .await
        .unwrap();
    for app in ["ap4-b", "ap4-d", "ap4-e", "ap4-f"] {
        store.add_collaborator(app, "ap4-ann").await.unwrap();
    }
    let names = |rows: Vec<AppRow>| rows.into_iter().map(|a| a.name).collect::<Vec<_>>();
    let page = |member, after, limit| store.apps_page(member, after, limit);
    // Admins: every app, by name.
    assert_eq!(
        names(page(None, None, 2).await.unwrap()),
        ["ap4-a", "ap4-b"]
    );
    assert_eq!(
        names(page(None, Some("ap4-b"), 3).await.unwrap()),
        ["ap4-c", "ap4-d", "ap4-e"]
    );
    assert_eq!(
        names(page(None, Some("ap4-e"), 3).await.unwrap()),
        ["ap4-f"]
    );
    assert!(page(None, Some("ap4-zz"), 3).await.unwrap().is_empty());
    // A member: full pages of their apps only (the filter comes before the limit).
    let ann = Some("ap4-ann");
    assert_eq!(names(page(ann, None, 2).await.unwrap()), ["ap4-b", "ap4-d"]);
    assert_eq!(
        names(page(ann, Some("ap4-d"), 2).await.unwrap()),
        ["ap4-e", "ap4-f"]
    );
    assert!(page(ann, Some("ap4-f"), 2).await.unwrap().is_empty());
    // A key that is not one of their apps gives an empty page (it tells them nothing).
    assert!(page(ann, Some("ap4-c"), 2).await.unwrap().is_empty());
    assert!(page(Some("nobody"), None, 10).await.unwrap().is_empty());
    // Walking the pages adds up to the whole list, in its order.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let got = names(store.apps_page(ann, after.as_deref(), 1).await.unwrap());
        if got.is_empty() {
            break;
        }
        after = got.last().cloned();
        seen.extend(got);
    }
    assert_eq!(seen, ["ap4-b", "ap4-d", "ap4-e", "ap4-f"]);
    let all = names(store.list_apps().await.unwrap());
    assert_eq!(names(page(None, None, 100).await.unwrap()), all);
}
