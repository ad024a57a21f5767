//! Secrets on disk are the controller's alone (issue 14, "Readable secrets": the data dir
//! was 755 and `paas.db`, holding config vars, TLS keys and agent credentials, 644). With
//! the real start-up (`Controller::open`, the dashboard's key, the router's default
//! certificate) and the real `backup`/`restore`, under umask 0 (the widest a process can
//! have, so nothing here is the umask's doing):
//!
//! * a data dir of mode 755 with 644 secrets is fixed at start (0700 / 0600);
//! * a fresh data dir, its tokens, the store and its WAL/SHM, the dashboard key and the
//!   router's key are made 0700 / 0600;
//! * a secret owned by another user stops the start with a message saying what to do;
//! * a backup is written 0600, a restored data dir is 0700 with its secrets 0600.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use paas_controller::config::Settings;
use paas_controller::state::Controller;

fn widest_umask() {
    // SAFETY: umask(2) only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0);
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

fn settings(dir: &Path) -> Settings {
    Settings::new(
        dir.to_path_buf(),
        "127.0.0.1:1".parse().unwrap(),
        1,
        "localhost",
    )
    .unwrap()
}

/// The secrets a started controller keeps in its data dir.
const SECRETS: &[&str] = &[
    "admin-token",
    "node-token",
    "dashboard-key",
    "paas.db",
    "paas.db-wal",
    "paas.db-shm",
    "router-tls/default.key",
];

/// Starts what `standalone` starts that writes secrets: the controller, the dashboard's
/// session key and the router's default certificate; writes to the store once.
async fn start(dir: &Path) -> std::sync::Arc<Controller> {
    let c = Controller::open(settings(dir)).await.unwrap();
    let _dashboard = paas_controller::http::dashboard::ControllerDashboard::new(c.clone());
    paas_controller::routing::set_default_cert(dir, "localhost", &c.routes).unwrap();
    if c.store.get_app("modes").await.unwrap().is_none() {
        c.store.create_app("modes").await.unwrap();
    }
    c.store
        .set_config_var("modes", "SECRET", Some("s3cret"))
        .await
        .unwrap();
    c
}

fn assert_private(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    assert_eq!(mode(&dir.join("router-tls")), 0o700);
    for name in SECRETS {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
}

#[tokio::test]
async fn a_fresh_data_dir_is_private_whatever_the_umask() {
    widest_umask();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = start(&dir).await;
    assert_private(&dir);
    drop(c);
}

#[tokio::test]
async fn open_modes_are_fixed_at_start() {
    widest_umask();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    drop(start(&dir).await);
    // What an older controller left: everything readable by every local user.
    chmod(&dir, 0o755);
    chmod(&dir.join("router-tls"), 0o755);
    for name in SECRETS {
        chmod(&dir.join(name), 0o644);
    }
    let c = start(&dir).await;
    assert_private(&dir);
    // Nothing was lost: the same token, the same config.
    assert_eq!(
        std::fs::read_to_string(dir.join("admin-token"))
            .unwrap()
            .trim(),
        c.tokens.admin()
    );
    assert_eq!(
        c.store.config_vars("modes").await.unwrap()["SECRET"],
        "s3cret"
    );
}

#[tokio::test]
async fn a_secret_owned_by_another_user_stops_the_start() {
    widest_umask();
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "this test needs root (chown) and CI=true"
        );
        eprintln!("skipped: needs root to chown a file to another user");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    drop(start(&dir).await);
    let token = dir.join("node-token");
    std::os::unix::fs::chown(&token, Some(65534), Some(65534)).unwrap();
    let err = Controller::open(settings(&dir))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("node-token is owned by uid 65534")
            && err.contains("chown -R 0")
            && err.contains("start again"),
        "{err}"
    );
}

#[tokio::test]
async fn backups_are_private_and_restores_too() {
    widest_umask();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    drop(start(&dir).await);
    let out = tmp.path().join("backup.tar.gz");
    // An old backup of the same name, world-readable: replaced, not reused.
    std::fs::write(&out, "old").unwrap();
    chmod(&out, 0o644);
    paas_controller::backup::backup(&dir, None, &out)
        .await
        .unwrap();
    assert_eq!(mode(&out), 0o600);
    let restored = tmp.path().join("restored");
    paas_controller::backup::restore(&out, &restored, None)
        .await
        .unwrap();
    assert_eq!(mode(&restored), 0o700);
    for name in ["admin-token", "node-token", "paas.db"] {
        assert_eq!(mode(&restored.join(name)), 0o600, "{name}");
    }
}
