-- Sources: platforms that push their own webhooks to mlhook (MLflow first).
-- The PostgreSQL twin of migrations/sqlite/0003_mlflow_sources.sql.

CREATE TABLE sources (
    id              TEXT COLLATE "C" PRIMARY KEY,    -- src_<UUIDv7>: id order is creation order
    project_id      TEXT COLLATE "C" NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,       -- mlflow
    name            TEXT NOT NULL,
    secret          TEXT,                -- the shared signing secret, write-only; NULL: created as unsigned
    tolerance_secs  INTEGER NOT NULL,    -- how far X-MLflow-Timestamp may be from now
    workspace_name  TEXT,                -- Comet workspaceName when MLflow sends no workspace
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX sources_project ON sources(project_id, id);

-- Delivery ids a source accepted: the durable replay check. The primary key
-- makes the record safe under concurrent identical requests (on any node).
CREATE TABLE source_deliveries (
    source_id    TEXT COLLATE "C" NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    delivery_id  TEXT NOT NULL,          -- X-MLflow-Delivery-Id
    event_id     TEXT COLLATE "C" NOT NULL,  -- the native event it became
    accepted_at  BIGINT NOT NULL,
    PRIMARY KEY (source_id, delivery_id)
);
CREATE INDEX source_deliveries_accepted ON source_deliveries(accepted_at);

-- The source's own log: the last requests it refused, and why. Only the
-- newest 100 per source are kept.
CREATE TABLE source_rejections (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id    TEXT COLLATE "C" NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    at           BIGINT NOT NULL,
    status       INTEGER NOT NULL,       -- the HTTP status answered
    code         TEXT NOT NULL,          -- e.g. invalid_signature, stale_timestamp
    reason       TEXT NOT NULL,
    delivery_id  TEXT,
    event_type   TEXT
);
CREATE INDEX source_rejections_source ON source_rejections(source_id, id);
