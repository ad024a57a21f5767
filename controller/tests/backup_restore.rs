//! `paas-controller backup` / `restore` with the real binary: a running controller (SQLite)
//! with an app, config vars, two releases, a registry blob and a git repository is backed
//! up while it serves; the backup is restored into a fresh data dir (SQLite) and into a
//! fresh PostgreSQL database; a controller started on each serves the same apps, releases,
//! config and blob with the same admin token. A restore into a non-empty dir is refused.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use paas_controller::config::Settings;
use paas_controller::state::Controller;
use paas_controller::store::{test_pg, ReleaseRow};
use serde_json::Value;
use support::Running;
use tokio::net::TcpListener;

const BIN: &str = env!("CARGO_BIN_EXE_paas-controller");

fn release(version: u32) -> ReleaseRow {
    ReleaseRow {
        app: "hello".into(),
        version,
        image: format!("apps/hello@sha256:{}", "b".repeat(64)),
        source_version: Some(format!("{version:040}")),
        process_types: BTreeMap::from([("web".into(), "serve".into())]),
        config: BTreeMap::from([("GREETING".into(), format!("hi{version}"))]),
        description: format!("Deploy v{version}"),
        created_at: paas_controller::util::now_rfc3339(),
    }
}

/// Serves the API of a controller opened on `dir` (and `db`); returns its base URL.
async fn serve(dir: &Path, db: Option<&str>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = Settings::new(dir.to_path_buf(), addr, 1, "localhost").unwrap();
    settings.database_url = db.map(str::to_string);
    let c = Controller::open(settings).await.unwrap();
    let app = paas_controller::http::app(Arc::clone(&c));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), task)
}

async fn get(base: &str, token: &str, path: &str) -> (u16, Vec<u8>) {
    let res = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
}

async fn get_json(base: &str, token: &str, path: &str) -> Value {
    let (status, body) = get(base, token, path).await;
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// What a client sees of the app: apps, releases, config, the blob.
async fn view(base: &str, token: &str, blob: &str) -> (Value, Value, Value, Vec<u8>) {
    let apps = get_json(base, token, "/v1/apps").await;
    let releases = get_json(base, token, "/v1/apps/hello/releases").await;
    let config = get_json(base, token, "/v1/apps/hello/config").await;
    let (status, bytes) = get(base, token, &format!("/v2/apps/hello/blobs/{blob}")).await;
    assert_eq!(status, 200, "the blob");
    // The status depends on the scheduler and the URLs on the ports, not on the backup.
    let apps = strip(apps, &["status", "git_url", "web_url"]);
    (apps, releases, config, bytes)
}

fn strip(mut v: Value, keys: &[&str]) -> Value {
    if let Some(items) = v.as_array_mut() {
        for item in items {
            if let Some(o) = item.as_object_mut() {
                for k in keys {
                    o.remove(*k);
                }
            }
        }
    }
    v
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn backup_restores_into_fresh_sqlite_and_postgres_stores() {
    let r = Running::start(true).await;
    let token = r.c.tokens.admin().to_string();
    let store = &r.c.store;
    store.create_app("hello").await.unwrap();
    store.create_app("other").await.unwrap();
    store
        .set_config_var("hello", "GREETING", Some("hi"))
        .await
        .unwrap();
    store
        .set_config_var("hello", "SECRET", Some("s3"))
        .await
        .unwrap();
    store.create_release(&release(1)).await.unwrap();
    store.create_release(&release(2)).await.unwrap();
    store.set_formation("hello", "web", 3).await.unwrap();
    store.add_domain("hello", "www.hello.test").await.unwrap();
    // A blob in the registry, pushed through its API.
    let layer = b"not really a layer, but bytes the registry keeps".to_vec();
    let digest = support::sha(&layer);
    let pushed = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!(
            "{}/v2/apps/hello/blobs/uploads/?digest={digest}",
            r.api
        ))
        .bearer_auth(&token)
        .body(layer.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status().as_u16(), 201);
    let repo = r.dir.path().join("git/hello.git");
    let init = Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&repo)
        .status()
        .unwrap();
    assert!(init.success());
    let before = view(&r.api, &token, &digest).await;
    assert_eq!(before.3, layer);

    // Back up while the controller runs.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("paas-backup.tar.gz");
    let data = r.dir.path().to_str().unwrap();
    let (ok, text) = run(&[
        "backup",
        "--data-dir",
        data,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "backup failed: {text}");
    assert!(text.contains("backed up"), "{text}");

    // Restore into a fresh dir with SQLite.
    let fresh = out.path().join("restored");
    let (ok, text) = run(&[
        "restore",
        "--data-dir",
        fresh.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(ok, "restore failed: {text}");
    assert!(fresh.join("git/hello.git/HEAD").is_file());
    assert!(!fresh.join(".restore").exists());
    let restored_token = std::fs::read_to_string(fresh.join("admin-token")).unwrap();
    assert_eq!(restored_token.trim(), token);
    let (base, task) = serve(&fresh, None).await;
    let after = view(&base, &token, &digest).await;
    assert_eq!(after, before);
    task.abort();

    // A second restore into the same (now non-empty) dir is refused.
    let (ok, text) = run(&[
        "restore",
        "--data-dir",
        fresh.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(text.contains("not empty"), "{text}");

    // And into PostgreSQL (a SQLite backup moves to a shared store this way).
    let Some(db) = test_pg::database() else {
        return;
    };
    let fresh_pg = out.path().join("restored-pg");
    let out_pg = Command::new(BIN)
        .args(["restore", "--data-dir", fresh_pg.to_str().unwrap()])
        .arg(&file)
        .env("PAAS_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(
        out_pg.status.success(),
        "restore into PostgreSQL failed: {}",
        String::from_utf8_lossy(&out_pg.stderr)
    );
    let (base, task) = serve(&fresh_pg, Some(&db.url)).await;
    let after = view(&base, &token, &digest).await;
    assert_eq!(after, before);
    task.abort();
    // The formation and the domain came along too.
    let pg = paas_controller::store::Store::connect(&db.url)
        .await
        .unwrap();
    assert_eq!(pg.formations().await.unwrap()[0].count, 3);
    assert_eq!(pg.domains(Some("hello")).await.unwrap().len(), 1);
    pg.close().await;
}

/// An add-on backup (row and dump file) as the capture leaves it.
async fn recorded_backup(
    c: &Controller,
    addon: &paas_controller::store::AddonRow,
    id: &str,
    state: &str,
    bytes: &[u8],
) -> std::path::PathBuf {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let b = paas_controller::store::BackupRow {
        id: id.into(),
        addon: addon.name.clone(),
        addon_id: addon.id,
        app_id: addon.app_id,
        size_bytes: bytes.len() as u64,
        state: state.into(),
        scheduled: false,
        error: None,
        created_at: "2026-12-07T02:00:00Z".into(),
        finished_at: None,
    };
    c.store.insert_backup(&b).await.unwrap();
    let file = paas_controller::addons::backups::file(c, &b);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(file.parent().unwrap())
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
    file
}

/// The add-ons' backup files ride along: a completed dump comes back byte for byte with its
/// 0600/0700 modes and `GET …/pg-backups` of the restored controller lists it; one that was
/// still running comes back `failed`, without its partial file. (Restoring from it into a
/// live PostgreSQL is addons_backups.rs's e2e test; here no node runs.)
#[tokio::test]
async fn addon_backup_files_come_back_with_their_rows() {
    use std::os::unix::fs::PermissionsExt;
    let r = Running::start(false).await;
    let token = r.c.tokens.admin().to_string();
    r.c.store.create_app("shop").await.unwrap();
    let created = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/v1/apps/shop/addons", r.api))
        .bearer_auth(&token)
        .json(&serde_json::json!({"service": "postgresql"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let name = created.json::<Value>().await.unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    let addon = r.c.store.addon(&name).await.unwrap().unwrap();
    // Not text: every byte value, so nothing may be re-encoded on the way.
    let dump: Vec<u8> = b"PGDMP"
        .iter()
        .copied()
        .chain(0..=255u8)
        .cycle()
        .take(70_000)
        .collect();
    let done = recorded_backup(&r.c, &addon, "b00000000done", "completed", &dump).await;
    let partial = recorded_backup(&r.c, &addon, "b000000000run", "running", b"PGD").await;

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("paas-backup.tar.gz");
    let data = r.dir.path().to_str().unwrap();
    let (ok, text) = run(&[
        "backup",
        "--data-dir",
        data,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "backup failed: {text}");
    let fresh = out.path().join("restored");
    let (ok, text) = run(&[
        "restore",
        "--data-dir",
        fresh.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(ok, "restore failed: {text}");

    let inside = |p: &Path| fresh.join(p.strip_prefix(r.dir.path()).unwrap());
    let back = inside(&done);
    assert_eq!(std::fs::read(&back).unwrap(), dump, "the same bytes");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&back), 0o600);
    assert_eq!(mode(back.parent().unwrap()), 0o700);
    assert!(
        !inside(&partial).exists(),
        "a running backup's partial file is left out"
    );

    let (base, task) = serve(&fresh, None).await;
    let list = get_json(&base, &token, "/v1/apps/shop/pg-backups").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let by_id = |id: &str| list.iter().find(|b| b["id"] == id).unwrap().clone();
    assert_eq!(by_id("b00000000done")["state"], "completed");
    assert_eq!(by_id("b00000000done")["size_bytes"], dump.len() as u64);
    let failed = by_id("b000000000run");
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("controller backup"),
        "{failed}"
    );
    task.abort();
}
