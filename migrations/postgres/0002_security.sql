-- Security: signing-key rotation, settings (the secret-key check), the audit log.
-- The PostgreSQL twin of migrations/sqlite/0002_security.sql.

-- The key before the last rotation keeps signing until it expires (sealed, like signing_secret).
ALTER TABLE webhooks ADD COLUMN previous_signing_secret TEXT;
ALTER TABLE webhooks ADD COLUMN previous_signing_expires_at BIGINT;

-- Small facts about the database itself, e.g. a value sealed with the secret
-- key, so a start with another key fails clearly.
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- Every change to projects, tokens and webhooks. No foreign key: the record
-- outlives what it describes (a deleted project's history stays readable).
CREATE TABLE audit_log (
    id           TEXT COLLATE "C" PRIMARY KEY,   -- time-ordered, so id order is time order
    project_id   TEXT COLLATE "C",               -- NULL: not about one project
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,      -- the token's prefix and kind, e.g. "mlh_ab12cd (write)"
    action       TEXT NOT NULL,      -- e.g. webhook.updated
    target_id    TEXT NOT NULL,
    changes      TEXT NOT NULL       -- JSON; secret values never, only that they changed
);
CREATE INDEX audit_project ON audit_log(project_id, id);

CREATE INDEX tokens_project ON tokens(project_id, id);
