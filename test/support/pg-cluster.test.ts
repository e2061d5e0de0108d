import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from './pg-cluster.js';

describe('the PostgreSQL rig', () => {
  let source: Cluster;
  beforeAll(async () => {
    source = await startCluster({ logical: true, databases: ['orders'] });
  });
  afterAll(() => source?.stop());

  it('starts a logical source with password auth and the requested database', async () => {
    const [row] = await source.query<{ wal_level: string; user: string }>(
      'SELECT current_setting($1) AS wal_level, current_user AS user',
      ['wal_level'],
      'orders',
    );
    expect(row).toEqual({ wal_level: 'logical', user: 'rig_admin' });
  });

  it('refuses a wrong password', async () => {
    const wrong = source.connectionString('orders').replace('rig-password', 'nope');
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: wrong });
    await expect(client.connect()).rejects.toThrow(/password authentication failed/);
  });
});
