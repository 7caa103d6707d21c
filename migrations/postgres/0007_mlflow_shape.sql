-- Which shape of an MLflow change a webhook gets when it listens to both the
-- native event and its Comet twin: native (the default), comet or both.
ALTER TABLE webhooks ADD COLUMN mlflow_shape TEXT NOT NULL DEFAULT 'native';
