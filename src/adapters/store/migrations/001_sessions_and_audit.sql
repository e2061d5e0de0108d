-- Sessions: one migration of one profile, driven from one Slack channel.
CREATE TABLE sessions (
  id                 uuid PRIMARY KEY,
  channel_id         text NOT NULL,
  profile            text NOT NULL,
  strategy           text NOT NULL CHECK (strategy IN ('proxy', 'connection-parameters')),
  state              text NOT NULL CHECK (state IN ('created', 'syncing', 'frozen', 'switched',
                                                    'finished', 'aborted', 'rolled_back', 'failed')),
  version            integer NOT NULL DEFAULT 1,
  do_migration_id    text,
  started_by         text NOT NULL,
  status_message_ts  text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);

-- At most one active session per channel, whatever the code does and however many replicas run.
CREATE UNIQUE INDEX sessions_one_active_per_channel
  ON sessions (channel_id)
  WHERE state IN ('created', 'syncing', 'frozen', 'switched');

CREATE INDEX sessions_by_channel ON sessions (channel_id, created_at DESC);

-- Append-only record of who asked for what, and what came of it.
CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  session_id  uuid REFERENCES sessions (id),
  channel_id  text NOT NULL,
  actor       text NOT NULL,
  action      text NOT NULL,
  outcome     text NOT NULL CHECK (outcome IN ('requested', 'approved', 'refused', 'succeeded', 'failed', 'info')),
  details     jsonb NOT NULL DEFAULT '{}'::jsonb,
  at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_by_session ON audit_log (session_id, id);
CREATE INDEX audit_log_by_channel ON audit_log (channel_id, id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END
$$;

CREATE TRIGGER audit_log_no_update_or_delete
  BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
