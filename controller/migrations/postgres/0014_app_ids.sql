-- Every app's permanent number. Names are not identities: an app can be renamed, and a
-- destroyed app's name can be taken again by someone else. What must never pass from one
-- app to another under the same name (the user-namespace uid range on the nodes, the build
-- cache volume, network walls) is keyed by this number instead. `app_ids` keeps one row
-- per number ever given and its rows are never deleted, so a number is never given twice;
-- the store takes MAX(id)+1 in the transaction that makes the app (a concurrent maker on
-- PostgreSQL hits the primary key and retries). A rename keeps the number.
CREATE TABLE app_ids (
    id         BIGINT PRIMARY KEY NOT NULL,
    first_name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

INSERT INTO app_ids (id, first_name, created_at)
    SELECT ROW_NUMBER() OVER (ORDER BY created_at, name), name, created_at FROM apps;

ALTER TABLE apps ADD COLUMN id BIGINT;
UPDATE apps SET id = (SELECT i.id FROM app_ids i WHERE i.first_name = apps.name);
CREATE UNIQUE INDEX apps_id ON apps (id);
