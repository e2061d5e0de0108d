/**
 * Replicating back as the reports watch it, on real clusters (source and target both logical, the
 * forward stream as DigitalOcean's): a switched session replicating back over a real reverse slot, its
 * journal in the embedded store, the report scheduler under a fake clock. A sample tick reads the slot
 * (streaming, WAL retained) and the housekeeping's sweep removes what an ended session left on both
 * sides (a crash) while the switched session's objects stay; at the end of the rollback window the tick
 * removes the session's slot, subscription and publication and announces it once.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgReverseReplication } from '../../src/adapters/replication/reverse-replication.js';
import { PgReverseReplications } from '../../src/adapters/replication/reverse-replications.js';
import type { TargetConnection } from '../../src/adapters/digitalocean/target-connection.js';
import { sequenceCopier } from '../../src/adapters/source/sequences.js';
import { CutoverJournal } from '../../src/adapters/store/cutover-journal.js';
import { openEmbedded, type Database } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { ReportStateStore } from '../../src/adapters/store/report-state.js';
import { ReportTickStore } from '../../src/adapters/store/report-ticks.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import type { Session } from '../../src/domain/session.js';
import type { ReportProfile, SessionObserver } from '../../src/reports/ports.js';
import { ReportScheduler } from '../../src/reports/scheduler.js';
import { Secret } from '../../src/secret.js';
import { DATABASE, ourObjects, startBidirectionalPair, type BidirectionalPair } from '../support/bidirectional-pair.js';
import { captureLogger } from '../support/capture-log.js';
import { RecordingPoster } from '../support/report-recording-poster.js';
import { until } from '../support/wait.js';

/** A whole hour a day ahead of the real clock (the sessions are created now). */
const T0 = Math.ceil(Date.now() / 3_600_000) * 3_600_000 + 24 * 3_600_000;

const profile: ReportProfile = {
  reports: { schedule: 'every 5m', alerts: { lagBytes: 1 << 30, consecutiveSamples: 1, twoWeekLimitWarningHours: 1 } },
  gates: { operators: ['U0OPS'], maxLagBytesToFreeze: 1 << 24 },
  rollback: { windowHours: 1, maxRetainedWalMb: 1024 },
};

/** Switched sessions get no lag report: the scheduler must not measure them. */
const noObserver: SessionObserver = {
  observe: () => Promise.reject(new Error('a switched session was observed for a lag report')),
};

describe('the rollback window over a real reverse slot', () => {
  const { logger } = captureLogger('debug');
  let pair: BidirectionalPair;
  let db: Database;
  let sessions: SessionStore;
  let reverse: PgReverseReplications | undefined;
  const opened: PgReverseReplication[] = [];

  const targetConnection = (): TargetConnection => ({
    host: pair.target.host,
    port: pair.target.port,
    database: DATABASE,
    user: pair.target.user,
    password: new Secret(pair.target.password),
    sslmode: 'disable',
  });
  const reverseOf = (session: Session) => {
    const made = new PgReverseReplication({ source: pair.sourcePool, target: pair.targetPool, targetConnection: targetConnection(), sessionId: session.id, sequenceMargin: 100, logger });
    opened.push(made);
    return made;
  };
  const session = async (channelId: string, end: 'switched' | 'aborted') => {
    const created = await sessions.create({ channelId, profile: 'orders', strategy: 'proxy', startedBy: 'U1' });
    const syncing = await sessions.transition(created.id, created.version, 'migration_started', { doMigrationId: `m-${channelId}` });
    if (end === 'aborted') return sessions.transition(syncing.id, syncing.version, 'abort');
    const frozen = await sessions.transition(syncing.id, syncing.version, 'freeze');
    return sessions.transition(frozen.id, frozen.version, 'switch');
  };

  beforeAll(async () => {
    pair = await startBidirectionalPair(async (source) => {
      await source.query("INSERT INTO items (note, amount) SELECT 'before ' || g, g FROM generate_series(1, 20) g");
    });
    db = await openEmbedded(undefined);
    await migrate(db);
    sessions = new SessionStore(db);
  });
  afterAll(async () => {
    await Promise.all(opened.map((r) => r.close()));
    await reverse?.close();
    await db?.close();
    await pair?.stop();
  });

  it('reads the slot on sample ticks, sweeps what an ended session left, and removes the reverse replication when the window ends', async () => {
    const { sourcePool, targetPool } = pair;
    const journal = new CutoverJournal(db);

    // A switched session replicating back, as the cutover leaves it: slot advanced to the switch point, the source subscribed.
    const switched = await session('C0BACK', 'switched');
    const attempt = await journal.begin(switched.id, 'cutover', 'U1');
    await journal.record(switched.id, attempt, 'replicate_back', 'done', { replicateBack: 'on' }, { switchedAt: new Date(T0) });
    const back = reverseOf(switched);
    expect((await back.prepare()).ok).toBe(true);
    await sequenceCopier({ source: sourcePool, target: targetPool, margin: 100 }).copy();
    const point = await back.establish();
    if (!point) throw new Error('prepare() made no reverse slot');
    await pair.stopForward();
    await back.attach(point.lsn);
    await targetPool.query("INSERT INTO items (note, amount) SELECT 'on the target ' || g, g FROM generate_series(1, 50) g");
    await until('the target writes on the source', async () => Number((await sourcePool.query('SELECT count(*) AS n FROM items')).rows[0].n) === 70, 60_000);

    // An ended session whose bot crashed before removing its reverse objects: slot and publication on the target, subscription on the source.
    const ended = await session('C0CRASHED', 'aborted');
    const left = reverseOf(ended);
    expect((await left.prepare()).ok).toBe(true);
    await left.close();
    const ident = pg.escapeIdentifier(left.name);
    await sourcePool.query(`CREATE SUBSCRIPTION ${ident} CONNECTION ${pg.escapeLiteral(pair.target.connectionString(DATABASE))} PUBLICATION ${ident} WITH (connect = false)`);

    reverse = new PgReverseReplications({
      sources: { pool: () => sourcePool, databases: async () => [DATABASE] },
      target: async () => targetConnection(),
      profiles: new Map([['orders', { sequences: { margin: 100 } }]]),
      journal,
      sessions,
      log: logger,
    });
    expect(await reverse.replicatingBack(switched)).toEqual({ attempt, switchedAt: new Date(T0) });
    expect(await reverse.replicatingBack(ended)).toBeUndefined();
    await until('the reverse slot streaming', async () => (await reverse!.status(switched)).streaming, 30_000);

    const state = new ReportStateStore(db);
    const poster = new RecordingPoster('it-1');
    const scheduler = new ReportScheduler({
      sessions,
      ticks: new ReportTickStore(db),
      state,
      profiles: new Map([['orders', profile]]),
      observer: noObserver,
      poster,
      reverse,
      log: logger,
      replicaId: 'it-1',
      clock: { now: () => new Date(T0) },
      options: { sampleEverySeconds: 60 },
    });
    const step = async (minute: number) => {
      const summary = await scheduler.tick(new Date(T0 + minute * 60_000));
      expect(summary.failures).toEqual([]);
      return summary.alerts.map((a) => `${a.kind} ${a.action}`);
    };

    // Within the window: the slot is read, and the first pass's housekeeping sweeps the ended session's objects only.
    expect(await step(1)).toEqual([]);
    const reading = (await state.rollbackWindow(switched.id))?.reading;
    expect(reading).toMatchObject({ slot: true, streaming: true });
    expect(reading?.retainedWalBytes).toBeGreaterThan(0);
    console.info(`reverse slot on a sample tick: retained ${reading?.retainedWalBytes} bytes`);
    expect(await ourObjects(targetPool)).toEqual([`publication ${back.name}`, `slot ${back.name}`]);
    expect(await ourObjects(sourcePool)).toEqual([`subscription ${back.name}`]);

    // The window ends: slot, subscription and publication go, and the channel is told once.
    expect(await step(60)).toEqual(['rollback_window fire']);
    expect(await ourObjects(targetPool)).toEqual([]);
    expect(await ourObjects(sourcePool)).toEqual([]);
    expect((await state.rollbackWindow(switched.id))?.endedAt).toEqual(new Date(T0 + 60 * 60_000));
    expect(await step(61)).toEqual([]);
    expect(poster.log.filter((p) => p.kind === 'alert')).toHaveLength(1);
  });
});
