-- Replication lag samples per session, for the trend and ETA in reports. An unknown sample keeps its
-- reason and no byte count: unknown is never stored as zero.
CREATE TABLE lag_samples (
  id           bigserial PRIMARY KEY,
  session_id   uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  at           timestamptz NOT NULL,
  known        boolean NOT NULL,
  slot         text,
  slot_active  boolean,
  bytes        bigint CHECK (bytes >= 0),
  seconds      double precision,
  reason       text,
  CHECK (
    (known AND slot IS NOT NULL AND slot_active IS NOT NULL AND bytes IS NOT NULL AND reason IS NULL)
    OR (NOT known AND bytes IS NULL AND seconds IS NULL AND reason IS NOT NULL)
  )
);

CREATE INDEX lag_samples_by_session ON lag_samples (session_id, at DESC, id DESC);
