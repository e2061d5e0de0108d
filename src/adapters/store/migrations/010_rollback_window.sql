-- The rollback window of a switched session that replicates back (the reports' watch of the reverse
-- slot): the latest reading, the episodes announced (WAL over the budget, not streaming), and when the
-- window ended and the reverse replication was removed, so each is announced once whichever replica looks.
ALTER TABLE report_windows ADD COLUMN rollback_window jsonb;
