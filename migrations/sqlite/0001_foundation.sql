-- Foundation schema: projects, tokens, webhooks, events, deliveries, attempts.
-- Times are unix milliseconds (INTEGER) so ordering and range filters stay cheap.

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    link_base_url TEXT,               -- prefixes relative links in payloads (Valohai's url)
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    project_id  TEXT REFERENCES projects(id) ON DELETE CASCADE, -- NULL: admin token
    kind        TEXT NOT NULL,                                   -- admin | write | read
    token_hash  TEXT NOT NULL UNIQUE,                            -- sha256 hex; the token itself is never stored
    prefix      TEXT NOT NULL,
    name        TEXT,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE webhooks (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    url              TEXT NOT NULL,
    format           TEXT NOT NULL,
    events           TEXT NOT NULL,   -- JSON array of event types or ["*"]
    scope            TEXT NOT NULL,   -- JSON {object_type, object_name, version}
    headers          TEXT NOT NULL,   -- JSON [{key, value, protected}]
    secret           TEXT,
    signing_secret   TEXT NOT NULL,
    include_result   INTEGER NOT NULL DEFAULT 0,
    enabled          INTEGER NOT NULL DEFAULT 1,
    disabled_reason  TEXT,
    disabled_at      INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    format_config    TEXT NOT NULL DEFAULT '{}', -- JSON {github?: {repository, token, api_url}, template?}; the token is write-only
    rate_limit       TEXT             -- JSON {per_second} or {per_minute}; NULL: the format's default
);
CREATE INDEX webhooks_project ON webhooks(project_id);

CREATE TABLE events (
    id           TEXT PRIMARY KEY,       -- time-ordered (UUIDv7), so id order is arrival order
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    event_type   TEXT NOT NULL,
    object       TEXT,                   -- JSON {type, name, version}
    payload      TEXT NOT NULL,          -- the normalised payload, compact JSON
    is_test      INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);
CREATE INDEX events_project ON events(project_id, id);
CREATE INDEX events_project_type ON events(project_id, event_type, id);
CREATE INDEX events_created ON events(created_at);

CREATE TABLE idempotency_keys (
    project_id   TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (project_id, key)
);

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,   -- also the webhook-id header: stable across retries
    project_id       TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    webhook_id       TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_type       TEXT NOT NULL,      -- copied from the event, for the log's filters
    status           TEXT NOT NULL,      -- pending | succeeded | failed | exhausted | paused
    is_test          INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    retry_base       INTEGER NOT NULL DEFAULT 0, -- attempts made before the last recover: the schedule restarts there
    next_attempt_at  INTEGER,            -- NULL once final
    lease_until      INTEGER,            -- a node holds it in memory until then
    last_status_code INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
-- The scheduler's query: due, unfinished deliveries.
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE next_attempt_at IS NOT NULL;
-- The delivery log pages newest first by id (time-ordered) under each filter.
CREATE INDEX deliveries_project ON deliveries(project_id, id);
CREATE INDEX deliveries_event ON deliveries(event_id);
CREATE INDEX deliveries_webhook ON deliveries(webhook_id, id);
CREATE INDEX deliveries_project_status ON deliveries(project_id, status, id);
CREATE INDEX deliveries_project_type ON deliveries(project_id, event_type, id);
CREATE INDEX deliveries_webhook_status ON deliveries(webhook_id, status, id);

CREATE TABLE attempts (
    delivery_id       TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    attempt           INTEGER NOT NULL,
    webhook_id        TEXT NOT NULL,
    manual            INTEGER NOT NULL DEFAULT 0, -- a redeliver or test: not counted in the schedule
    started_at        INTEGER NOT NULL,
    duration_ms       INTEGER NOT NULL,
    request_url       TEXT NOT NULL,
    request_headers   TEXT NOT NULL,     -- JSON, secret and protected values masked
    request_body      TEXT,              -- NULL when it is the event payload itself
    response_status   INTEGER,
    response_headers  TEXT,
    response_body     TEXT,
    response_truncated INTEGER NOT NULL DEFAULT 0,
    error_kind        TEXT,
    error_message     TEXT,
    next_attempt_at   INTEGER,
    succeeded         INTEGER NOT NULL
);
CREATE INDEX attempts_delivery ON attempts(delivery_id, attempt);
-- Stats and the failing-endpoint policy: a webhook's attempts over time.
CREATE INDEX attempts_webhook ON attempts(webhook_id, started_at);
