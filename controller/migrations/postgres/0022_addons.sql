-- Issue 17: add-ons (PostgreSQL, Redis) and the apps they are attached to. An add-on
-- belongs to the app that created it (by the app's permanent number, so a rename keeps it
-- and a destroyed app's add-ons are torn down by the add-on loop); `id` is its own
-- permanent number (its tenant on the nodes, its volume's name). The password is the
-- service's credential (the store is owner-only); it never reaches a job's argv or a log.
CREATE TABLE addons (
    name TEXT PRIMARY KEY,
    id BIGINT NOT NULL UNIQUE,
    service TEXT NOT NULL,
    plan TEXT NOT NULL,
    app_id BIGINT NOT NULL,
    password TEXT NOT NULL,
    node TEXT,
    job_id TEXT,
    state TEXT NOT NULL,
    addr TEXT,
    restarts BIGINT NOT NULL DEFAULT 0,
    last_exit TEXT,
    next_start_ms BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE addon_attachments (
    addon TEXT NOT NULL,
    app_id BIGINT NOT NULL,
    var TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (addon, app_id)
);
