#!/bin/sh
# What a shorter lease would cost against a heartbeat (docs/performance.md,
# "Node liveness on PostgreSQL"). Builds a scratch database with mlhook's
# PostgreSQL schema, N pending deliveries of which HELD are leased to one node,
# and times: renewing the held leases (what the lease renewal does every third
# of --lease-duration), one heartbeat, and releasing a dead node's leases.
# Usage: docs/measurements/lease_renewal.sh [N] [HELD]
#   PGURL=postgres://postgres@127.0.0.1:5432 (the server; a database is made and dropped)
set -eu
N=${1:-200000}
HELD=${2:-100000}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
DB=mlhook_lease_measure_$$
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
psql -q "$PGURL/postgres" -c "CREATE DATABASE $DB"
trap 'psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
for f in "$ROOT"/migrations/postgres/*.sql; do psql -q -v ON_ERROR_STOP=1 "$PGURL/$DB" -f "$f"; done
psql -q -v ON_ERROR_STOP=1 "$PGURL/$DB" <<SQL
INSERT INTO projects (id, name, created_at, updated_at) VALUES ('p', 'p', 0, 0);
INSERT INTO webhooks (id, project_id, name, url, format, events, scope, headers, signing_secret, include_result,
  enabled, created_at, updated_at, format_config)
  VALUES ('w', 'p', 'w', 'http://x', 'json', '["*"]', '{}', '[]', 's', false, true, 0, 0, '{}');
INSERT INTO events (id, project_id, event_type, payload, is_test, created_at)
  SELECT 'evt_' || lpad(i::text, 9, '0'), 'p', 't', '{}', false, i FROM generate_series(1, $N) i;
INSERT INTO deliveries (id, project_id, event_id, webhook_id, event_type, is_test, next_attempt_at,
  lease_until, lease_owner, created_at, updated_at, status, attempts)
  SELECT 'msg_' || lpad(i::text, 9, '0'), 'p', 'evt_' || lpad(i::text, 9, '0'), 'w', 't', false, i,
         CASE WHEN i <= $HELD THEN 9e15::bigint END, CASE WHEN i <= $HELD THEN 'dead' END, i, i, 'pending', 0
  FROM generate_series(1, $N) i;
INSERT INTO nodes (id, started_at, last_seen) VALUES ('dead', 0, 0), ('live', 0, 0);
VACUUM ANALYZE;
SQL
psql -q -v ON_ERROR_STOP=1 "$PGURL/$DB" <<SQL
\timing on
\echo renew $HELD held leases (one statement, as run_lease_renewal does):
UPDATE deliveries SET lease_until = 9e15::bigint + 1
  WHERE id = ANY(ARRAY(SELECT 'msg_' || lpad(i::text, 9, '0') FROM generate_series(1, $HELD) i))
    AND lease_owner = 'dead';
\echo the same again (warm):
UPDATE deliveries SET lease_until = 9e15::bigint + 2
  WHERE id = ANY(ARRAY(SELECT 'msg_' || lpad(i::text, 9, '0') FROM generate_series(1, $HELD) i))
    AND lease_owner = 'dead';
\echo one heartbeat:
UPDATE nodes SET last_seen = (extract(epoch FROM clock_timestamp()) * 1000)::bigint WHERE id = 'live';
\echo release a dead node holding $HELD of $N pending deliveries:
BEGIN;
DELETE FROM nodes WHERE last_seen < (extract(epoch FROM clock_timestamp()) * 1000)::bigint - 15000
  AND id <> 'live' RETURNING id;
UPDATE deliveries SET lease_until = NULL, lease_owner = NULL
  WHERE next_attempt_at IS NOT NULL AND lease_owner = ANY(ARRAY['dead']);
COMMIT;
SQL
