-- Custom domains (`paas domains:add`): each host name belongs to at most one app; the
-- router serves it next to the app's `<app>.<domain>`.
CREATE TABLE domains (
    hostname   TEXT PRIMARY KEY NOT NULL,
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE INDEX domains_app ON domains (app);
