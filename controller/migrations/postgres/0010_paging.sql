-- Keyset paging of the long lists (store/paging.rs): builds newest first by start time
-- then id, jobs by process type then id, each within one app.
CREATE INDEX builds_page ON builds (app, created_at, id);
CREATE INDEX jobs_page ON jobs (app, process_type, id);
