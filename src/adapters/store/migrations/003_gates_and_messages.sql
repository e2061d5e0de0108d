-- Gate requests and approvals for the two dangerous steps (freeze, switch): who asked, who approved,
-- and until when each is valid. At most one open (pending or approved) request per session and gate.
CREATE TABLE gate_requests (
  id                  uuid PRIMARY KEY,
  session_id          uuid NOT NULL REFERENCES sessions (id),
  gate                text NOT NULL CHECK (gate IN ('freeze', 'switch')),
  status              text NOT NULL CHECK (status IN ('pending', 'approved', 'executed', 'withdrawn', 'failed', 'expired')),
  requested_by        text NOT NULL,
  requested_at        timestamptz NOT NULL,
  request_expires_at  timestamptz NOT NULL,
  approved_by         text,
  approved_at         timestamptz,
  approval_expires_at timestamptz,
  closed_at           timestamptz,
  CHECK (status <> 'approved' OR (approved_by IS NOT NULL AND approval_expires_at IS NOT NULL))
);

CREATE UNIQUE INDEX gate_requests_one_open
  ON gate_requests (session_id, gate)
  WHERE status IN ('pending', 'approved');

CREATE INDEX gate_requests_by_session ON gate_requests (session_id, requested_at);

-- Idempotency keys: a Slack retry, a double click or a second replica claims the same key and loses.
-- Commands use a short window (the key may be claimed again once it is older); actions never expire.
CREATE TABLE idempotency_keys (
  key         text PRIMARY KEY,
  claimed_at  timestamptz NOT NULL
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (claimed_at);

-- The report schedule chosen with `/migrate report …` lives in report_schedules (migration 005).
