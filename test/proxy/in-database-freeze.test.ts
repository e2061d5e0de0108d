/**
 * The in-database write freeze on a real cluster with an application role writing continuously, and
 * that role trying every way around it: `BEGIN READ WRITE`, `SET default_transaction_read_only = off`,
 * `SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE`, from a new session and from one opened
 * before the freeze. All refused while frozen, all work after resume.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodedError, ErrorCode } from '../../src/errors.js';
import { InDatabaseFreeze, parseFreezeRecord, type InDatabaseFreezeRecord } from '../../src/adapters/proxy/in-database-freeze.js';
import { Secret } from '../../src/secret.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';
import { startProxyWriteLoad, WRITES_TABLE } from '../support/proxy-write-load.js';
import { memoryLogger, sleep } from './helpers.js';

/** The ways a client could turn a read-only default off, each ending in a committed INSERT. */
const BYPASSES: Record<string, (id: string) => string[]> = {
  'BEGIN READ WRITE': (id) => ['BEGIN READ WRITE', `INSERT INTO writes (id, port) VALUES ('${id}', 0)`, 'COMMIT'],
  'SET default_transaction_read_only = off': (id) => ['SET default_transaction_read_only = off', `INSERT INTO writes (id, port) VALUES ('${id}', 0)`],
  'SET SESSION CHARACTERISTICS': (id) => [
    'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
    `INSERT INTO writes (id, port) VALUES ('${id}', 0)`,
  ],
};

describe('in-database write freeze (real PostgreSQL)', () => {
  let cluster: Cluster;
  let seq = 0;
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
  const canLogin = async (role: string) =>
    (await cluster.query<{ rolcanlogin: boolean }>('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [role]))[0]?.rolcanlogin;
  const roleSetting = async (role: string) =>
    (
      await cluster.query<{ setconfig: string[] | null }>(
        'SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = $1 AND s.setdatabase = 0',
        [role],
      )
    )[0]?.setconfig ?? null;
  const codeOf = (error: unknown) => (error as { code?: string }).code ?? 'error';
  /** Runs statements in a session of `role` (a new one, or `held`); 'ok', or the SQLSTATE that stopped it. */
  const run = async (role: string, statements: string[], held?: pg.Client) => {
    const client = held ?? new pg.Client({ connectionString: appUrl(role) });
    client.on('error', () => undefined);
    try {
      if (!held) await client.connect();
      for (const sql of statements) await client.query(sql);
      return 'ok';
    } catch (error) {
      return codeOf(error);
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const tryWrite = (role: string) => run(role, [`INSERT INTO writes (id, port) VALUES ('w-${++seq}', inet_server_port())`]);
  /** Every bypass, from a new session and from one opened before the freeze (`open()` is called before it). */
  const bypassesAs = async (role: string, held: Record<string, pg.Client>) =>
    Object.fromEntries(
      await Promise.all(
        Object.entries(BYPASSES).flatMap(([name, statements]) => [
          run(role, statements(`b-${++seq}`)).then((r) => [`new session: ${name}`, r] as const),
          run(role, statements(`b-${++seq}`), held[name]).then((r) => [`open session: ${name}`, r] as const),
        ]),
      ),
    );
  const openSessions = async (role: string) => {
    const held: Record<string, pg.Client> = {};
    for (const name of Object.keys(BYPASSES)) {
      const client = new pg.Client({ connectionString: appUrl(role) });
      client.on('error', () => undefined);
      await client.connect();
      held[name] = client;
    }
    return held;
  };
  const all = (result: string) => Object.fromEntries(Object.keys(BYPASSES).flatMap((n) => [[`new session: ${n}`, result], [`open session: ${n}`, result]]));

  beforeAll(async () => {
    cluster = await startCluster({ databases: ['orders'] });
    await cluster.query(WRITES_TABLE, [], 'orders');
    await cluster.query('REVOKE ALL ON writes FROM PUBLIC', [], 'orders');
    for (const role of ['app_writer', 'app_legacy', 'app_reader', 'app_caller']) {
      await cluster.query(`CREATE ROLE ${role} LOGIN PASSWORD 'app-pw'`);
      await cluster.query(`GRANT SELECT ON writes TO ${role}`, [], 'orders');
    }
    await cluster.query('GRANT INSERT ON writes TO app_writer, app_legacy', [], 'orders');
    // A group role (cannot log in) whose login member writes with its privileges.
    await cluster.query("CREATE ROLE app_group NOLOGIN; CREATE ROLE app_member LOGIN PASSWORD 'app-pw' IN ROLE app_group");
    await cluster.query('GRANT INSERT, SELECT ON writes TO app_group', [], 'orders');
    // app_caller can only write through a SECURITY DEFINER function.
    await cluster.query(
      `CREATE FUNCTION record_write(id text) RETURNS void LANGUAGE sql SECURITY DEFINER AS $$ INSERT INTO writes (id, port) VALUES (id, 0) $$;
       ALTER FUNCTION record_write(text) OWNER TO app_writer;
       REVOKE EXECUTE ON FUNCTION record_write(text) FROM PUBLIC;
       GRANT EXECUTE ON FUNCTION record_write(text) TO app_caller;`,
      [],
      'orders',
    );
    // app_legacy had a setting of its own: the freeze must not depend on it nor change it.
    await cluster.query('ALTER ROLE app_legacy SET default_transaction_read_only = off');
    await cluster.query('CREATE ROLE app_admin LOGIN SUPERUSER');
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('read-only roles: no way around it while frozen (members too), and every way works again after resume', async () => {
    const records: InDatabaseFreezeRecord[] = [];
    const freeze = new InDatabaseFreeze({
      connection: botConnection(),
      method: 'read-only-roles',
      roles: ['app_writer', 'app_group'],
      onRecord: (r) => void records.push(JSON.parse(JSON.stringify(r)) as InDatabaseFreezeRecord),
      logger,
    });
    const load = startProxyWriteLoad({ connectionString: appUrl('app_writer'), workers: 3, maxDurationMs: 20_000 });
    try {
      await load.waitForWrites(50);
      const held = await openSessions('app_writer');
      await freeze.freeze();
      await freeze.freeze(); // idempotent; the record still holds what was there before the first freeze
      expect(records).toHaveLength(1);
      expect(records[0]?.locked).toEqual([
        { role: 'app_writer', login: true },
        { role: 'app_group', login: false },
        { role: 'app_member', login: true },
      ]);
      expect(await freeze.isFrozen()).toBe(true);

      const bypasses = await bypassesAs('app_writer', held);
      expect(Object.values(bypasses).filter((r) => r === 'ok')).toEqual([]);
      expect(bypasses['new session: BEGIN READ WRITE']).toBe('28000'); // role is not permitted to log in
      expect(await tryWrite('app_member')).toBe('28000');
      // The running writer was cut off and cannot come back: only errors now.
      const frozenSince = Date.now();
      await sleep(300);
      expect(load.acked.filter((w) => w.ackedAt > frozenSince)).toEqual([]);
      expect(load.errors.map((e) => e.code)).toContain('28000');
      // Roles not named are not touched.
      expect(await tryWrite('app_legacy')).toBe('ok');

      await freeze.resume();
      await freeze.resume(); // idempotent
      expect([await canLogin('app_writer'), await canLogin('app_group'), await canLogin('app_member')]).toEqual([true, false, true]);
      expect(await roleSetting('app_legacy')).toEqual(['default_transaction_read_only=off']);
      await load.waitForWrites(50); // the same writer recovers on its own
      expect(await bypassesAs('app_writer', await openSessions('app_writer'))).toEqual(all('ok'));
      expect(await tryWrite('app_member')).toBe('ok');
      expect(await freeze.isFrozen()).toBe(false);
    } finally {
      await load.stop();
    }
  });

  it('read-only database: locks out every role that can write there, however it can, and no reader', async () => {
    let record: InDatabaseFreezeRecord | undefined;
    const freeze = new InDatabaseFreeze({ connection: botConnection(), method: 'read-only-database', onRecord: (r) => void (record = r), logger });
    const held = await openSessions('app_legacy');
    await freeze.freeze();
    expect(record?.locked).toEqual([
      { role: 'app_caller', login: true }, // by its SECURITY DEFINER function
      { role: 'app_legacy', login: true },
      { role: 'app_member', login: true }, // through app_group
      { role: 'app_writer', login: true },
    ]);
    expect(Object.values(await bypassesAs('app_legacy', held)).filter((r) => r === 'ok')).toEqual([]);
    expect(await run('app_caller', [`SELECT record_write('via-definer-${++seq}')`])).toBe('28000');
    expect(await run('app_reader', ['SELECT count(*) FROM writes'])).toBe('ok');
    expect(await canLogin(cluster.user)).toBe(true);

    await freeze.resume();
    expect(await bypassesAs('app_legacy', await openSessions('app_legacy'))).toEqual(all('ok'));
    expect(await run('app_caller', [`SELECT record_write('via-definer-${++seq}')`])).toBe('ok');
  });

  it('a fresh instance given the persisted record resumes exactly (crash recovery)', async () => {
    let saved: InDatabaseFreezeRecord | undefined;
    const options = { connection: botConnection(), method: 'read-only-roles' as const, roles: ['app_legacy'], logger };
    await new InDatabaseFreeze({ ...options, onRecord: (r) => void (saved = r) }).freeze();
    expect(await canLogin('app_legacy')).toBe(false);
    const recovered = new InDatabaseFreeze({ ...options, record: parseFreezeRecord(JSON.stringify(saved)) });
    expect(await recovered.isFrozen()).toBe(true);
    await recovered.resume();
    expect(await canLogin('app_legacy')).toBe(true);
    expect(await tryWrite('app_legacy')).toBe('ok');
    // Without a record nothing was changed by us: resume changes nothing.
    await cluster.query('ALTER ROLE app_legacy NOLOGIN');
    await new InDatabaseFreeze(options).resume();
    expect(await canLogin('app_legacy')).toBe(false);
    await cluster.query('ALTER ROLE app_legacy LOGIN');
  });

  it('restores a record of the earlier read-only-default freeze exactly', async () => {
    await cluster.query('ALTER ROLE app_writer SET default_transaction_read_only = on');
    const legacy = parseFreezeRecord({
      method: 'read-only-roles',
      database: 'orders',
      frozenAt: new Date().toISOString(),
      previous: [{ role: 'app_writer', value: null }],
    });
    expect(legacy?.locked).toEqual([]);
    const freeze = new InDatabaseFreeze({ connection: botConnection(), method: 'read-only-roles', roles: ['app_writer'], ...(legacy ? { record: legacy } : {}), logger });
    expect(await freeze.isFrozen()).toBe(true);
    await freeze.resume();
    expect(await roleSetting('app_writer')).toBeNull();
    expect(await tryWrite('app_writer')).toBe('ok');
  });

  it('refuses superusers and the bot’s own role with a clear message, changing nothing', async () => {
    for (const role of ['app_admin', cluster.user]) {
      const freeze = new InDatabaseFreeze({ connection: botConnection(), method: 'read-only-roles', roles: ['app_writer', role], logger });
      const error = await freeze.freeze().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CodedError);
      expect((error as CodedError).code).toBe(ErrorCode.FreezeFailed);
      expect((error as CodedError).message).toContain('superuser');
    }
    expect(await canLogin('app_writer')).toBe(true);
    const missing = new InDatabaseFreeze({ connection: botConnection(), method: 'read-only-roles', roles: ['nobody'], logger });
    await expect(missing.freeze()).rejects.toThrow(/role "nobody" does not exist/);
  });
});
