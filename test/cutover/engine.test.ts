/**
 * The cutover engine on real parts: two clusters with DigitalOcean's migration through the simulator
 * (real logical replication), a real PgBouncer driven by the real PgBouncerAdmin, the real fence and
 * lag probe, the store on PostgreSQL, and a client writing continuously through PgBouncer.
 * The tests run in order on one session: refused preconditions, budget expiry, a failed step, a crashed
 * executor recovered by another replica, the switch, the rollback.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CutoverEngine, type CutoverEngineDeps } from '../../src/app/cutover/engine.js';
import { FactRecorder } from '../../src/app/facts.js';
import type { Clock } from '../../src/domain/ports/clock.js';
import type { CutoverSettings } from '../../src/domain/ports/machines.js';
import type { Session } from '../../src/domain/session.js';
import { ErrorCode } from '../../src/errors.js';
import type { Endpoint } from '../../src/domain/ports/writes.js';
import { Secret } from '../../src/secret.js';
import { AuditLog } from '../../src/adapters/store/audit-log.js';
import { CutoverJournal } from '../../src/adapters/store/cutover-journal.js';
import { openPostgres, type Database } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import { captureLogger } from '../support/capture-log.js';
import { startCutoverRig, type CutoverRig } from '../support/cutover-rig.js';
import { startWriter, type Writer } from '../support/cutover-writer.js';
import { freePort } from '../support/free-port.js';
import { sleep, until } from '../support/wait.js';
import { standingSwitchApproval } from '../support/standing-approval.js';

const U_ALICE = { userId: 'U0ALICE' };

/** A clock whose timers never fire: the engine object of a process that was killed. */
const deadClock: Clock = { now: () => new Date(), setTimer: () => ({ cancel: () => undefined }) };

describe('the cutover engine on real replication and a real PgBouncer', () => {
  const { logger } = captureLogger('debug');
  let rig: CutoverRig;
  const dbs: Database[] = [];
  let store: { db: Database; sessions: SessionStore; audit: AuditLog; journal: CutoverJournal };
  let session: Session;
  let approved = false;
  let writer: Writer | undefined;

  const openStore = async () => {
    const db = openPostgres(new Secret(rig.storeUrl), logger);
    dbs.push(db);
    return { db, sessions: new SessionStore(db), audit: new AuditLog(db), journal: new CutoverJournal(db) };
  };
  const approvals = standingSwitchApproval(() => approved);
  const engine = (
    s: typeof store,
    overrides: { settings?: Partial<CutoverSettings>; target?: Endpoint; clock?: Clock; inDatabaseFreeze?: boolean } = {},
  ) => {
    const deps: CutoverEngineDeps = {
      sessions: s.sessions,
      journal: s.journal,
      approvals,
      lock: { withTryLock: (key, work) => s.db.withTryAdvisoryLock(key, work) },
      facts: new FactRecorder(s.audit, rig.listener, logger),
      log: logger,
      machines: (sess) => rig.machines(sess, overrides),
      lag: async (sess) => {
        const m = await rig.machines(sess, overrides);
        try {
          return await m.lag.measure();
        } finally {
          await m.close();
        }
      },
      approvalPollMs: 50,
      ...(overrides.clock ? { clock: overrides.clock } : {}),
    };
    return new CutoverEngine(deps);
  };
  const ref = async () => {
    session = await store.sessions.require(session.id);
    return { sessionId: session.id, expectedVersion: session.version };
  };
  const paused = async () => (await inspectProxy()).frozen;
  const inspectProxy = async () => {
    const m = await rig.machines(session);
    try {
      if (!m.routing) throw new Error('proxy expected');
      return await m.routing.router.inspect();
    } finally {
      await m.close();
    }
  };
  const startLoad = (prefix: string) => {
    writer = startWriter(rig.bouncer.connectionString('orders'), { prefix, workers: 8 });
    return writer;
  };

  beforeAll(async () => {
    rig = await startCutoverRig(logger);
    store = await openStore();
    await migrate(store.db);
    session = await store.sessions.create({ channelId: 'C0CUTOVER', profile: 'orders', strategy: 'proxy', startedBy: U_ALICE.userId });
  }, 120_000);

  afterAll(async () => {
    await writer?.stop().catch(() => undefined);
    for (const db of dbs) await Promise.race([db.close().catch(() => undefined), sleep(2000)]);
    await rig?.stop();
  });

  it('starts the migration: the session syncs, with DO’s migration id', async () => {
    const updated = await engine(store).startMigration(await ref(), U_ALICE);
    expect(updated.state).toBe('syncing');
    expect(updated.doMigrationId).toMatch(/.+/);
    const lag = await engine(store).lag(session.id);
    expect(lag.known).toBe(true);
    const plan = await engine(store).plan(session);
    expect(plan.map((s) => s.name)).toContain('Prove the fence');
  });

  it('refuses to freeze when the target is not reachable through the proxy: nothing is frozen', async () => {
    const dead = { ...rig.targetEndpoint, port: await freePort() };
    const eng = engine(store, { target: dead });
    await expect(eng.freeze(await ref(), U_ALICE)).rejects.toMatchObject({ code: ErrorCode.PreflightFailed });
    expect((await store.sessions.require(session.id)).state).toBe('syncing');
    expect(await paused()).toBe(false);
    const entries = await store.journal.entries(session.id);
    expect(entries.map((e) => `${e.step}:${e.event}`)).toEqual(['preconditions:started', 'preconditions:failed']);
  });

  it('resumes writes on the source by itself when the freeze budget runs out, and tells the channel', async () => {
    const load = startLoad('budget');
    await sleep(300);
    approved = false;
    const eng = engine(store, { settings: { freezeBudgetSeconds: 1.5 } });
    const frozen = await eng.freeze(await ref(), U_ALICE);
    expect(frozen.state).toBe('frozen');
    expect(await paused()).toBe(true);
    await until('writes resumed on the source', async () => (await store.sessions.require(session.id)).state === 'syncing', 10_000);
    expect(await paused()).toBe(false);
    await sleep(300);
    const result = await load.stop();
    expect(result.errors).toBe(0);
    expect(load.acked.every((a) => a.port === rig.source.port)).toBe(true);
    expect(rig.notes.some((n) => n.level === 'warning' && /budget of 1.5 s ran out/.test(n.text))).toBe(true);
    const attempt = await store.journal.latestCutover(session.id);
    expect(attempt).toMatchObject({ resumedOn: 'source', outcome: 'resumed on source' });
    const held = (attempt?.resumedAt?.getTime() ?? 0) - (attempt?.frozenAt?.getTime() ?? 0);
    expect(held).toBeGreaterThanOrEqual(1400);
    console.info(`budget expiry: frozen ${held} ms, ${result.acked} writes, ${result.errors} errors, max latency ${result.maxLatencyMs} ms`);
  });

  it('refuses before writes stop when the target cannot take the sequences (they are pushed ahead while syncing): nothing frozen', async () => {
    await rig.targetPool.query('DROP SEQUENCE invoice_no');
    const load = startLoad('failing');
    await sleep(300);
    approved = true;
    try {
      await expect(engine(store).freeze(await ref(), U_ALICE)).rejects.toMatchObject({ code: ErrorCode.CutoverStepFailed });
    } finally {
      approved = false;
      await rig.targetPool.query('CREATE SEQUENCE invoice_no');
    }
    expect((await store.sessions.require(session.id)).state).toBe('syncing');
    expect(await paused()).toBe(false);
    expect((await inspectProxy()).pointsTo).toMatchObject({ port: rig.source.port });
    await sleep(200);
    const result = await load.stop();
    expect(result.errors).toBe(0);
    const steps = (await store.journal.entries(session.id)).map((e) => `${e.step}:${e.event}`);
    expect(steps.slice(-2)).toEqual(['preconditions:started', 'preconditions:failed']);
    expect(rig.notes.at(-1)?.text).toMatch(/Writes were not frozen: Setting the sequences on the target failed/);
  });

  it('one executor per session: a second replica is busy while the first holds the freeze; when the first dies, the second undoes it', async () => {
    const load = startLoad('crash');
    await sleep(300);
    approved = false;
    // Replica A's lock connection is one the test can cut like a crash would; same SQL as openPostgres.
    const lockConnection = new pg.Client({ connectionString: rig.storeUrl });
    lockConnection.on('error', () => undefined);
    await lockConnection.connect();
    const crashable: Database = {
      ...store.db,
      engine: 'postgres',
      query: (text, params) => store.db.query(text, params),
      exec: (script) => store.db.exec(script),
      transaction: (work) => store.db.transaction(work),
      close: () => store.db.close(),
      async withTryAdvisoryLock(key, work) {
        const { rows } = await lockConnection.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked', [key]);
        return rows[0]?.locked ? work() : undefined;
      },
    };
    const replicaA = engine({ ...store, db: crashable }, { clock: deadClock });
    const storeB = await openStore();
    const replicaB = engine(storeB);
    expect((await replicaA.freeze(await ref(), U_ALICE)).state).toBe('frozen');
    await expect(replicaB.switchover(await ref(), U_ALICE)).rejects.toMatchObject({ code: ErrorCode.ExecutorBusy });
    expect((await replicaB.recover()).map((o) => o.result)).toEqual(['busy']);
    expect(await paused()).toBe(true);
    // Replica A dies: its lock connection goes away (the server releases the lock); its timers never fire.
    const [{ pid } = { pid: 0 }] = (await lockConnection.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows;
    const killer = new pg.Client({ connectionString: rig.storeUrl });
    await killer.connect();
    await killer.query('SELECT pg_terminate_backend($1)', [pid]);
    await killer.end();
    const outcomes = await replicaB.recover();
    expect(outcomes).toMatchObject([{ result: 'applied', decision: { action: 'undo-freeze' } }]);
    expect((await storeB.sessions.require(session.id)).state).toBe('syncing');
    expect(await paused()).toBe(false);
    await sleep(200);
    const result = await load.stop();
    expect(result.errors).toBe(0);
    expect(rig.notes.at(-1)?.text).toMatch(/after a restart I found writes frozen/i);
    store = storeB;
  });

  it('switches under continuous writes through PgBouncer: no failed write, every acknowledged write on the target, no sequence collision', async () => {
    const load = startLoad('switch');
    await sleep(1000);
    approved = true; // gate 2 granted ahead of time: the switch runs as soon as the fence is reached
    const eng = engine(store);
    const switched = await eng.freeze(await ref(), U_ALICE);
    expect(switched.state).toBe('switched');
    await sleep(1000);
    const result = await load.stop();
    const attempt = await store.journal.latestCutover(session.id);
    const frozenMs = (attempt?.resumedAt?.getTime() ?? 0) - (attempt?.frozenAt?.getTime() ?? 0);
    console.info(
      `switch: frozen ${frozenMs} ms, writes held ${attempt?.writesHeld}, lag at freeze ${JSON.stringify(attempt?.lagAtFreeze)}, ` +
        `fence ${JSON.stringify(attempt?.fence)}, ${result.acked} writes in ${result.seconds.toFixed(1)} s (${result.perSecond}/s), ` +
        `${result.errors} errors, max write latency ${result.maxLatencyMs} ms`,
    );
    expect(result.errors).toBe(0);
    // Outcomes only: how fast the freeze and the writer are is for bench/, not for a loaded CI machine.
    expect(frozenMs).toBeGreaterThan(0);
    const onTarget = load.acked.filter((a) => a.port === rig.target.port);
    const onSource = load.acked.filter((a) => a.port === rig.source.port);
    expect(onTarget.length).toBeGreaterThan(0);
    expect(onSource.length).toBeGreaterThan(0);
    // Every acknowledged write of every phase is on the target.
    const { rows } = await rig.targetPool.query<{ id: string }>('SELECT id FROM writes');
    const ids = new Set(rows.map((r) => r.id));
    const missing = load.acked.filter((a) => !ids.has(a.id));
    expect(missing).toEqual([]);
    // New rows on the target took sequence values above everything the source handed out.
    const maxSource = Math.max(...onSource.map((a) => a.n));
    expect(Math.min(...onTarget.map((a) => a.n))).toBeGreaterThan(maxSource);
    expect(await paused()).toBe(false);
    expect((await inspectProxy()).pointsTo).toMatchObject({ port: rig.target.port });
    expect(attempt).toMatchObject({ resumedOn: 'target', outcome: 'switched', approvals: { switch: { aheadOfTime: true } } });
  });

  it('connection-parameters strategy: freezes in the source database, fences, stops the migration, hands out the target with the password masked', async () => {
    // Before the rollback, which stops the migration this session shares with the proxy one.
    const proxySession = session;
    const migrationId = session.doMigrationId;
    let params = await store.sessions.create({ channelId: 'C0PARAMS', profile: 'catalog', strategy: 'connection-parameters', startedBy: U_ALICE.userId });
    params = await store.sessions.transition(params.id, params.version, 'migration_started', { doMigrationId: migrationId });
    session = params;
    approved = true;
    // The application's own role (a superuser is never held, so the rig's cannot show the freeze).
    await rig.source.query("CREATE ROLE catalog_app LOGIN PASSWORD 'catalog-app-pw'");
    await rig.source.query('GRANT INSERT ON writes TO catalog_app', [], 'orders');
    const eng = engine(store, { settings: { strategy: 'connection-parameters', freezeMethod: 'read-only-database' }, inDatabaseFreeze: true });
    const switched = await eng.freeze(await ref(), U_ALICE);
    expect(switched.state).toBe('switched');
    const steps = (await store.journal.entries(params.id)).filter((e) => e.event === 'done').map((e) => e.step);
    expect(steps).toEqual(['preconditions', 'freeze', 'fence', 'sequences', 'stop_migration', 'publish_parameters']);
    expect((await rig.doApi.getOnlineMigration(rig.settings.doClusterUuid))?.status).not.toMatch(/^(running|syncing)$/);
    const handout = rig.notes.find((n) => n.sessionId === params.id && /Point your application at/.test(n.text));
    expect(handout?.text).toContain(`port ${rig.target.port}`);
    expect(handout?.text).not.toContain(rig.target.password);
    // The source stays frozen: the application cannot even log in there to write.
    const app = new pg.Client({ host: rig.source.host, port: rig.source.port, user: 'catalog_app', password: 'catalog-app-pw', database: 'orders' });
    app.on('error', () => undefined);
    await expect(app.connect()).rejects.toThrow(/not permitted to log in/);
    session = proxySession;
  });

  it('never switches twice, and rolls back on request saying target writes are not on the source (this rig does not replicate back)', async () => {
    await expect(engine(store).switchover(await ref(), U_ALICE)).rejects.toMatchObject({ code: ErrorCode.InvalidTransition });
    const rolled = await engine(store).rollback(await ref(), U_ALICE);
    expect(rolled.state).toBe('rolled_back');
    expect((await inspectProxy()).pointsTo).toMatchObject({ port: rig.source.port });
    expect(await paused()).toBe(false);
    expect(rig.notes.at(-1)?.text).toMatch(/NOT on the source/);
    const client = new pg.Client({ connectionString: rig.bouncer.connectionString('orders') });
    await client.connect();
    const { rows } = await client.query<{ port: number }>('SELECT inet_server_port() AS port');
    await client.end();
    expect(rows[0]?.port).toBe(rig.source.port);
  });
});
