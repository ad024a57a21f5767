-- Issue 17: an app's persistent volumes (`paas volumes:create`). Each lives on one node
-- (as the agent's sized volume `app-<app id>-<name>`: keyed by the app's permanent
-- number, so a later app of the same name never gets it) and is mounted into the jobs of
-- at most one process type, at `path`; the scheduler pins that type to `node`.
CREATE TABLE volumes (
    app          TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    app_id       INTEGER NOT NULL,
    size_bytes   INTEGER NOT NULL,
    node         TEXT NOT NULL,
    process_type TEXT,
    path         TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (app, name)
);
