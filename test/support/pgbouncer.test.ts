import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from './pg-cluster.js';
import { startPgBouncer, type PgBouncer } from './pgbouncer.js';

describe('the PgBouncer rig', () => {
  let source: Cluster;
  let bouncer: PgBouncer;
  beforeAll(async () => {
    source = await startCluster({ databases: ['orders'] });
    bouncer = await startPgBouncer({ databases: { orders: { host: source.host, port: source.port, dbname: 'orders' } } });
  });
  afterAll(async () => {
    await bouncer?.stop();
    await source?.stop();
  });

  it('proxies client queries to the cluster named in the include file', async () => {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: bouncer.connectionString('orders') });
    await client.connect();
    const { rows } = await client.query('SELECT current_database() AS db, inet_server_port() AS port');
    await client.end();
    expect(rows[0]).toEqual({ db: 'orders', port: source.port });
  });

  it('answers SHOW DATABASES on the admin console with the entry, in transaction pooling', async () => {
    const admin = await bouncer.admin();
    const { rows } = await admin.query('SHOW DATABASES');
    const config = await admin.query('SHOW CONFIG');
    await admin.end();
    expect(rows.find((r) => r.name === 'orders')).toMatchObject({ host: '127.0.0.1', port: source.port, database: 'orders' });
    expect(config.rows.find((r) => r.key === 'pool_mode')?.value).toBe('transaction');
  });
});
