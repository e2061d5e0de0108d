-- A rolled-back session stays open (its replication is put in a defined state, and someone ends it):
-- it still owns its channel.
DROP INDEX sessions_one_active_per_channel;
CREATE UNIQUE INDEX sessions_one_active_per_channel
  ON sessions (channel_id)
  WHERE state IN ('created', 'syncing', 'frozen', 'switched', 'rolled_back');
