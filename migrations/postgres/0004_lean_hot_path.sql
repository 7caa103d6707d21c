-- Fewer indexes on the hot path; the PostgreSQL twin of
-- migrations/sqlite/0004_lean_hot_path.sql, less its webhook_activity table:
-- here several nodes record outcomes at once, and one row per webhook would
-- be a lock every node's recorder waits for, so attempts keep their index by
-- webhook for a webhook's last success and failure.

-- Nothing queries events by creation time (retention goes by id).
DROP INDEX events_created;

-- One index per webhook instead of two: with the status after the id it
-- orders the log by webhook and serves the stats.
DROP INDEX deliveries_webhook_status;
DROP INDEX deliveries_webhook;
CREATE INDEX deliveries_webhook ON deliveries(webhook_id, id, status);
