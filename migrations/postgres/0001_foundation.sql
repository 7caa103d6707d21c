-- Foundation schema: projects, tokens, webhooks, events, deliveries, attempts.
-- The PostgreSQL twin of migrations/sqlite/0001_foundation.sql: same tables,
-- columns and meaning. Times are unix milliseconds (BIGINT), as in SQLite.
-- Ids compare byte-wise (COLLATE "C"): they are time-ordered (UUIDv7 hex), and
-- the delivery log pages and filters by time on them.
-- JSON columns are TEXT, kept exactly as written (key order preserved), as
-- SQLite keeps them; nothing queries inside them.

CREATE TABLE projects (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    link_base_url TEXT,               -- prefixes relative links in payloads (Valohai's url)
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE tokens (
    id          TEXT COLLATE "C" PRIMARY KEY,
    project_id  TEXT COLLATE "C" REFERENCES projects(id) ON DELETE CASCADE, -- NULL: admin token
    kind        TEXT NOT NULL,                                   -- admin | write | read
    token_hash  TEXT NOT NULL UNIQUE,                            -- sha256 hex; the token itself is never stored
    prefix      TEXT NOT NULL,
    name        TEXT,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE webhooks (
    id               TEXT COLLATE "C" PRIMARY KEY,
    project_id       TEXT COLLATE "C" NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    url              TEXT NOT NULL,
    format           TEXT NOT NULL,
    events           TEXT NOT NULL,   -- JSON array of event types or ["*"]
    scope            TEXT NOT NULL,   -- JSON {object_type, object_name, version}
    headers          TEXT NOT NULL,   -- JSON [{key, value, protected}]
    secret           TEXT,
    signing_secret   TEXT NOT NULL,
    include_result   BOOLEAN NOT NULL DEFAULT FALSE,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason  TEXT,
    disabled_at      BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    format_config    TEXT NOT NULL DEFAULT '{}', -- JSON {github?: {repository, token, api_url}, template?}; the token is write-only
    rate_limit       TEXT             -- JSON {per_second} or {per_minute}; NULL: the format's default
);
CREATE INDEX webhooks_project ON webhooks(project_id);

CREATE TABLE events (
    id           TEXT COLLATE "C" PRIMARY KEY,  -- time-ordered (UUIDv7), so id order is arrival order
    project_id   TEXT COLLATE "C" NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    event_type   TEXT NOT NULL,
    object       TEXT,                   -- JSON {type, name, version}
    payload      TEXT NOT NULL,          -- the normalised payload, compact JSON, delivered verbatim
    is_test      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT NOT NULL
);
CREATE INDEX events_project ON events(project_id, id);
CREATE INDEX events_project_type ON events(project_id, event_type, id);
CREATE INDEX events_created ON events(created_at);

CREATE TABLE idempotency_keys (
    project_id   TEXT COLLATE "C" NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    event_id     TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (project_id, key)
);

CREATE TABLE deliveries (
    id               TEXT COLLATE "C" PRIMARY KEY,   -- also the webhook-id header: stable across retries
    project_id       TEXT COLLATE "C" NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    event_id         TEXT COLLATE "C" NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    webhook_id       TEXT COLLATE "C" NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_type       TEXT NOT NULL,      -- copied from the event, for the log's filters
    status           TEXT NOT NULL,      -- pending | succeeded | failed | exhausted | paused
    is_test          BOOLEAN NOT NULL DEFAULT FALSE,
    attempts         INTEGER NOT NULL DEFAULT 0,
    retry_base       INTEGER NOT NULL DEFAULT 0, -- attempts made before the last recover: the schedule restarts there
    next_attempt_at  BIGINT,             -- NULL once final
    lease_until      BIGINT,             -- a node holds it in memory until then
    lease_owner      TEXT,               -- which node (PostgreSQL only: several nodes share the table)
    last_status_code INTEGER,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
-- The scheduler's query: due, unfinished deliveries (and the queue gauges).
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE next_attempt_at IS NOT NULL;
-- The delivery log pages newest first by id (time-ordered) under each filter.
CREATE INDEX deliveries_project ON deliveries(project_id, id);
CREATE INDEX deliveries_event ON deliveries(event_id);
CREATE INDEX deliveries_webhook ON deliveries(webhook_id, id);
CREATE INDEX deliveries_project_status ON deliveries(project_id, status, id);
CREATE INDEX deliveries_project_type ON deliveries(project_id, event_type, id);
CREATE INDEX deliveries_webhook_status ON deliveries(webhook_id, status, id);

CREATE TABLE attempts (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- write order (SQLite's rowid)
    delivery_id       TEXT COLLATE "C" NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    attempt           INTEGER NOT NULL,
    webhook_id        TEXT COLLATE "C" NOT NULL,
    manual            BOOLEAN NOT NULL DEFAULT FALSE, -- a redeliver or test: not counted in the schedule
    started_at        BIGINT NOT NULL,
    duration_ms       BIGINT NOT NULL,
    request_url       TEXT NOT NULL,
    request_headers   TEXT NOT NULL,     -- JSON, secret and protected values masked
    request_body      TEXT,              -- NULL when it is the event payload itself
    response_status   INTEGER,
    response_headers  TEXT,
    response_body     TEXT,
    response_truncated BOOLEAN NOT NULL DEFAULT FALSE,
    error_kind        TEXT,
    error_message     TEXT,
    next_attempt_at   BIGINT,
    succeeded         BOOLEAN NOT NULL
);
CREATE INDEX attempts_delivery ON attempts(delivery_id, attempt);
-- Stats and the failing-endpoint policy: a webhook's attempts over time.
CREATE INDEX attempts_webhook ON attempts(webhook_id, started_at);

-- Several nodes keep an in-memory copy of the projects and webhooks for
-- routing. Every change to them announces the project on the channel
-- `mlhook_routing` (delivered at commit), so the other nodes re-read it at
-- once, whichever code path — or operator — made the change.
CREATE FUNCTION mlhook_routing_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed RECORD;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
    ELSE
        changed := NEW;
    END IF;
    PERFORM pg_notify('mlhook_routing', to_jsonb(changed) ->> TG_ARGV[0]);
    RETURN NULL;
END;
$$;

CREATE TRIGGER projects_routing AFTER INSERT OR UPDATE OR DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION mlhook_routing_changed('id');
CREATE TRIGGER webhooks_routing AFTER INSERT OR UPDATE OR DELETE ON webhooks
    FOR EACH ROW EXECUTE FUNCTION mlhook_routing_changed('project_id');
