/**
 * The read-only-database freeze of a session that covers several migrated databases: a role that can
 * write only in another migrated database is locked out too, and its session there ended; resume
 * gives its LOGIN back. Real PostgreSQL.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InDatabaseFreeze } from '../../src/adapters/proxy/in-database-freeze.js';
import { Secret } from '../../src/secret.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';
import { WRITES_TABLE } from '../support/proxy-write-load.js';
import { memoryLogger } from './helpers.js';

describe('read-only-database freeze over every migrated database (real PostgreSQL)', () => {
  let cluster: Cluster;
  const { logger } = memoryLogger();
  const canLogin = async (role: string) =>
    (await cluster.query<{ rolcanlogin: boolean }>('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [role]))[0]?.rolcanlogin;
  const freeze = (databases?: string[]) =>
    new InDatabaseFreeze({
      connection: { host: cluster.host, port: cluster.port, database: 'orders', user: cluster.user, password: new Secret(cluster.password), sslmode: 'disable' },
      method: 'read-only-database',
      ...(databases ? { databases } : {}),
      logger,
    });

  beforeAll(async () => {
    cluster = await startCluster({ databases: ['orders', 'orders2'] });
    for (const db of ['orders', 'orders2']) {
      await cluster.query(WRITES_TABLE, [], db);
      await cluster.query('REVOKE ALL ON writes FROM PUBLIC', [], db);
    }
    await cluster.query("CREATE ROLE only2 LOGIN PASSWORD 'app-pw'");
    await cluster.query('GRANT INSERT, SELECT ON writes TO only2', [], 'orders2');
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('locks out a writer of another migrated database and ends its session there; resume lets it back', async () => {
    // Only the profile's database: the other database's writer is not its business.
    const own = freeze();
    await own.freeze();
    expect(await canLogin('only2')).toBe(true);
    await own.resume();

    const session = new pg.Client({ connectionString: `postgres://only2:app-pw@127.0.0.1:${cluster.port}/orders2` });
    session.on('error', () => undefined);
    await session.connect();
    const ended = new Promise<void>((resolve) => session.once('end', () => resolve()));
    const every = freeze(['orders', 'orders2']);
    try {
      await every.freeze();
      expect(every.record).toMatchObject({ databases: ['orders', 'orders2'], locked: [{ role: 'only2', login: true }] });
      expect(await canLogin('only2')).toBe(false);
      await ended;
    } finally {
      await every.resume();
      await session.end().catch(() => undefined);
    }
    expect(await canLogin('only2')).toBe(true);
  });
});
