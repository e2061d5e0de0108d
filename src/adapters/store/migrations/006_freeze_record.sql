-- The in-database write freeze record (the settings before the freeze, never a password), persisted
-- before the freeze changes anything, so a restarted bot puts back exactly what was there.
ALTER TABLE cutover_attempts ADD COLUMN freeze_record jsonb;
