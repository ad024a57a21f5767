-- Automatic certificates (ACME HTTP-01, `paas certs:auto on`). `acme_apps`: apps that asked
-- for them. `acme_domains`: per host name the state of its certificate: `pending`,
-- `issued` or `failed` (with `reason`), the id of the stored certificate in `certs` that
-- the last order made, and when it expires (Unix seconds, 0 when none). `acme_accounts`:
-- the controller's ACME account per directory URL (instant-acme's credentials JSON, which
-- holds the account key). Times are RFC 3339 UTC text made in Rust.
CREATE TABLE acme_apps (
    app        TEXT PRIMARY KEY NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);

CREATE TABLE acme_domains (
    hostname   TEXT PRIMARY KEY NOT NULL,
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    cert_id    TEXT NOT NULL,
    not_after  BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX acme_domains_app ON acme_domains (app);

CREATE TABLE acme_accounts (
    directory   TEXT PRIMARY KEY NOT NULL,
    credentials TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
