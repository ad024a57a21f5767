-- The scheduler's additions: draining nodes, per-node subnets, and crash loops on job rows.

-- 1 while the node is drained: it gets no new jobs and its jobs move elsewhere.
ALTER TABLE nodes ADD COLUMN draining BIGINT NOT NULL DEFAULT 0;
-- The node's container subnet, allocated by the controller from the cluster CIDR.
ALTER TABLE nodes ADD COLUMN subnet TEXT;

-- How many times in a row this job's process type had crashed when it was started, and
-- the exit reason of the last of those crashes (the crash loop shows in `ps`).
ALTER TABLE jobs ADD COLUMN restarts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN last_exit TEXT;

-- The end of a removed job's output (at most 50 lines), kept for `paas logs` after the
-- job is gone from its node (a crash loop's error output stays visible).
ALTER TABLE jobs ADD COLUMN last_log TEXT;
