-- Periodic lag reports (issue #7): per-session schedules, tick claims shared by all replicas,
-- alert episodes, and the recent observations a report draws its trend from.

-- A session's report schedule as set with `/migrate report …`; no row = the profile's default.
CREATE TABLE report_schedules (
  session_id  uuid PRIMARY KEY REFERENCES sessions (id),
  schedule    text NOT NULL,
  set_by      text NOT NULL,
  set_at      timestamptz NOT NULL
);

-- The newest tick claimed per session and purpose ('report' posts in the thread; 'sample' measures
-- and raises alerts). A replica claims tick T with
--   INSERT … ON CONFLICT DO UPDATE … WHERE report_ticks.last_tick < excluded.last_tick RETURNING
-- so of several replicas exactly one gets the row back for T. done_at stays NULL until the work of
-- the tick is finished; a claim whose lease ran out unfinished may be taken over (attempts counts).
CREATE TABLE report_ticks (
  session_id   uuid NOT NULL REFERENCES sessions (id),
  purpose      text NOT NULL CHECK (purpose IN ('report', 'sample')),
  last_tick    timestamptz NOT NULL,
  claimed_by   text NOT NULL,
  claimed_at   timestamptz NOT NULL,
  lease_until  timestamptz NOT NULL,
  done_at      timestamptz,
  attempts     integer NOT NULL DEFAULT 1,
  PRIMARY KEY (session_id, purpose)
);

-- One row per session and alert kind: whether an episode is open, the streak towards opening one.
CREATE TABLE report_alerts (
  session_id  uuid NOT NULL REFERENCES sessions (id),
  kind        text NOT NULL CHECK (kind IN ('lag_high', 'lag_unknown', 'slot_inactive', 'do_failed', 'two_week_limit')),
  active      boolean NOT NULL DEFAULT false,
  streak      integer NOT NULL DEFAULT 0,
  since       timestamptz,
  last_at     timestamptz,
  PRIMARY KEY (session_id, kind)
);

-- The recent observations of a session (a bounded ring, newest last) and when the last report went out.
CREATE TABLE report_windows (
  session_id      uuid PRIMARY KEY REFERENCES sessions (id),
  observations    jsonb NOT NULL DEFAULT '[]'::jsonb,
  last_report_at  timestamptz
);
