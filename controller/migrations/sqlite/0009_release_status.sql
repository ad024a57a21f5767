-- The deploy pipeline's additions (issue 7/8): a release's health check (from app.json)
-- and how its deploy went, and the buildpack an app chose.

-- One row per release made by a push or an image deploy. `healthcheck` is the JSON of the
-- web startup check read from app.json (NULL = the TCP check); `status` is `pending`
-- (deploying), `succeeded` or `failed`, `reason` says why a deploy failed.
CREATE TABLE release_status (
    app         TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    version     BIGINT NOT NULL,
    healthcheck TEXT,
    status      TEXT NOT NULL,
    reason      TEXT,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (app, version)
);

-- `paas buildpacks:set`: the built-in buildpack (name) an app builds with instead of
-- detection.
CREATE TABLE app_buildpacks (
    app       TEXT PRIMARY KEY NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    buildpack TEXT NOT NULL
);
