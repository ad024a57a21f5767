-- TLS certificates uploaded per app (`paas certs:add`): the router presents one to a
-- client whose SNI name it covers. `names` is the certificate's DNS names, comma-separated
-- (`*.example.test` for wildcards); times are RFC 3339 UTC text made in Rust.
CREATE TABLE certs (
    id         TEXT PRIMARY KEY NOT NULL,
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    names      TEXT NOT NULL,
    cert_pem   TEXT NOT NULL,
    key_pem    TEXT NOT NULL,
    not_after  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX certs_app ON certs (app);

-- Apps whose plain HTTP requests the router redirects to HTTPS (`PUT /v1/apps/{app}/tls`).
CREATE TABLE https_redirects (
    app        TEXT PRIMARY KEY NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);

-- The router's last route table (one row, id 1), written by the controller when it changes,
-- so a restarted or separate router (`paas-controller router`) serves at once. `routes` is
-- JSON: [{"app", "hosts": [...], "backends": [{"addr", "job_id"}]}]; `version` grows by one
-- with each change.
CREATE TABLE router_routes (
    id         INTEGER PRIMARY KEY NOT NULL,
    version    BIGINT NOT NULL,
    routes     TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);
