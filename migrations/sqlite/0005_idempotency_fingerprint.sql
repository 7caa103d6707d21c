-- What an idempotency key remembers of the request that first used it: a
-- SHA-256 of its type, object and payload (src/store/idempotency.rs), so
-- that the key given again with a different request is refused instead of
-- answered with the first event. Rows from before have none and keep
-- answering any request with their event until they expire.
ALTER TABLE idempotency_keys ADD COLUMN fingerprint BLOB;
