-- PostgreSQL twin of migrations/sqlite/0001_init.sql (integers are BIGINT; keep the two in step).
-- The first schema of the controller's store. Never edit a landed migration: add 0002_….sql.

CREATE TABLE apps (
    name            TEXT PRIMARY KEY NOT NULL,
    created_at      TEXT NOT NULL,
    -- The live release's version; NULL until the first deploy.
    current_release BIGINT
);

CREATE TABLE releases (
    app            TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    version        BIGINT NOT NULL,
    -- <repository>@sha256:… in the controller's registry.
    image          TEXT NOT NULL,
    source_version TEXT,
    -- JSON object: process type → command.
    process_types  TEXT NOT NULL,
    -- JSON object: config var → value, as the release runs with them.
    config         TEXT NOT NULL,
    description    TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (app, version)
);

CREATE TABLE config_vars (
    app   TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (app, key)
);

CREATE TABLE builds (
    id             TEXT PRIMARY KEY NOT NULL,
    app            TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    -- pending, building, succeeded, failed
    status         TEXT NOT NULL,
    source_version TEXT,
    release        BIGINT,
    log            TEXT NOT NULL DEFAULT '',
    created_at     TEXT NOT NULL,
    finished_at    TEXT
);
CREATE INDEX builds_by_app ON builds (app, created_at);

CREATE TABLE formations (
    app          TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    process_type TEXT NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (app, process_type)
);

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY NOT NULL,
    app          TEXT NOT NULL,
    release      BIGINT NOT NULL,
    process_type TEXT NOT NULL,
    node         TEXT NOT NULL,
    -- pending (row written, agent not asked yet), starting, up, stopping, down, crashed,
    -- removed (deleted from its node; kept for its exit reason)
    state        TEXT NOT NULL,
    addr         TEXT,
    exit_reason  TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX jobs_by_state ON jobs (state);
CREATE INDEX jobs_by_app ON jobs (app, release);

CREATE TABLE nodes (
    name         TEXT PRIMARY KEY NOT NULL,
    url          TEXT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    -- Unix time in milliseconds of the last heartbeat.
    last_seen_ms BIGINT NOT NULL
);
