-- Users, API tokens, app collaborators and per-node tokens (access control).
-- Portable between SQLite and PostgreSQL: times are INTEGER unix milliseconds set from Rust.

CREATE TABLE users (
    name          TEXT PRIMARY KEY NOT NULL,
    -- admin or member
    role          TEXT NOT NULL,
    -- argon2id PHC string; NULL means the user cannot log in with a password.
    password_hash TEXT,
    created_ms    BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    -- A short random id, shown in listings and used to revoke.
    id           TEXT PRIMARY KEY NOT NULL,
    user_name    TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    -- hex sha256 of the whole token; the token itself is never stored.
    token_hash   TEXT NOT NULL UNIQUE,
    created_ms   BIGINT NOT NULL,
    expires_ms   BIGINT,
    last_used_ms BIGINT
);

CREATE INDEX api_tokens_user ON api_tokens (user_name);

CREATE TABLE app_collaborators (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    user_name  TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (app, user_name)
);

CREATE INDEX app_collaborators_user ON app_collaborators (user_name);

CREATE TABLE node_tokens (
    -- The node name the token was issued for.
    node       TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL
);
