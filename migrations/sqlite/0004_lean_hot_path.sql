-- Fewer B-trees on the hot path. Every commit writes each page it changed
-- whole to the WAL, and an index appended to at its right edge changes two
-- to four pages a commit (SQLite rebalances a full leaf with its
-- neighbours): each index left out is pages not written for every group of
-- events and outcomes (docs/performance.md).

-- Nothing queries events by creation time (retention goes by id).
DROP INDEX events_created;

-- One index per webhook instead of two: (webhook_id, id) ordered the log by
-- webhook, (webhook_id, status, id) served the stats. With the status after
-- the id it serves both (stats read it without touching the table), and an
-- outcome changes the entry within one leaf instead of moving it between
-- two distant ones.
DROP INDEX deliveries_webhook_status;
DROP INDEX deliveries_webhook;
CREATE INDEX deliveries_webhook ON deliveries(webhook_id, id, status);

-- A webhook's last success and last failure, written with each batch of
-- outcomes: one small row per webhook, where an index of attempts by webhook
-- took a leaf per webhook per batch (the cost of fanning out to many).
CREATE TABLE webhook_activity (
    webhook_id       TEXT NOT NULL PRIMARY KEY REFERENCES webhooks(id) ON DELETE CASCADE,
    last_success_at  INTEGER,
    last_failure_at  INTEGER
) WITHOUT ROWID;
INSERT INTO webhook_activity (webhook_id, last_success_at, last_failure_at)
SELECT a.webhook_id,
       MAX(CASE WHEN a.succeeded THEN a.started_at END),
       MAX(CASE WHEN a.succeeded THEN NULL ELSE a.started_at END)
FROM attempts a JOIN webhooks w ON w.id = a.webhook_id
GROUP BY a.webhook_id;
DROP INDEX attempts_webhook;
