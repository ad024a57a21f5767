-- Issue 17: backups of PostgreSQL add-ons (`paas pg:backups:capture`). The dump itself is a
-- file in the controller's data dir (backups/<addon id>/<backup id>.dump, 0600); a row says
-- whose it is (the add-on by name and permanent number, its owner app by number), how big
-- it is, whether it finished and whether the daily schedule took it (`scheduled` = 1; the
-- schedule's retention count only ever deletes those). Deleting the add-on deletes its rows,
-- files and schedule.
CREATE TABLE addon_backups (
    id TEXT PRIMARY KEY,
    addon TEXT NOT NULL,
    addon_id BIGINT NOT NULL,
    app_id BIGINT NOT NULL,
    size_bytes BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    scheduled BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX addon_backups_addon ON addon_backups (addon);
-- `pg:backups:schedule --at HH:MM --keep N`: one daily backup at `at_minute` (minutes
-- after 00:00 UTC), keeping the newest `keep` scheduled ones; `last_run_ms` is when the
-- leader last started one (Unix ms).
CREATE TABLE addon_backup_schedules (
    addon TEXT PRIMARY KEY,
    at_minute BIGINT NOT NULL,
    keep BIGINT NOT NULL,
    last_run_ms BIGINT NOT NULL DEFAULT 0
);
