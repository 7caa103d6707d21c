-- Twin of migrations/postgres/0006_node_liveness.sql. One process owns a
-- SQLite data directory (its lock), so no node is ever found dead here and
-- nothing writes this table; it keeps the two schemas alike.
CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    started_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    dead_at    INTEGER
);
