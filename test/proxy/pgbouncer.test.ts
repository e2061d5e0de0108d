/**
 * The PgBouncer driver against a real PgBouncer 1.18 in front of two real clusters, with a client
 * writing continuously through it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodedError, ErrorCode } from '../../src/errors.js';
import { PgBouncerAdmin } from '../../src/adapters/proxy/pgbouncer.js';
import { parseConnString, renderConnString, replaceDatabaseLine } from '../../src/adapters/proxy/pgbouncer-databases-file.js';
import { Secret } from '../../src/secret.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';
import { startPgBouncer, type PgBouncer } from '../support/pgbouncer.js';
import { startProxyWriteLoad, WRITES_TABLE } from '../support/proxy-write-load.js';
import { memoryLogger, sleep } from './helpers.js';

describe('PgBouncer driver (real PgBouncer 1.18, two clusters)', () => {
  let source: Cluster;
  let target: Cluster;
  let bouncer: PgBouncer;
  const { logger, output } = memoryLogger();

  const driver = (overrides: { database?: string; pauseTimeoutSeconds?: number } = {}) =>
    new PgBouncerAdmin({
      admin: { host: bouncer.host, port: bouncer.port, user: bouncer.adminUser, password: new Secret(bouncer.adminPassword) },
      database: overrides.database ?? 'orders',
      databasesFile: bouncer.databasesFile,
      pauseTimeoutSeconds: overrides.pauseTimeoutSeconds ?? 5,
      logger,
    });
  const sourceEndpoint = () => ({ host: source.host, port: source.port, database: 'orders' });
  const targetEndpoint = () => ({ host: target.host, port: target.port, database: 'orders' });
  const pointAtSource = async () => {
    writeFileSync(bouncer.databasesFile, bouncer.renderDatabases({ orders: { ...sourceEndpoint(), dbname: 'orders' } }));
    const admin = await bouncer.admin();
    await admin.query('RELOAD');
    await admin.query('RESUME orders').catch(() => undefined);
    await admin.end();
  };

  beforeAll(async () => {
    [source, target] = await Promise.all([
      startCluster({ databases: ['orders'] }),
      startCluster({ databases: ['orders'] }),
    ]);
    await Promise.all([source.query(WRITES_TABLE, [], 'orders'), target.query(WRITES_TABLE, [], 'orders')]);
    bouncer = await startPgBouncer({ databases: { orders: { ...sourceEndpoint(), dbname: 'orders' } } });
  });
  afterAll(async () => {
    await bouncer?.stop();
    await Promise.all([source?.stop(), target?.stop()]);
    // Never a password in the logs.
    expect(output()).not.toContain(bouncer.adminPassword);
    expect(output()).not.toContain(source.password);
  });

  it('freeze → repoint → resume under continuous writes: zero client errors, every later write on the target', async () => {
    const admin = driver();
    const load = startProxyWriteLoad({ connectionString: bouncer.connectionString('orders'), workers: 4, maxDurationMs: 20_000 });
    try {
      await load.waitForWrites(100);
      const frozenAt = Date.now();
      await admin.freeze();
      const pausedIn = Date.now() - frozenAt;
      await admin.freeze(); // idempotent
      const whileFrozen = load.acked.length;
      await sleep(300); // the engine would wait for lag 0 and copy sequences here
      expect(load.acked.length).toBe(whileFrozen); // nothing gets through while paused
      await admin.repoint(targetEndpoint());
      const status = await admin.inspect();
      expect(status).toMatchObject({ pointsTo: targetEndpoint(), frozen: true, healthy: true });
      const resumeAt = Date.now();
      await admin.resume();
      await admin.resume(); // idempotent: "is not paused" is absorbed
      const resumedIn = Date.now() - resumeAt;
      await load.waitForWrites(200);
      await load.stop();

      const heldWrites = load.acked.filter((w) => w.sentAt < resumeAt && w.ackedAt >= resumeAt);
      const after = load.acked.filter((w) => w.sentAt >= resumeAt);
      console.info(
        `pgbouncer freeze→resume: PAUSE drained in ${pausedIn} ms, frozen for ${resumeAt + resumedIn - frozenAt} ms, ` +
          `${heldWrites.length} writes held and then completed, max write latency ${load.maxLatencySince(frozenAt)} ms, ` +
          `${load.errors.length} errors, ${load.acked.length} writes total`,
      );
      expect(load.errors).toEqual([]);
      expect(heldWrites.length).toBeGreaterThan(0);
      expect(heldWrites.every((w) => w.port === target.port)).toBe(true);
      expect(after.length).toBeGreaterThan(0);
      expect(after.every((w) => w.port === target.port)).toBe(true);
      // Every acknowledged write is in the database that reported it, and nowhere else.
      const ids = async (c: Cluster) =>
        new Set((await c.query<{ id: string }>('SELECT id FROM writes', [], 'orders')).map((r) => r.id));
      const [onSource, onTarget] = await Promise.all([ids(source), ids(target)]);
      for (const w of load.acked) {
        const [home, other] = w.port === target.port ? [onTarget, onSource] : [onSource, onTarget];
        expect(home.has(w.id), w.id).toBe(true);
        expect(other.has(w.id), w.id).toBe(false);
      }
      expect(onSource.size + onTarget.size).toBe(load.acked.length);
      expect(load.acked.filter((w) => w.ackedAt > frozenAt + pausedIn && w.port === source.port)).toEqual([]);
    } finally {
      await load.stop();
      await admin.close();
      await pointAtSource();
    }
  });

  it('detects a bad databases file after RELOAD and puts the previous file back', async () => {
    const admin = driver();
    // Someone hand-edited the line with a key PgBouncer rejects (sslmode is global only): any reload now fails.
    const broken = 'orders = host=127.0.0.1 port=' + source.port + ' dbname=orders sslmode=require\n';
    writeFileSync(bouncer.databasesFile, broken);
    try {
      const error = await admin.repoint(targetEndpoint()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CodedError);
      expect((error as CodedError).code).toBe(ErrorCode.ProxyVerifyFailed);
      expect((error as CodedError).message).toContain('put back');
      expect(readFileSync(bouncer.databasesFile, 'utf8')).toBe(broken);
      expect((await admin.inspect()).pointsTo).toEqual(sourceEndpoint());
      const client = new pg.Client({ connectionString: bouncer.connectionString('orders') });
      await client.connect();
      const { rows } = await client.query('SELECT inet_server_port() AS port');
      await client.end();
      expect(rows[0].port).toBe(source.port);
    } finally {
      await admin.close();
      await pointAtSource();
    }
  });

  it('resumes a pause left by a crashed bot from a fresh driver; the held query then completes', async () => {
    const first = driver();
    await first.freeze();
    await first.close(); // the bot dies: its admin connections are gone, the pause is not
    const client = new pg.Client({ connectionString: bouncer.connectionString('orders') });
    client.on('error', () => undefined);
    await client.connect();
    try {
      let done = false;
      const held = client.query('SELECT inet_server_port() AS port').then((r) => {
        done = true;
        return r.rows[0].port as number;
      });
      await sleep(300);
      expect(done).toBe(false);

      const recovered = driver(); // after restart
      expect((await recovered.inspect()).frozen).toBe(true);
      expect((await recovered.drainState()).clientsWaiting).toBeGreaterThanOrEqual(1);
      await recovered.resume();
      expect(await held).toBe(source.port);
      expect((await recovered.inspect()).frozen).toBe(false);
      await recovered.close();
    } finally {
      await client.end();
    }
  });

  it('abandons a PAUSE that cannot drain (open transaction): RESUME from a second connection, nothing hangs', async () => {
    const admin = driver({ pauseTimeoutSeconds: 1 });
    const long = new pg.Client({ connectionString: bouncer.connectionString('orders') });
    long.on('error', () => undefined);
    await long.connect();
    try {
      await long.query('BEGIN');
      await long.query("INSERT INTO writes (id, port) VALUES ('long-tx', inet_server_port())");
      const error = await admin.freeze().catch((e: unknown) => e);
      expect((error as CodedError).code).toBe(ErrorCode.FreezeFailed);
      expect((error as CodedError).message).toMatch(/did not drain within 1 s/);
      expect((await admin.inspect()).frozen).toBe(false);
      await long.query('COMMIT'); // the transaction was never disturbed
      const other = new pg.Client({ connectionString: bouncer.connectionString('orders') });
      await other.connect();
      const { rows } = await other.query("SELECT count(*)::int AS n FROM writes WHERE id = 'long-tx'");
      await other.end();
      expect(rows[0].n).toBe(1);
      await admin.freeze(); // and a later freeze works (no PAUSE left hanging)
      await admin.resume();
    } finally {
      await long.end();
      await admin.close();
    }
  });

  it('preflight: transaction pooling, the include file, and a real login to the target through a probe entry', async () => {
    const admin = driver();
    const checks = await admin.preflight({ ...targetEndpoint(), user: target.user, password: new Secret(target.password) });
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks.find((c) => c.name === 'target through proxy')?.detail).toContain(`port ${target.port}`);
    // The probe entry is gone again.
    expect(readFileSync(bouncer.databasesFile, 'utf8')).not.toContain('probe');
    expect((await admin.inspect()).pointsTo).toEqual(sourceEndpoint());
    await admin.close();
  });

  it('refuses to pause a session-pooled database, and preflight says why', async () => {
    writeFileSync(
      bouncer.databasesFile,
      `${bouncer.renderDatabases({ orders: { ...sourceEndpoint(), dbname: 'orders' } })}sess = host=127.0.0.1 port=${source.port} dbname=orders pool_mode=session\n`,
    );
    const console_ = await bouncer.admin();
    await console_.query('RELOAD');
    await console_.end();
    const admin = driver({ database: 'sess' });
    try {
      const checks = await admin.preflight();
      expect(checks.find((c) => c.name === 'pooling mode')).toMatchObject({ ok: false, detail: expect.stringContaining('session') });
      const error = await admin.freeze().catch((e: unknown) => e);
      expect((error as CodedError).code).toBe(ErrorCode.FreezeFailed);
      expect((error as CodedError).message).toContain('session pooling');
      expect((await admin.inspect()).frozen).toBe(false);
    } finally {
      await admin.close();
      await pointAtSource();
    }
  });

  it('rejects database names that could inject into the admin console', () => {
    expect(() => driver({ database: 'orders; SHUTDOWN' })).toThrow(/A-Za-z0-9_/);
  });

  it('keeps the other keys of the line and quotes values when rewriting it', () => {
    const before = parseConnString("host=old port=5432 dbname=orders pool_size=7 connect_query='SELECT ''x'''");
    expect(before.get('connect_query')).toBe("SELECT 'x'");
    const line = renderConnString(before, {
      host: 'db.example.com',
      port: 25060,
      database: 'orders',
      user: 'doadmin',
      password: new Secret("p w'd"),
    });
    expect(line).toBe(
      "host=db.example.com port=25060 dbname=orders pool_size=7 connect_query='SELECT ''x''' user=doadmin password='p w''d'",
    );
    expect(parseConnString(line).get('password')).toBe("p w'd");
  });

  it('restores the original line exactly when repointing back, never keeping the target credentials', () => {
    const original = 'orders = host=10.0.0.5 port=5432 dbname=orders pool_size=7\nother = host=x dbname=other\n';
    const target = { host: 'db.example.com', port: 25060, database: 'orders', user: 'doadmin', password: new Secret('do-pw') };
    const switched = replaceDatabaseLine(original, 'orders', target);
    expect(switched).toBe(
      '; pgcutover-original orders = host=10.0.0.5 port=5432 dbname=orders pool_size=7\n' +
        'orders = host=db.example.com port=25060 dbname=orders pool_size=7 user=doadmin password=do-pw\n' +
        'other = host=x dbname=other\n',
    );
    // A second switch (after a crash, say) keeps the first original, not the target line.
    expect(replaceDatabaseLine(switched, 'orders', target)).toBe(switched);
    const rolledBack = replaceDatabaseLine(switched, 'orders', { host: '10.0.0.5', port: 5432, database: 'orders' });
    expect(rolledBack).toBe(
      '; pgcutover-original orders = host=10.0.0.5 port=5432 dbname=orders pool_size=7\n' +
        'orders = host=10.0.0.5 port=5432 dbname=orders pool_size=7\n' +
        'other = host=x dbname=other\n',
    );
    expect(rolledBack).not.toContain('do-pw');
  });
});
