/**
 * The three cutovers the cutover benchmark compares, each on a fresh rig (test/support/cutover-rig.ts):
 * the bot (the real engine, switch approved ahead of time, one freeze() call), a DBA's hand-written
 * pg script doing the same steps, and the raw PAUSE/RESUME floor. Plus the watcher that measures the
 * freeze the way PgBouncer itself shows it (SHOW DATABASES `paused`). Only the engine's public API and
 * the rig are used, so the bot's internals can change underneath.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { CutoverEngine } from '../src/app/cutover/engine.js';
import { FactRecorder } from '../src/app/facts.js';
import type { Logger } from '../src/log.js';
import { Secret } from '../src/secret.js';
import { AuditLog } from '../src/adapters/store/audit-log.js';
import { CutoverJournal } from '../src/adapters/store/cutover-journal.js';
import { openPostgres } from '../src/adapters/store/database.js';
import { migrate } from '../src/adapters/store/migrate.js';
import { SessionStore } from '../src/adapters/store/session-store.js';
import type { CutoverRig } from '../test/support/cutover-rig.js';
import { standingSwitchApproval } from '../test/support/standing-approval.js';

/** Our own fence table (not the bot's): created before the migration, so DO's schema copy brings it along. */
export const BENCH_FENCE = 'CREATE TABLE bench_fence (id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())';
const SEQUENCE_MARGIN = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Each call records the time since the previous one under `step` and returns all so far. */
const stopwatch = () => {
  const laps: Record<string, number> = {};
  let last = performance.now();
  return (step: string) => {
    const now = performance.now();
    laps[step] = now - last;
    last = now;
    return laps;
  };
};

/** A cutover ready to run: connections warm, replication flowing. `run` is the timed part. */
export interface Prepared {
  /** Where the writes end: the target after a switch, the source after the floor. */
  endsOn: 'source' | 'target';
  /** Resolves with how long each step took (ms), where the path can tell. */
  run(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/** Inserts a row on the source and waits until the target has it (replication flows end to end). */
export async function awaitReplication(rig: CutoverRig, id: string, timeoutMs = 30_000): Promise<void> {
  await rig.sourcePool.query('INSERT INTO bench_fence (id) VALUES ($1)', [id]);
  const deadline = Date.now() + timeoutMs;
  while ((await rig.targetPool.query('SELECT 1 FROM bench_fence WHERE id = $1', [id])).rowCount === 0) {
    if (Date.now() > deadline) throw new Error(`replication did not bring ${id} to the target in ${timeoutMs} ms`);
    await sleep(20);
  }
}

const connected = async (connectionString: string | pg.ClientConfig): Promise<pg.Client> => {
  const client = new pg.Client(connectionString);
  client.on('error', () => undefined);
  await client.connect();
  return client;
};

/** The bot's default path: the session syncs (DO's migration started by the engine), the switch is approved ahead of time. */
export async function prepareBot(rig: CutoverRig, logger: Logger): Promise<Prepared> {
  const db = openPostgres(new Secret(rig.storeUrl), logger);
  try {
    await migrate(db);
    const sessions = new SessionStore(db);
    const approvals = standingSwitchApproval(() => true);
    const journal = new CutoverJournal(db);
    const engine = new CutoverEngine({
      sessions,
      journal,
      approvals,
      lock: { withTryLock: (key, work) => db.withTryAdvisoryLock(key, work) },
      facts: new FactRecorder(new AuditLog(db), rig.listener, logger),
      log: logger,
      machines: (session) => rig.machines(session),
      lag: async (session) => {
        const m = await rig.machines(session);
        try {
          return await m.lag.measure();
        } finally {
          await m.close();
        }
      },
    });
    const actor = { userId: 'U0ALICE' };
    let session = await sessions.create({ channelId: 'C0BENCH', profile: 'orders', strategy: 'proxy', startedBy: actor.userId });
    session = await engine.startMigration({ sessionId: session.id, expectedVersion: session.version }, actor);
    const id = session.id;
    return {
      endsOn: 'target',
      async run() {
        const current = await sessions.require(id);
        const after = await engine.freeze({ sessionId: id, expectedVersion: current.version }, actor);
        if (after.state !== 'switched') throw new Error(`the bot ended in state ${after.state}, not switched`);
        // The run's own timing of each step inside the freeze (journaled after the resume).
        const attempt = (await journal.latestCutover(id))?.attempt;
        const laps: Record<string, number> = {};
        const entries = await journal.entries(id);
        for (const e of entries) {
          if (e.attempt === attempt && e.event === 'done' && typeof e.detail?.ms === 'number') laps[e.step] = e.detail.ms;
        }
        // The freeze step catches replication up before its PAUSE: shown apart, as the drain is what writes wait for.
        const caughtUp = entries.find((e) => e.attempt === attempt && e.step === 'freeze' && e.event === 'done')?.detail?.caughtUpMs;
        const waited = entries.find((e) => e.attempt === attempt && e.step === 'resume_target' && e.event === 'done')?.detail?.waitedMs;
        if (typeof waited === 'number') laps.resume_waited = waited;
        const { freeze, ...rest } = laps;
        const steps = typeof caughtUp === 'number' && freeze !== undefined ? { catch_up: caughtUp, pause: Math.round((freeze - caughtUp) * 10) / 10, ...rest } : laps;
        // The production path: the switch point read in the freeze, the target's writes flowing back after it.
        const back = entries.find((e) => e.attempt === attempt && e.step === 'replicate_back' && e.event === 'done');
        if (back?.detail?.replicateBack !== 'on') throw new Error(`the bot did not replicate back (${JSON.stringify(back?.detail ?? 'no replicate_back step')})`);
        return steps;
      },
      async close() {
        await engine.close().catch(() => undefined);
        await Promise.race([db.close().catch(() => undefined), sleep(2000)]);
      },
    };
  } catch (error) {
    await Promise.race([db.close().catch(() => undefined), sleep(2000)]);
    throw error;
  }
}

/**
 * A DBA's script with pg, connections opened before the freeze: PAUSE → fence row on the source, polled
 * on the target every ms → every sequence read on the source and setval'd on the target in one
 * statement each → rewrite the %include'd databases file + RELOAD → RESUME.
 */
export async function prepareBaseline(rig: CutoverRig): Promise<Prepared> {
  await rig.startMigration();
  const admin = await rig.bouncer.admin();
  const source = await connected(rig.source.connectionString('orders'));
  const target = await connected(rig.target.connectionString('orders'));
  // The rig runs synchronous_commit=off, where the fence commit would wait for the WAL writer (up to
  // 3 × wal_writer_delay) before the walsender may send it; production's default flushes at commit.
  await source.query("SET synchronous_commit = 'local'");
  let fences = 0;
  return {
    endsOn: 'target',
    async run() {
      const lap = stopwatch();
      await admin.query('PAUSE orders');
      lap('pause');
      const fence = `baseline-fence-${++fences}`;
      await source.query('INSERT INTO bench_fence (id) VALUES ($1)', [fence]);
      const deadline = Date.now() + 15_000;
      while ((await target.query('SELECT 1 FROM bench_fence WHERE id = $1', [fence])).rowCount === 0) {
        if (Date.now() > deadline) throw new Error('the baseline fence did not reach the target in 15 s');
        await sleep(1);
      }
      lap('fence');
      const { rows } = await source.query<{ name: string; value: string }>(
        `SELECT format('%I.%I', schemaname, sequencename) AS name, coalesce(last_value, start_value)::text AS value FROM pg_sequences`,
      );
      if (rows.length > 0) {
        const setvals = rows.map((r) => `setval(${pg.escapeLiteral(r.name)}, ${BigInt(r.value) + BigInt(SEQUENCE_MARGIN)})`);
        await target.query(`SELECT ${setvals.join(', ')}`);
      }
      lap('sequences');
      writeFileSync(
        rig.bouncer.databasesFile,
        rig.bouncer.renderDatabases({ orders: { host: rig.target.host, port: rig.target.port, dbname: 'orders' } }),
      );
      await admin.query('RELOAD');
      lap('repoint');
      await admin.query('RESUME orders');
      return lap('resume');
    },
    async close() {
      await Promise.all([admin, source, target].map((c) => c.end().catch(() => undefined)));
    },
  };
}

/** The floor: PAUSE then RESUME on a warm admin connection, nothing between; writes stay on the source. */
export async function prepareFloor(rig: CutoverRig): Promise<Prepared> {
  await rig.startMigration();
  const admin = await rig.bouncer.admin();
  return {
    endsOn: 'source',
    async run() {
      const lap = stopwatch();
      await admin.query('PAUSE orders');
      lap('pause');
      await admin.query('RESUME orders');
      return lap('resume');
    },
    async close() {
      await admin.end().catch(() => undefined);
    },
  };
}

/**
 * The freeze as PgBouncer logged it: from its last `PAUSE '<db>' command issued` line to the first
 * `RESUME '<db>' command issued` after it, each stamped by PgBouncer when it took the command (ms
 * resolution), so neither a poll interval nor a busy event loop is in the measure. Undefined when
 * the log does not show both.
 */
export function pauseInLog(logFile: string, database = 'orders'): number | undefined {
  const stamp = (line: string) => {
    const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) UTC /.exec(line);
    return m ? Date.parse(`${m[1]}T${m[2]}Z`) : undefined;
  };
  const lines = readFileSync(logFile, 'utf8').split('\n');
  const pauses = lines.flatMap((l, i) => (l.includes(`PAUSE '${database}' command issued`) ? [i] : []));
  const paused = pauses.at(-1);
  if (paused === undefined) return undefined;
  const resumed = lines.findIndex((l, i) => i > paused && l.includes(`RESUME '${database}' command issued`));
  const [from, to] = [stamp(lines[paused] ?? ''), resumed < 0 ? undefined : stamp(lines[resumed] ?? '')];
  return from !== undefined && to !== undefined ? to - from : undefined;
}

export interface PauseSeen {
  /** First poll showing paused=1 to the first after it showing 0; undefined if no pause was seen. */
  frozenMs: number | undefined;
  /** Still paused when the watch stopped. */
  stillPaused: boolean;
  polls: number;
  /** The longest gap between two polls: the resolution of `frozenMs`. */
  maxGapMs: number;
  /** No poll caught the pause (it fell between two): the time between the polls around the cutover call, an upper bound. */
  shorterThanMs?: number;
}

/**
 * The watcher, in a worker thread with an event loop of its own: PgBouncer's view, not the measured
 * path's (the bot or the script run on the bench's event loop, and a poll answered while that loop is
 * busy would be timed when the loop gets to it). Plain JavaScript (no TypeScript loader in a worker).
 * Times are absolute (timeOrigin + now), comparable across threads.
 */
const WATCHER = `
const { parentPort, workerData: o } = require('node:worker_threads');
const pg = require('pg');
const now = () => performance.timeOrigin + performance.now();
const admin = new pg.Client(o.admin);
admin.on('error', () => undefined);
let watching = true;
parentPort.on('message', () => { watching = false; });
const answered = [];
let pausedAt, resumedAt, last, maxGapMs = 0;
const poll = async () => {
  const { rows } = await admin.query('SHOW DATABASES');
  const at = now();
  if (last !== undefined) maxGapMs = Math.max(maxGapMs, at - last);
  last = at;
  answered.push(at);
  const paused = Number((rows.find((r) => r.name === o.database) || {}).paused) === 1;
  if (paused && pausedAt === undefined) pausedAt = at;
  if (!paused && pausedAt !== undefined && resumedAt === undefined) resumedAt = at;
};
(async () => {
  await admin.connect();
  await poll();
  parentPort.postMessage({ ready: true });
  while (watching) {
    const started = now();
    await poll();
    const wait = o.everyMs - (now() - started);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  parentPort.postMessage({ done: true, answered, pausedAt, resumedAt, maxGapMs });
})()
  .catch((error) => parentPort.postMessage({ failed: error.message }))
  .finally(() => admin.end().catch(() => undefined));
`;

type FromWatcher =
  | { ready: true }
  | { failed: string }
  | { done: true; answered: number[]; pausedAt?: number; resumedAt?: number; maxGapMs: number };

/** Absolute milliseconds (timeOrigin + now), the clock the watcher's thread reports in. */
export const absoluteNow = () => performance.timeOrigin + performance.now();

/**
 * Polls SHOW DATABASES on its own admin connection every ~3 ms, in a worker thread, until stopped;
 * `call` is when the cutover call ran (absoluteNow()), to bound a pause no poll caught.
 */
export async function watchPause(
  rig: CutoverRig,
  database = 'orders',
  everyMs = 3,
): Promise<{ stop(call: { from: number; to: number }): Promise<PauseSeen> }> {
  const { bouncer } = rig;
  const admin = { host: '127.0.0.1', port: bouncer.port, user: bouncer.adminUser, password: bouncer.adminPassword, database: 'pgbouncer' };
  const worker = new Worker(WATCHER, { eval: true, workerData: { admin, database, everyMs } });
  const messages: FromWatcher[] = [];
  let notify: (() => void) | undefined;
  worker.on('message', (message: FromWatcher) => {
    messages.push(message);
    notify?.();
  });
  worker.on('error', (error) => {
    messages.push({ failed: error.message });
    notify?.();
  });
  const next = async (): Promise<FromWatcher> => {
    while (messages.length === 0) await new Promise<void>((r) => (notify = r));
    return messages.shift() as FromWatcher;
  };
  const first = await next();
  if ('failed' in first) {
    await worker.terminate();
    throw new Error(`the pause watcher could not start: ${first.failed}`);
  }
  return {
    async stop(call) {
      worker.postMessage('stop');
      let end: FromWatcher;
      try {
        end = await next();
      } finally {
        await worker.terminate();
      }
      if ('failed' in end) throw new Error(`the pause watcher failed: ${end.failed}`);
      if (!('done' in end)) throw new Error('the pause watcher answered out of turn');
      const { answered, pausedAt, resumedAt, maxGapMs } = end;
      const before = answered.filter((t) => t <= call.from).at(-1);
      const after = answered.find((t) => t >= call.to);
      return {
        ...(pausedAt === undefined && before !== undefined && after !== undefined ? { shorterThanMs: after - before } : {}),
        frozenMs: pausedAt !== undefined && resumedAt !== undefined ? resumedAt - pausedAt : undefined,
        stillPaused: pausedAt !== undefined && resumedAt === undefined,
        polls: answered.length,
        maxGapMs,
      };
    },
  };
}
