-- Issue 17: what an add-on's data takes on its node's disk (its volume `addon-<id>`), as
-- the node's agent last measured it (heartbeat `volumes`), and when. NULL until the first
-- measurement; the API shows it only while the add-on's node is up.
ALTER TABLE addons ADD COLUMN data_bytes BIGINT;
ALTER TABLE addons ADD COLUMN data_measured_at TEXT;
