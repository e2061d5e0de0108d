-- What an approval was given on (plan fingerprint, lag, source WAL position, predicted freeze): the run
-- refuses when the plan changed since. And the freeze predicted before the run, for the summary.
ALTER TABLE gate_requests ADD COLUMN binding jsonb;
ALTER TABLE cutover_attempts ADD COLUMN predicted_freeze_ms double precision;
-- The data compared at the switch point (counts and checksums as of snapshots taken in the freeze),
-- and who acknowledged differences so Finish may go on.
ALTER TABLE cutover_attempts ADD COLUMN verification jsonb;
