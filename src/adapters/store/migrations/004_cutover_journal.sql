-- The cutover journal: every step of every cutover attempt, journaled before and after it runs, so a
-- restarted bot can finish the step or undo the freeze (src/domain/cutover-plan.ts recoveryDecision).
CREATE TABLE cutover_attempts (
  session_id            uuid NOT NULL REFERENCES sessions (id),
  attempt               integer NOT NULL,
  kind                  text NOT NULL CHECK (kind IN ('cutover', 'rollback', 'finish', 'abort')),
  started_by            text NOT NULL,
  started_at            timestamptz NOT NULL DEFAULT now(),
  -- What was frozen (method, proxy kind and database, or roles / database), for recovery and the summary.
  frozen_what           jsonb,
  frozen_at             timestamptz,
  freeze_budget_seconds double precision,
  lag_at_freeze         jsonb,
  fence                 jsonb,
  sequences_copied      integer,
  switched_at           timestamptz,
  resumed_at            timestamptz,
  -- Where writes resumed: 'source' or 'target'.
  resumed_on            text CHECK (resumed_on IN ('source', 'target')),
  writes_held           integer,
  approvals             jsonb,
  outcome               text,
  ended_at              timestamptz,
  PRIMARY KEY (session_id, attempt)
);

CREATE TABLE cutover_journal (
  id          bigserial PRIMARY KEY,
  session_id  uuid NOT NULL,
  attempt     integer NOT NULL,
  step        text NOT NULL,
  event       text NOT NULL CHECK (event IN ('started', 'done', 'failed', 'undone')),
  at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
  FOREIGN KEY (session_id, attempt) REFERENCES cutover_attempts (session_id, attempt)
);

CREATE INDEX cutover_journal_by_session ON cutover_journal (session_id, id);
