-- The memory limit of each process of a formation (`paas ps:resize`), in bytes; NULL means
-- the default size (512 MiB).
ALTER TABLE formations ADD COLUMN memory_bytes BIGINT;
