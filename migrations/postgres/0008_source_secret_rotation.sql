-- A source's secret before its last change, sealed like the secret, and
-- when it stops verifying: both verify during the grace period, so MLflow's
-- requests signed with the old secret (it caches webhook settings for 60 s)
-- are not refused.
ALTER TABLE sources ADD COLUMN previous_secret TEXT;
ALTER TABLE sources ADD COLUMN previous_secret_expires_at BIGINT;
