-- Issue 15: each release keeps the app.json it was built with (comments stripped), so a
-- release made by config:set or rollback keeps its formation, scripts, cron and env, and
-- the leader's cron loop reads the current release's schedule. NULL: no app.json.
ALTER TABLE release_status ADD COLUMN app_json TEXT;
