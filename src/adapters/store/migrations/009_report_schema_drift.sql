-- The schema differences between source and target already announced in a syncing session's channel
-- (the reports' schema guard): each is announced once, whichever replica compares the schemas.
ALTER TABLE report_windows ADD COLUMN schema_drift jsonb NOT NULL DEFAULT '[]'::jsonb;
