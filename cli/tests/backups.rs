//! `paas pg:backups:download` against a real in-process controller (see `support`): the
//! newest completed backup lands whole in `latest.dump`, a named one in `-o FILE`; a
//! backup that is still running, and another member's, leave no file behind.

mod support;

use paas_controller::store::BackupRow;
use support::{Real, Sandbox};

#[test]
fn pg_backups_download_writes_the_dump_and_nothing_when_refused() {
    let real = Real::start();
    let s = Sandbox::new();
    let run = s.as_user(&real, &real.admin, &["apps:create", "shop"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = s.as_user(
        &real,
        &real.admin,
        &["addons:create", "postgresql", "-a", "shop"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let addon = real
        .block_on(real.c.store.addons())
        .unwrap()
        .pop()
        .expect("the add-on");
    let row = |id: &str, state: &str, at: &str| BackupRow {
        id: id.into(),
        addon: addon.name.clone(),
        addon_id: addon.id,
        app_id: addon.app_id,
        size_bytes: 0,
        state: state.into(),
        scheduled: false,
        error: None,
        created_at: at.into(),
        finished_at: None,
    };
    // Two completed (the newer is the default) and one still running (newest of all).
    let dumps = [
        (
            "b000000000001",
            "completed",
            "2026-12-01T00:00:00Z",
            b"PGDMP-old".to_vec(),
        ),
        (
            "b000000000002",
            "completed",
            "2026-12-02T00:00:00Z",
            b"PGDMP-new".to_vec(),
        ),
        (
            "b000000000003",
            "running",
            "2026-12-03T00:00:00Z",
            Vec::new(),
        ),
    ];
    for (id, state, at, bytes) in &dumps {
        let b = row(id, state, at);
        real.block_on(real.c.store.insert_backup(&b)).unwrap();
        let file = paas_controller::addons::backups::file(&real.c, &b);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, bytes).unwrap();
    }

    let run = s.as_user(&real, &real.admin, &["pg:backups:download", "-a", "shop"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("Downloaded backup b000000000002")
            && run.stdout.contains("latest.dump"),
        "{run:?}"
    );
    assert_eq!(
        std::fs::read(s.work.path().join("latest.dump")).unwrap(),
        b"PGDMP-new"
    );

    let run = s.as_user(
        &real,
        &real.admin,
        &[
            "pg:backups:download",
            "b000000000001",
            "-a",
            "shop",
            "-o",
            "old.dump",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        std::fs::read(s.work.path().join("old.dump")).unwrap(),
        b"PGDMP-old"
    );

    let run = s.as_user(
        &real,
        &real.admin,
        &[
            "pg:backups:download",
            "b000000000003",
            "-a",
            "shop",
            "-o",
            "x.dump",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("is running"), "{run:?}");
    let mallory = real.member("mallory");
    let run = s.as_user(
        &real,
        &mallory,
        &[
            "pg:backups:download",
            "b000000000002",
            "-a",
            "shop",
            "-o",
            "x.dump",
        ],
    );
    assert_eq!(
        run.code, 4,
        "another member's app is missing to them: {run:?}"
    );
    assert!(
        !s.work.path().join("x.dump").exists() && !s.work.path().join("x.dump.partial").exists(),
        "a refused download leaves no file"
    );
}
