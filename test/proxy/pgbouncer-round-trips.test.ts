/**
 * Nothing slow inside the freeze, on a real PgBouncer 1.18 in front of two clusters: after prepare(),
 * freeze → repoint → resume opens no admin connection and sends two commands per step (the drain is
 * confirmed by PAUSE's answer plus one SHOW DATABASES, not a poll loop). The admin connections and
 * commands are counted by spying on pg's Client (a third-party class, called through), and checked
 * against PgBouncer's own SHOW CLIENTS / SHOW SERVERS. RELOAD and its SHOW DATABASES leave together
 * (pg's pipeline mode), seen by stopping PgBouncer (SIGSTOP) while the repoint is under way; a repoint
 * staged by prepare(to) is a rename of the file written before the freeze.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CodedError, ErrorCode } from '../../src/errors.js';
import { PgBouncerAdmin } from '../../src/adapters/proxy/pgbouncer.js';
import { Secret } from '../../src/secret.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';
import { startPgBouncer, type PgBouncer } from '../support/pgbouncer.js';
import { startProxyWriteLoad, WRITES_TABLE } from '../support/proxy-write-load.js';
import { memoryLogger, sleep, until } from './helpers.js';

/** The admin console commands and connections pg sends or opens from now on (clients of the `pgbouncer` database only). */
function spyOnAdmin() {
  const connect = vi.spyOn(pg.Client.prototype, 'connect');
  const query = vi.spyOn(pg.Client.prototype, 'query');
  const onConsole = (client: unknown) => (client as pg.Client).database === 'pgbouncer';
  return {
    commands: () => query.mock.calls.filter((_, i) => onConsole(query.mock.contexts[i])).map((args) => String(args[0])),
    connections: () => connect.mock.contexts.filter(onConsole).length,
    clear() {
      connect.mockClear();
      query.mockClear();
    },
  };
}

describe('PgBouncer freeze → repoint → resume on warm admin connections (real PgBouncer 1.18)', () => {
  let source: Cluster;
  let target: Cluster;
  let bouncer: PgBouncer;
  const { logger } = memoryLogger();

  const driver = (b: PgBouncer, pauseTimeoutSeconds = 5) =>
    new PgBouncerAdmin({
      admin: { host: b.host, port: b.port, user: b.adminUser, password: new Secret(b.adminPassword) },
      database: 'orders',
      databasesFile: b.databasesFile,
      pauseTimeoutSeconds,
      logger,
    });
  const sourceEndpoint = () => ({ host: source.host, port: source.port, database: 'orders' });
  const targetEndpoint = () => ({ host: target.host, port: target.port, database: 'orders' });
  const show = async (b: PgBouncer, what: 'CLIENTS' | 'SERVERS') => {
    const console_ = await b.admin();
    try {
      return (await console_.query(`SHOW ${what}`)).rows as Record<string, unknown>[];
    } finally {
      await console_.end();
    }
  };

  beforeAll(async () => {
    [source, target] = await Promise.all([startCluster({ databases: ['orders'] }), startCluster({ databases: ['orders'] })]);
    await Promise.all([source.query(WRITES_TABLE, [], 'orders'), target.query(WRITES_TABLE, [], 'orders')]);
    bouncer = await startPgBouncer({ databases: { orders: { ...sourceEndpoint(), dbname: 'orders' } } });
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  afterAll(async () => {
    await bouncer?.stop();
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('after prepare(): no admin connection opened, and PAUSE + 1 check, RELOAD + 1 check, RESUME + 1 check', async () => {
    const admin = driver(bouncer);
    const load = startProxyWriteLoad({ connectionString: bouncer.connectionString('orders'), workers: 4, maxDurationMs: 20_000 });
    // A transaction open when PAUSE arrives: PAUSE answers only once it committed.
    const long = new pg.Client({ connectionString: bouncer.connectionString('orders') });
    long.on('error', () => undefined);
    await long.connect();
    try {
      await load.waitForWrites(50);
      await admin.prepare();
      const ours = (await show(bouncer, 'CLIENTS')).filter((c) => c.database === 'pgbouncer' && c.application_name === 'pgcutover');
      expect(ours).toHaveLength(2); // the pauser and the checker, open before the freeze

      await long.query('BEGIN');
      await long.query("INSERT INTO writes (id, port) VALUES ('open-at-pause', inet_server_port())");
      let committedAt = 0;
      const commit = sleep(300).then(async () => {
        await long.query('COMMIT');
        committedAt = Date.now();
      });
      const spy = spyOnAdmin();
      await admin.freeze();
      const frozenAt = Date.now();
      expect(spy.commands()).toEqual(['PAUSE orders', 'SHOW DATABASES']); // no drain poll
      await commit;
      expect(committedAt).toBeGreaterThan(0);
      expect(committedAt).toBeLessThanOrEqual(frozenAt);
      expect((await show(bouncer, 'SERVERS')).filter((s) => s.database === 'orders')).toEqual([]);
      const held = load.acked.length;

      spy.clear();
      await admin.repoint(targetEndpoint());
      expect(spy.commands()).toEqual(['RELOAD', 'SHOW DATABASES']);
      expect(load.acked.length).toBe(held);

      spy.clear();
      await admin.resume();
      expect(spy.commands()).toEqual(['RESUME orders', 'SHOW DATABASES']);
      expect(spy.connections()).toBe(0);

      await load.waitForWrites(50);
      await load.stop();
      expect(load.errors).toEqual([]);
      const after = (await show(bouncer, 'CLIENTS')).filter((c) => c.database === 'pgbouncer' && c.application_name === 'pgcutover');
      expect(after.map((c) => c.ptr).sort()).toEqual(ours.map((c) => c.ptr).sort()); // the same two connections
    } finally {
      await load.stop();
      await long.end();
      await admin.close();
      const console_ = await bouncer.admin();
      await console_.query('RESUME orders').catch(() => undefined);
      await console_.end();
      const back = driver(bouncer);
      await back.repoint(sourceEndpoint()).catch(() => undefined);
      await back.close();
    }
    // close() ended them.
    await sleep(100);
    expect((await show(bouncer, 'CLIENTS')).filter((c) => c.application_name === 'pgcutover')).toEqual([]);
  });

  it('without prepare(): the first freeze opens the two connections, later ones reuse them', async () => {
    const admin = driver(bouncer);
    try {
      const spy = spyOnAdmin();
      await admin.freeze();
      expect(spy.connections()).toBe(2);
      await admin.resume();
      spy.clear();
      await admin.freeze();
      await admin.resume();
      expect(spy.connections()).toBe(0);
      expect(spy.commands()).toEqual(['PAUSE orders', 'SHOW DATABASES', 'RESUME orders', 'SHOW DATABASES']);
    } finally {
      await admin.close();
    }
  });

  it('a PAUSE answered with WAIT_CLOSE (the sticky WAIT_CLOSE bug) is refused and resumed, not taken for a drain', async () => {
    // Its own PgBouncer: the bug sticks until a restart.
    const sticky = await startPgBouncer({ databases: { orders: { ...sourceEndpoint(), dbname: 'orders' } } });
    const admin = driver(sticky);
    const long = new pg.Client({ connectionString: sticky.connectionString('orders') });
    long.on('error', () => undefined);
    await long.connect();
    try {
      const console_ = await sticky.admin();
      await console_.query('WAIT_CLOSE orders');
      await console_.end();
      await long.query('BEGIN');
      await long.query("INSERT INTO writes (id, port) VALUES ('wait-close', inet_server_port())");
      const error = await admin.freeze().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CodedError);
      expect((error as CodedError).code).toBe(ErrorCode.FreezeFailed);
      expect((error as CodedError).message).toMatch(/answered PAUSE with "WAIT/); // pg cuts the tag at the underscore
      expect((await admin.inspect()).frozen).toBe(false);
      await long.query('COMMIT'); // the transaction was never disturbed
      expect(await source.query("SELECT id FROM writes WHERE id = 'wait-close'", [], 'orders')).toHaveLength(1);
    } finally {
      await long.end();
      await admin.close();
      await sticky.stop();
    }
  });
  describe('the repoint inside the freeze', () => {
    const file = () => bouncer.databasesFile;
    /** What the bot left beside the databases file (staged files, temp files, second names). */
    const leftovers = () => readdirSync(dirname(file())).filter((name) => name.includes('.pgcutover-'));
    const backToSource = async (admin: PgBouncerAdmin) => {
      await admin.close();
      writeFileSync(file(), bouncer.renderDatabases({ orders: { ...sourceEndpoint(), dbname: 'orders' } }));
      const console_ = await bouncer.admin();
      await console_.query('RELOAD');
      await console_.query('RESUME orders').catch(() => undefined);
      await console_.end();
    };

    /**
     * What `call` puts on the wire while PgBouncer is stopped (it answers nothing meanwhile: all of it
     * was sent without waiting for an answer), and what `call` ends with once PgBouncer runs again.
     */
    const sentWhileStopped = async (call: () => Promise<unknown>, count: number) => {
      // What pg writes to the socket (a third-party class, called through).
      const sent = vi.spyOn(pg.Connection.prototype, 'query');
      process.kill(bouncer.pid, 'SIGSTOP');
      let outcome: Promise<unknown>;
      try {
        outcome = call().catch((e: unknown) => e);
        await until(`${count} commands on the wire`, () => sent.mock.calls.length >= count, 5000);
      } finally {
        process.kill(bouncer.pid, 'SIGCONT');
      }
      const texts = sent.mock.calls.map(([text]) => text);
      sent.mockRestore();
      return { texts, outcome: await outcome };
    };
    /** A key PgBouncer rejects on a database line (sslmode is global only): RELOAD answers RELOAD anyway. */
    const brokenLine = () => `orders = host=${target.host} port=${target.port} dbname=orders sslmode=require\n`;

    it('sends RELOAD and SHOW DATABASES together; a line PgBouncer rejects is still caught and the previous file put back', async () => {
      const admin = driver(bouncer);
      try {
        await admin.freeze();
        const repointed = await sentWhileStopped(() => admin.repoint(targetEndpoint()), 2);
        expect(repointed).toEqual({ texts: ['RELOAD', 'SHOW DATABASES'], outcome: undefined });
        expect(await admin.inspect()).toMatchObject({ pointsTo: targetEndpoint(), frozen: true });

        writeFileSync(file(), brokenLine());
        const error = await admin.repoint(sourceEndpoint()).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(CodedError);
        expect((error as CodedError).code).toBe(ErrorCode.ProxyVerifyFailed);
        expect(readFileSync(file(), 'utf8')).toBe(brokenLine());
        expect(await admin.inspect()).toMatchObject({ pointsTo: targetEndpoint(), frozen: true });
      } finally {
        process.kill(bouncer.pid, 'SIGCONT');
        await backToSource(admin);
      }
      expect(leftovers()).toEqual([]);
    });

    it('repointAndResume(): RELOAD, SHOW DATABASES and RESUME leave together; a line PgBouncer rejects resumes writes where it still points', async () => {
      const admin = driver(bouncer);
      try {
        await admin.freeze();
        const switched = await sentWhileStopped(() => admin.repointAndResume(targetEndpoint()), 3);
        expect(switched).toEqual({ texts: ['RELOAD', 'SHOW DATABASES', 'RESUME orders'], outcome: undefined });
        expect(await admin.inspect()).toMatchObject({ pointsTo: targetEndpoint(), frozen: false });

        await admin.freeze();
        writeFileSync(file(), brokenLine());
        const error = await admin.repointAndResume(sourceEndpoint()).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(CodedError);
        expect(error).toMatchObject({ code: ErrorCode.ProxyVerifyFailed, details: { resumed: true } });
        expect(readFileSync(file(), 'utf8')).toBe(brokenLine());
        expect(await admin.inspect()).toMatchObject({ pointsTo: targetEndpoint(), frozen: false });
      } finally {
        process.kill(bouncer.pid, 'SIGCONT');
        await backToSource(admin);
      }
      expect(leftovers()).toEqual([]);
    });

    it('prepare(to) writes the new file before the freeze; the repoint renames that very file into place', async () => {
      const admin = driver(bouncer);
      const before = readFileSync(file(), 'utf8');
      try {
        await admin.prepare(targetEndpoint());
        const staged = leftovers().find((name) => !name.endsWith('.previous'));
        expect(staged).toBeDefined();
        const stagedInode = statSync(`${dirname(file())}/${staged}`).ino;
        expect(readFileSync(file(), 'utf8')).toBe(before);
        expect((await admin.inspect()).pointsTo).toEqual(sourceEndpoint());

        await admin.freeze();
        await admin.repoint(targetEndpoint());
        expect(statSync(file()).ino).toBe(stagedInode);
        expect(await admin.inspect()).toMatchObject({ pointsTo: targetEndpoint(), frozen: true });
        await admin.resume();
        await admin.close();
        expect(leftovers()).toEqual([]);
      } finally {
        await backToSource(admin);
      }
    });

    it('a stage made stale (the file edited since, or another target) is not used: the repoint rewrites the file as it is now', async () => {
      const admin = driver(bouncer);
      try {
        await admin.prepare(targetEndpoint());
        // Someone edits the file after the stage: their edit must survive the repoint.
        writeFileSync(file(), `${readFileSync(file(), 'utf8')}; edited after the stage\n`);
        await admin.freeze();
        await admin.repoint(targetEndpoint());
        expect(readFileSync(file(), 'utf8')).toContain('; edited after the stage');
        expect(await admin.inspect()).toMatchObject({ pointsTo: targetEndpoint(), frozen: true });

        await admin.prepare(targetEndpoint());
        await admin.repoint(sourceEndpoint());
        expect(await admin.inspect()).toMatchObject({ pointsTo: sourceEndpoint(), frozen: true });
        await admin.resume();
        await admin.close();
        expect(leftovers()).toEqual([]);
      } finally {
        await backToSource(admin);
      }
    });
  });
});
