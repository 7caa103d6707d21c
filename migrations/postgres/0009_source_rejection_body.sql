-- The body of a refused request, up to 64 KiB, so that the source's log
-- shows what MLflow sent and will not send again. No header is kept: the
-- signature is not needed to read it.
ALTER TABLE source_rejections ADD COLUMN body TEXT;
