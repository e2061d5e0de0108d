/**
 * The in-database write freeze on a real cluster with an application role writing continuously.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodedError, ErrorCode } from '../../src/errors.js';
import { InDatabaseFreeze, type InDatabaseFreezeRecord } from '../../src/adapters/proxy/in-database-freeze.js';
import { Secret } from '../../src/secret.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';
import { startProxyWriteLoad, WRITES_TABLE } from '../support/proxy-write-load.js';
import { memoryLogger, sleep } from './helpers.js';

describe('in-database write freeze (real PostgreSQL)', () => {
  let cluster: Cluster;
  const { logger } = memoryLogger();
  const appUrl = (role: string) => `postgres://${role}:app-pw@127.0.0.1:${cluster.port}/orders`;
  const botConnection = () => ({
    host: cluster.host,
    port: cluster.port,
    database: 'orders',
    user: cluster.user,
    password: new Secret(cluster.password),
    sslmode: 'disable' as const,
  });
  const roleSetting = async (role: string) =>
    (
      await cluster.query<{ setconfig: string[] | null }>(
        'SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = $1 AND s.setdatabase = 0',
        [role],
      )
    )[0]?.setconfig ?? null;
  const tryWrite = async (role: string, id: string) => {
    const client = new pg.Client({ connectionString: appUrl(role) });
    client.on('error', () => undefined);
    await client.connect();
    try {
      await client.query('INSERT INTO writes (id, port) VALUES ($1, inet_server_port())', [id]);
      return 'ok';
    } catch (error) {
      return (error as { code?: string }).code ?? 'error';
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    cluster = await startCluster({ databases: ['orders'] });
    await cluster.query(WRITES_TABLE, [], 'orders');
    for (const role of ['app_writer', 'app_legacy']) {
      await cluster.query(`CREATE ROLE ${role} LOGIN PASSWORD 'app-pw'`);
      await cluster.query(`GRANT INSERT, SELECT ON writes TO ${role}`, [], 'orders');
    }
    // app_legacy already had a setting of its own: resume must put exactly that back.
    await cluster.query('ALTER ROLE app_legacy SET default_transaction_read_only = off');
    await cluster.query('CREATE ROLE app_admin LOGIN SUPERUSER');
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('read-only roles: writes fail while frozen, sessions are ended, resume restores each role exactly', async () => {
    const records: InDatabaseFreezeRecord[] = [];
    const freeze = new InDatabaseFreeze({
      connection: botConnection(),
      method: 'read-only-roles',
      roles: ['app_writer', 'app_legacy'],
      onRecord: (r) => void records.push(r),
      logger,
    });
    const load = startProxyWriteLoad({ connectionString: appUrl('app_writer'), workers: 3, maxDurationMs: 15_000 });
    try {
      await load.waitForWrites(50);
      await freeze.freeze();
      await freeze.freeze(); // idempotent; the record still holds the settings from before the first freeze
      expect(records).toHaveLength(1);
      expect(records[0]?.previous).toEqual([
        { role: 'app_writer', value: null },
        { role: 'app_legacy', value: 'off' },
      ]);
      expect(await freeze.isFrozen()).toBe(true);
      const errorsBefore = load.errors.length;
      await sleep(300);
      // The running writer was cut off and its new sessions are read-only: only errors now.
      const frozenSince = Date.now();
      await sleep(200);
      expect(load.acked.filter((w) => w.ackedAt > frozenSince)).toEqual([]);
      expect(load.errors.length).toBeGreaterThan(errorsBefore);
      expect(load.errors.map((e) => e.code)).toContain('25006'); // read_only_sql_transaction
      expect(await tryWrite('app_legacy', 'legacy-frozen')).toBe('25006');

      await freeze.resume();
      await freeze.resume(); // idempotent
      expect(await roleSetting('app_writer')).toBeNull();
      expect(await roleSetting('app_legacy')).toEqual(['default_transaction_read_only=off']);
      await load.waitForWrites(50); // the same writer recovers on its own
      expect(await tryWrite('app_legacy', 'legacy-after')).toBe('ok');
      expect(await freeze.isFrozen()).toBe(false);
    } finally {
      await load.stop();
    }
  });

  it('a fresh instance given the persisted record resumes exactly (crash recovery)', async () => {
    let saved: InDatabaseFreezeRecord | undefined;
    const options = { connection: botConnection(), method: 'read-only-roles' as const, roles: ['app_legacy'], logger };
    await new InDatabaseFreeze({ ...options, onRecord: (r) => void (saved = r) }).freeze();
    expect(await roleSetting('app_legacy')).toEqual(['default_transaction_read_only=on']);
    const recovered = new InDatabaseFreeze({ ...options, record: JSON.parse(JSON.stringify(saved)) });
    expect(await recovered.isFrozen()).toBe(true);
    await recovered.resume();
    expect(await roleSetting('app_legacy')).toEqual(['default_transaction_read_only=off']);
  });

  it('refuses superusers and the bot’s own role with a clear message, changing nothing', async () => {
    for (const role of ['app_admin', cluster.user]) {
      const freeze = new InDatabaseFreeze({ connection: botConnection(), method: 'read-only-roles', roles: ['app_writer', role], logger });
      const error = await freeze.freeze().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CodedError);
      expect((error as CodedError).code).toBe(ErrorCode.FreezeFailed);
      expect((error as CodedError).message).toContain('superuser');
    }
    expect(await roleSetting('app_writer')).toBeNull();
    const missing = new InDatabaseFreeze({ connection: botConnection(), method: 'read-only-roles', roles: ['nobody'], logger });
    await expect(missing.freeze()).rejects.toThrow(/role "nobody" does not exist/);
  });

  it('read-only database: refuses while a role setting would override it, then freezes and undoes', async () => {
    const freeze = new InDatabaseFreeze({ connection: botConnection(), method: 'read-only-database', logger });
    await expect(freeze.freeze()).rejects.toThrow(/role\(s\) app_legacy have their own default_transaction_read_only/);
    await cluster.query('ALTER ROLE app_legacy RESET default_transaction_read_only');
    try {
      await freeze.freeze();
      expect(await tryWrite('app_writer', 'db-frozen')).toBe('25006');
      expect(await tryWrite('app_legacy', 'db-frozen-2')).toBe('25006');
      await freeze.resume();
      expect(await tryWrite('app_writer', 'db-after')).toBe('ok');
      const left = await cluster.query("SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = 'orders'");
      expect(left).toEqual([]);
    } finally {
      await cluster.query('ALTER ROLE app_legacy SET default_transaction_read_only = off');
    }
  });
});
