//! Store tests, each run twice: on a fresh, migrated SQLite database in a temporary
//! directory (`…_sqlite`) and on a fresh database of a throwaway PostgreSQL server
//! (`…_postgres`, see [`super::test_pg`]; skipped without PostgreSQL unless `CI=true`).

use std::collections::BTreeMap;

use super::*;

/// Where a test's database lives; dropping it removes the database.
pub(crate) enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(super::test_pg::PgDb),
}

impl Place {
    /// Opens (again) the store of this place.
    pub(crate) async fn open(&self) -> Store {
        match self {
            Place::Sqlite(dir) => Store::open(&dir.path().join("paas.db")).await.unwrap(),
            Place::Postgres(db) => Store::connect(&db.url).await.unwrap(),
        }
    }
}

/// A fresh store on `backend`; None when PostgreSQL is not available (the test skips).
pub(crate) async fn fresh_on(backend: Backend) -> Option<(Place, Store)> {
    let place = match backend {
        Backend::Sqlite => Place::Sqlite(tempfile::tempdir().unwrap()),
        Backend::Postgres => Place::Postgres(super::test_pg::database()?),
    };
    let store = place.open().await;
    assert_eq!(store.backend(), backend);
    Some((place, store))
}

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

pub(super) fn release(app: &str, version: u32, types: &[(&str, &str)]) -> ReleaseRow {
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

pub(super) fn job(id: &str, app: &str, release: u32) -> JobRow {
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

on_both!(
    app_numbers_are_never_given_twice,
    app_numbers_are_never_given_twice_on
);
async fn app_numbers_are_never_given_twice_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    let vic = store.create_app("vic").await.unwrap();
    store.set_app_api_access("vic", true).await.unwrap();
    let other = store.create_app("other").await.unwrap();
    assert_ne!(vic.id, other.id);
    // A rename keeps the number (and the API switch); the old name, taken again, gets a
    // new number, as does a name freed by a destroy.
    store.rename_app("vic", "vic2").await.unwrap();
    assert_eq!(store.app_id("vic2").await.unwrap(), Some(vic.id));
    assert!(store.app_api_access("vic2").await.unwrap());
    assert_eq!(store.app_id("vic").await.unwrap(), None);
    let mal = store.create_app("vic").await.unwrap();
    assert!(mal.id != vic.id && mal.id != other.id, "{mal:?}");
    assert!(!store.app_api_access("vic").await.unwrap());
    store.delete_app("other").await.unwrap();
    let again = store.create_app("other").await.unwrap();
    let ids = [vic.id, other.id, mal.id, again.id];
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{ids:?}");
    // Makers racing on one database each get their own number.
    let made = futures_util::future::join_all((0..6).map(|n| {
        let store = store.clone();
        async move { store.create_app(&format!("race{n}")).await.unwrap().id }
    }))
    .await;
    let mut all: Vec<u32> = made.into_iter().chain(ids).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 10, "{all:?}");
}

on_both!(
    apps_create_list_get_and_duplicates,
    apps_create_list_get_and_duplicates_on
);
async fn apps_create_list_get_and_duplicates_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
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

on_both!(
    releases_number_up_and_set_current_and_default_web_formation,
    releases_number_up_and_set_current_and_default_web_formation_on
);
async fn releases_number_up_and_set_current_and_default_web_formation_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
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

on_both!(
    release_without_web_sets_no_formation,
    release_without_web_sets_no_formation_on
);
async fn release_without_web_sets_no_formation_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    store.create_app("worker-only").await.unwrap();
    store
        .create_release(&release("worker-only", 1, &[("worker", "sleep 1")]))
        .await
        .unwrap();
    assert!(store.formations().await.unwrap().is_empty());
}

on_both!(
    release_of_unknown_app_is_refused,
    release_of_unknown_app_is_refused_on
);
async fn release_of_unknown_app_is_refused_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
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

on_both!(
    config_vars_set_replace_and_remove,
    config_vars_set_replace_and_remove_on
);
async fn config_vars_set_replace_and_remove_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
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

on_both!(
    builds_are_recorded_and_interrupted_ones_fail_on_restart,
    builds_are_recorded_and_interrupted_ones_fail_on_restart_on
);
async fn builds_are_recorded_and_interrupted_ones_fail_on_restart_on(backend: Backend) {
    let Some((place, store)) = fresh_on(backend).await else {
        return;
    };
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
    store.close().await;
    let store = place.open().await;
    assert_eq!(store.fail_interrupted_builds().await.unwrap(), 1);
    let b1 = store.get_build("b1").await.unwrap().unwrap();
    assert_eq!(b1.status, "failed");
    assert!(b1.log.contains("restarted"), "{}", b1.log);
}

on_both!(
    jobs_move_through_states_and_removed_ones_leave_the_active_list,
    jobs_move_through_states_and_removed_ones_leave_the_active_list_on
);
async fn jobs_move_through_states_and_removed_ones_leave_the_active_list_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
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
    // A late write of a task that read the job before its removal does not revive it.
    store
        .set_job_state("hello-v2-bbbb", job_state::STOPPING, None)
        .await
        .unwrap();
    store
        .update_job("hello-v2-bbbb", job_state::UP, Some("10.0.0.3:5000"), None)
        .await
        .unwrap();
    assert_eq!(store.active_jobs().await.unwrap().len(), 1);
    let v2 = store.release_jobs("hello", 2).await.unwrap();
    assert_eq!(v2[0].state, "removed");
    assert_eq!(v2[0].addr, None);
}

on_both!(heartbeats_upsert_nodes, heartbeats_upsert_nodes_on);
async fn heartbeats_upsert_nodes_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
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

on_both!(
    node_names_bind_to_their_first_credential,
    node_names_bind_to_their_first_credential_on
);
async fn node_names_bind_to_their_first_credential_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    let url_of =
        |nodes: Vec<NodeRow>, name: &str| nodes.into_iter().find(|n| n.name == name).map(|n| n.url);
    assert_eq!(store.node_agent_token("n1").await.unwrap(), None);
    // A node without a credential (an older agent) takes the first one sent.
    assert!(store
        .record_bound_heartbeat("n1", "http://a", 1, 10, None)
        .await
        .unwrap());
    assert_eq!(store.node_agent_token("n1").await.unwrap(), None);
    assert!(store
        .record_bound_heartbeat("n1", "http://a", 1, 20, Some("paasagent_a"))
        .await
        .unwrap());
    assert_eq!(
        store.node_agent_token("n1").await.unwrap().as_deref(),
        Some("paasagent_a")
    );
    // Another credential, or none, changes nothing: not the URL, not the credential.
    for other in [Some("paasagent_b"), None] {
        assert!(!store
            .record_bound_heartbeat("n1", "http://evil", 2, 30, other)
            .await
            .unwrap());
    }
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(nodes[0].last_seen_ms, 20);
    assert_eq!(url_of(nodes, "n1").as_deref(), Some("http://a"));
    assert_eq!(
        store.node_agent_token("n1").await.unwrap().as_deref(),
        Some("paasagent_a")
    );
    // The same credential moves it.
    assert!(store
        .record_bound_heartbeat("n1", "http://b", 1, 40, Some("paasagent_a"))
        .await
        .unwrap());
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(url_of(nodes, "n1").as_deref(), Some("http://b"));
    // A row made by a subnet request (no URL, no credential) is bound by its first heartbeat.
    store
        .allocate_subnet("n2", &["10.0.0.0/24".to_string()])
        .await
        .unwrap();
    assert!(store
        .record_bound_heartbeat("n2", "http://c", 1, 10, Some("paasagent_c"))
        .await
        .unwrap());

    // Removing forgets the node and marks the jobs placed on it removed.
    let mut on_n1 = job("hello-v1-aaaa", "hello", 1);
    on_n1.node = "n1".into();
    on_n1.state = job_state::UP.into();
    store.upsert_job(&on_n1).await.unwrap();
    let mut on_n2 = job("hello-v1-bbbb", "hello", 1);
    on_n2.node = "n2".into();
    store.upsert_job(&on_n2).await.unwrap();
    assert_eq!(store.remove_node("n1").await.unwrap(), Some(1));
    assert_eq!(store.remove_node("n1").await.unwrap(), None);
    assert_eq!(store.node_agent_token("n1").await.unwrap(), None);
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(url_of(nodes, "n1"), None);
    let active = store.active_jobs().await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].node, "n2");
    let removed = store.release_jobs("hello", 1).await.unwrap();
    let gone = removed.iter().find(|j| j.id == "hello-v1-aaaa").unwrap();
    assert_eq!(gone.state, job_state::REMOVED);
    assert_eq!(gone.exit_reason.as_deref(), Some("its node was removed"));
    // And its name takes a new credential.
    assert!(store
        .record_bound_heartbeat("n1", "http://d", 1, 50, Some("paasagent_d"))
        .await
        .unwrap());
    assert_eq!(
        store.node_agent_token("n1").await.unwrap().as_deref(),
        Some("paasagent_d")
    );
}

on_both!(
    scheduler_columns_and_domains,
    scheduler_columns_and_domains_on
);
async fn scheduler_columns_and_domains_on(backend: Backend) {
    let Some((_place, store)) = fresh_on(backend).await else {
        return;
    };
    store.upsert_node("n1", "http://n1", 1, 1).await.unwrap();
    assert!(store.set_node_draining("n1", true).await.unwrap());
    assert!(!store.set_node_draining("ghost", true).await.unwrap());
    assert_eq!(
        store.draining_nodes().await.unwrap(),
        ["n1".to_string()].into()
    );
    store.set_node_draining("n1", false).await.unwrap();
    assert!(store.draining_nodes().await.unwrap().is_empty());
    let blocks = ["10.1.0.0/24".to_string(), "10.1.1.0/24".to_string()];
    let a = store.allocate_subnet("n1", &blocks).await.unwrap();
    let b = store.allocate_subnet("n2", &blocks).await.unwrap();
    assert_eq!(a.as_deref(), Some("10.1.0.0/24"));
    assert_eq!(b.as_deref(), Some("10.1.1.0/24"));
    assert_eq!(store.allocate_subnet("n1", &blocks).await.unwrap(), a);
    assert_eq!(store.allocate_subnet("n3", &blocks).await.unwrap(), None);

    store.create_app("hello").await.unwrap();
    store.insert_job(&job("j1", "hello", 1)).await.unwrap();
    let r = Restarts {
        restarts: 3,
        last_exit: Some("exited 1".into()),
    };
    store.set_job_restarts("j1", &r).await.unwrap();
    store.set_job_log("j1", "a\nb").await.unwrap();
    store
        .set_job_state("j1", job_state::REMOVED, Some("gone"))
        .await
        .unwrap();
    assert_eq!(store.job_restarts("hello").await.unwrap()["j1"], r);
    let logs = store.removed_job_logs("hello", 5).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].3, "a\nb");

    assert!(matches!(
        store.add_domain("hello", "www.example.test").await.unwrap(),
        DomainAdded::Added(_)
    ));
    assert!(matches!(
        store.add_domain("hello", "www.example.test").await.unwrap(),
        DomainAdded::Already(_)
    ));
    store.create_app("other").await.unwrap();
    assert_eq!(
        store.add_domain("other", "www.example.test").await.unwrap(),
        DomainAdded::TakenBy("hello".into())
    );
    assert_eq!(store.domains(Some("hello")).await.unwrap().len(), 1);
    // Deleting the app cascades to its domains, config and formations.
    store.set_config_var("hello", "A", Some("1")).await.unwrap();
    store.set_formation("hello", "web", 2).await.unwrap();
    store.delete_app("hello").await.unwrap();
    assert!(store.domains(None).await.unwrap().is_empty());
    assert!(store.config_vars("hello").await.unwrap().is_empty());
    assert!(store.formations().await.unwrap().is_empty());
    assert!(matches!(
        store.delete_app("hello").await.unwrap_err(),
        StoreError::NoApp(_)
    ));
}

// On SQLite the only controller always leads; on PostgreSQL exactly one of several
// stores leads, and another takes over once the leader's store is closed.
on_both!(leader_election, leader_election_on);
async fn leader_election_on(backend: Backend) {
    use super::leader::Election;
    let Some((place, a)) = fresh_on(backend).await else {
        return;
    };
    let first = Election::start(&a);
    let mut w = first.watch();
    tokio::time::timeout(std::time::Duration::from_secs(20), w.wait_for(|l| *l))
        .await
        .expect("the first controller never became leader")
        .unwrap();
    if backend == Backend::Sqlite {
        return;
    }
    let b = place.open().await;
    let second = Election::start(&b);
    // Give the second a few tries: it must not lead while the first does.
    tokio::time::sleep(super::leader::RETRY * 2).await;
    assert!(first.is_leader());
    assert!(!second.is_leader(), "two leaders at once");
    // The leader goes away: its lock connection closes with its election task.
    drop(first);
    a.close().await;
    let mut w = second.watch();
    tokio::time::timeout(std::time::Duration::from_secs(20), w.wait_for(|l| *l))
        .await
        .expect("the second controller never took over")
        .unwrap();
}

#[test]
fn database_urls_name_their_backend_and_hide_passwords() {
    assert_eq!(backend_of("postgres://u@h/db"), Some(Backend::Postgres));
    assert_eq!(backend_of("postgresql://u@h/db"), Some(Backend::Postgres));
    assert_eq!(
        backend_of("sqlite:/var/lib/paas/paas.db"),
        Some(Backend::Sqlite)
    );
    assert_eq!(backend_of("mysql://u@h/db"), None);
    assert_eq!(
        redact("postgres://paas:s3cret@db:5432/paas"),
        "postgres://paas:***@db:5432/paas"
    );
    assert_eq!(redact("postgres://paas@db/paas"), "postgres://paas@db/paas");
}

#[tokio::test]
async fn an_unknown_database_url_is_refused_with_what_to_do() {
    let err = Store::connect("mysql://root:pw@localhost/paas")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::BadUrl { .. }), "{text}");
    assert!(text.contains("--database-url postgres://"), "{text}");
    assert!(!text.contains("pw"), "{text}");
}
