/**
 * Tick claims on both engines, and the scheduler's exactly-once behaviour with three replicas (three
 * ReportScheduler instances) on one real PostgreSQL store under a fake clock. The observer here is a
 * scripted adapter of the SessionObserver port (lag from a table of numbers); the real probe on real
 * replication is exercised in test/reports/reports-on-replication.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoView, Observation } from '../../src/domain/report.js';
import type { Session } from '../../src/domain/session.js';
import { ErrorCode } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import type { ReportProfile, SessionObserver } from '../../src/reports/ports.js';
import { ReportScheduler } from '../../src/reports/scheduler.js';
import { Secret } from '../../src/secret.js';
import { openEmbedded, openPostgres, type Database } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { LagSampleStore } from '../../src/adapters/store/lag-samples.js';
import { ReportStateStore } from '../../src/adapters/store/report-state.js';
import { ReportTickStore } from '../../src/adapters/store/report-ticks.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';
import { RecordingPoster, type PostedItem } from '../support/report-recording-poster.js';

const log = createLogger('silent');
const MB = 1024 * 1024;
/** A whole hour a day ahead of the real clock: sessions are created now, the fake clock runs after. */
const T0 = Math.ceil(Date.now() / 3_600_000) * 3_600_000 + 24 * 3_600_000;
const minute = (n: number) => new Date(T0 + n * 60_000);
let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ databases: ['store_a', 'store_b'] });
});
afterAll(() => cluster?.stop());

const engines: [string, () => Promise<Database>][] = [
  ['embedded (PGlite)', () => openEmbedded(undefined)],
  ['PostgreSQL', async () => openPostgres(new Secret(cluster.connectionString('store_a')), log)],
];

async function syncingSession(sessions: SessionStore, channelId: string): Promise<Session> {
  const created = await sessions.create({ channelId, profile: 'orders', strategy: 'proxy', startedBy: 'U1' });
  const syncing = await sessions.transition(created.id, created.version, 'migration_started', { doMigrationId: 'm1' });
  return sessions.setStatusMessage(syncing.id, '1700000000.000100');
}

describe.each(engines)('tick claims on %s', (_engine, open) => {
  let db: Database;
  let ticks: ReportTickStore;
  let session: Session;

  beforeAll(async () => {
    db = await open();
    await migrate(db);
    ticks = new ReportTickStore(db);
    session = await syncingSession(new SessionStore(db), `CTICK${Date.now().toString(36).toUpperCase()}`);
  });
  afterAll(() => db?.close());

  it('grants a tick once: a second claim of the same or an older tick gets nothing, a newer one succeeds', async () => {
    const a = await ticks.claim(session.id, 'report', minute(5), 'A', minute(5), 60_000);
    expect(a).toEqual({ sessionId: session.id, purpose: 'report', tick: minute(5), attempts: 1 });
    expect(await ticks.claim(session.id, 'report', minute(5), 'B', minute(5), 60_000)).toBeUndefined();
    expect(await ticks.claim(session.id, 'report', minute(0), 'B', minute(5), 60_000)).toBeUndefined();
    // The other purpose is independent.
    expect(await ticks.claim(session.id, 'sample', minute(5), 'B', minute(5), 60_000)).toBeDefined();
    expect(await ticks.claim(session.id, 'report', minute(10), 'B', minute(10), 60_000)).toMatchObject({ tick: minute(10) });
    expect(await ticks.get(session.id, 'report')).toMatchObject({ lastTick: minute(10), claimedBy: 'B', doneAt: null });
  });

  it('an unfinished claim is taken over only after its lease, by one replica, a bounded number of times', async () => {
    const now = minute(10);
    expect(await ticks.retake(session.id, 'report', 'C', new Date(now.getTime() + 30_000), 60_000, 3)).toBeUndefined();
    const later = new Date(now.getTime() + 61_000);
    const [c, d] = await Promise.all([
      ticks.retake(session.id, 'report', 'C', later, 60_000, 3),
      ticks.retake(session.id, 'report', 'D', later, 60_000, 3),
    ]);
    expect([c, d].filter(Boolean)).toHaveLength(1);
    expect((c ?? d)?.attempts).toBe(2);
    const third = await ticks.retake(session.id, 'report', 'E', new Date(later.getTime() + 61_000), 60_000, 3);
    expect(third?.attempts).toBe(3);
    expect(await ticks.retake(session.id, 'report', 'F', new Date(later.getTime() + 200_000), 60_000, 3)).toBeUndefined();
  });

  it('complete marks the tick done only for the current claimer', async () => {
    const claim = await ticks.claim(session.id, 'report', minute(15), 'A', minute(15), 60_000);
    expect(claim).toBeDefined();
    if (!claim) return;
    expect(await ticks.complete(claim, 'B', minute(15))).toBe(false);
    expect(await ticks.complete(claim, 'A', minute(15))).toBe(true);
    expect(await ticks.retake(session.id, 'report', 'B', minute(30), 60_000, 3)).toBeUndefined();
  });
});

/** Lag from a script: minute → MB (null = unknown); the clock decides the minute. */
class ScriptedObserver implements SessionObserver {
  readonly script: Map<number, number | null>;
  readonly clock: { now(): Date };
  calls = 0;

  constructor(script: Record<number, number | null>, clock: { now(): Date }) {
    this.script = new Map(Object.entries(script).map(([k, v]) => [Number(k), v]));
    this.clock = clock;
  }

  async observe(): Promise<{ observation: Observation; doView: DoView }> {
    this.calls++;
    const at = this.clock.now();
    const m = Math.floor((at.getTime() - T0) / 60_000);
    const mb = this.script.has(m) ? (this.script.get(m) ?? null) : 0;
    const observation: Observation =
      mb === null
        ? { at, known: false, reason: 'scripted outage', walPosition: null }
        : { at, known: true, bytes: mb * MB, seconds: null, slot: 'do_slot', slotActive: true, walPosition: m * 60 * MB };
    return { observation, doView: { known: true, status: 'syncing', id: 'm1', createdAt: new Date(T0) } };
  }
}

const profile: ReportProfile = {
  reports: { schedule: 'every 5m', alerts: { lagBytes: 100 * MB, consecutiveSamples: 2, twoWeekLimitWarningHours: 48 } },
  gates: { operators: ['U0OPERATOR', 'S0ONCALL'], maxLagBytesToFreeze: 16 * MB },
};

describe('three replicas on one PostgreSQL store', () => {
  let dbs: Database[];
  let sessions: Session[];
  const clock = { t: minute(0), now() { return this.t; } };
  const posted: PostedItem[] = [];
  let posters: RecordingPoster[];
  let replicas: ReportScheduler[];
  let observers: ScriptedObserver[];
  // Lag rises above 100 MB from minute 3 to minute 7, then falls.
  const script = { 0: 0, 1: 20, 2: 60, 3: 120, 4: 180, 5: 240, 6: 200, 7: 150, 8: 80, 9: 30, 10: 5 };

  const build = (db: Database, name: string, poster: RecordingPoster, observer: ScriptedObserver) =>
    new ReportScheduler({
      sessions: new SessionStore(db),
      ticks: new ReportTickStore(db),
      state: new ReportStateStore(db),
      profiles: new Map([['orders', profile]]),
      observer,
      poster,
      samples: new LagSampleStore(db),
      log,
      replicaId: name,
      clock,
      options: { sampleEverySeconds: 60, leaseMs: 90_000, maxAttempts: 3 },
    });

  beforeAll(async () => {
    dbs = [0, 1, 2].map(() => openPostgres(new Secret(cluster.connectionString('store_b')), log));
    await Promise.all(dbs.map((db) => migrate(db)));
    const store = new SessionStore(dbs[0] as Database);
    const stamp = Date.now().toString(36).toUpperCase();
    sessions = [];
    for (const n of [1, 2, 3]) sessions.push(await syncingSession(store, `CREP${stamp}${n}`));
    posters = ['r1', 'r2', 'r3'].map((r) => new RecordingPoster(r, posted));
    observers = [0, 1, 2].map(() => new ScriptedObserver(script, clock));
    replicas = [0, 1, 2].map((i) => build(dbs[i] as Database, `r${i + 1}`, posters[i] as RecordingPoster, observers[i] as ScriptedObserver));
  });
  afterAll(async () => {
    await Promise.all((replicas ?? []).map((r) => r.stop()));
    await Promise.all((dbs ?? []).map((db) => db.close()));
  });

  const reportsAt = (m: number) => posted.filter((p) => p.kind === 'report' && p.report.at.getTime() === minute(m).getTime());
  const ours = (p: PostedItem) => sessions.some((s) => s.id === p.sessionId);

  it('every replica ticks at the same instant; exactly one report per session per tick, one sample per minute', async () => {
    await (replicas[0] as ReportScheduler).setSchedule((sessions[0] as Session).id, 'every 2m', 'U1');
    const started = performance.now();
    for (let m = 0; m <= 10; m++) {
      clock.t = minute(m);
      await Promise.all(replicas.map((r) => r.tick(minute(m))));
    }
    const elapsed = performance.now() - started;
    const reports = posted.filter((p) => p.kind === 'report' && ours(p));
    // Session 1 every 2 minutes (0, 2, …, 10), sessions 2 and 3 every 5 (0, 5, 10): one post each, whichever replica won.
    const perSession = (s: Session) => reports.filter((p) => p.sessionId === s.id).map((p) => (p.kind === 'report' ? (p.report.at.getTime() - T0) / 60_000 : -1));
    // Session 1's own schedule was set at minute 0: its first report is the first tick after that.
    expect(perSession(sessions[0] as Session)).toEqual([2, 4, 6, 8, 10]);
    expect(perSession(sessions[1] as Session)).toEqual([0, 5, 10]);
    expect(perSession(sessions[2] as Session)).toEqual([0, 5, 10]);
    expect([0, 5, 10].map((m) => reportsAt(m).filter(ours).length)).toEqual([2, 2, 3]);
    // Each minute measured once per session across all replicas (which replica wins a tick is chance).
    const state = new ReportStateStore(dbs[0] as Database);
    for (const s of sessions) {
      const { observations } = await state.window(s.id);
      expect(observations.map((o) => (o.at.getTime() - T0) / 60_000)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      // The shared history (lag_samples) got the same eleven samples, once each.
      const shared = await new LagSampleStore(dbs[0] as Database).recent(s.id);
      expect(shared.map((o) => (o.at.getTime() - T0) / 60_000)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }
    const statusRefreshes = posted.filter((p) => p.kind === 'status' && ours(p));
    expect(statusRefreshes).toHaveLength(reports.length);
    console.info(`3 replicas × 11 ticks × 3 sessions: ${elapsed.toFixed(0)} ms, ${reports.length} reports`);
  });

  it('reports show the rising then the falling lag, with the trend picture', () => {
    const s2 = posted.flatMap((p) => (p.kind === 'report' && p.sessionId === (sessions[1] as Session).id ? [p.report] : []));
    expect(s2.map((r) => r.trend.direction)).toEqual(['unknown', 'rising', 'falling']);
    expect(s2[1]?.trend.sparkline).toBe('▁▂▃▅▆█');
    expect(s2[1]?.lines.join('\n')).toContain('+240 MiB since the last report');
    expect(s2[2]?.trend.sparkline).toBe('█▇▅▃▂▁');
    expect(s2[2]?.etaSeconds).not.toBeNull();
  });

  it('the lag alert fires once and clears once per session, in the channel, mentioning the operators', () => {
    for (const s of sessions) {
      const alerts = posted.flatMap((p) => (p.kind === 'alert' && p.sessionId === s.id ? [p.alert] : []));
      expect(alerts.map((a) => `${a.kind}:${a.action}`)).toEqual(['lag_high:fire', 'lag_high:clear']);
      expect(alerts[0]?.operators).toEqual(['U0OPERATOR', 'S0ONCALL']);
      expect(alerts[0]?.text).toMatch(/above 100 MiB \(2 samples in a row\)/);
    }
  });

  it('a replica that claims and dies before posting: the next tick is not lost, and the dead tick is taken over after its lease', async () => {
    const s1 = sessions[0] as Session;
    const before = posted.length;
    // Minute 12: only r1 runs, claims session 1's report tick, and "dies" before posting.
    (posters[0] as RecordingPoster).failReports = new Error('replica r1 died');
    clock.t = minute(12);
    const dead = await (replicas[0] as ReportScheduler).tick(minute(12));
    expect(dead.failures.map((f) => f.sessionId)).toContain(s1.id);
    const tickStore = new ReportTickStore(dbs[1] as Database);
    expect(await tickStore.get(s1.id, 'report')).toMatchObject({ lastTick: minute(12), claimedBy: 'r1', doneAt: null });
    // Within the lease nobody else touches it.
    clock.t = new Date(minute(12).getTime() + 30_000);
    await Promise.all(replicas.slice(1).map((r) => r.tick(clock.t)));
    expect(posted.slice(before).filter((p) => p.kind === 'report' && p.sessionId === s1.id)).toHaveLength(0);
    // Lease over (90 s), next tick (minute 14) not yet due: exactly one of r2/r3 takes minute 12 over.
    clock.t = new Date(minute(12).getTime() + 95_000);
    await Promise.all(replicas.slice(1).map((r) => r.tick(clock.t)));
    const retaken = posted.slice(before).filter((p) => p.kind === 'report' && p.sessionId === s1.id);
    expect(retaken).toHaveLength(1);
    expect(['r2', 'r3']).toContain(retaken[0]?.replica);
    expect(await tickStore.get(s1.id, 'report')).toMatchObject({ lastTick: minute(12), attempts: 2 });
    expect((await tickStore.get(s1.id, 'report'))?.doneAt).not.toBeNull();
    // Minute 14 is claimed as usual by the survivors: not lost.
    clock.t = minute(14);
    await Promise.all(replicas.slice(1).map((r) => r.tick(minute(14))));
    const at14 = posted.slice(before).filter((p) => p.kind === 'report' && p.sessionId === s1.id && p.report.at.getTime() === minute(14).getTime());
    expect(at14).toHaveLength(1);
  });

  it('the next tick is not lost even when the dead claim is never taken over', async () => {
    const s1 = sessions[0] as Session;
    const before = posted.length;
    clock.t = minute(16);
    await (replicas[0] as ReportScheduler).tick(minute(16)); // r1 still "dead": claims minute 16 and fails
    clock.t = minute(18); // next tick due before anyone retook minute 16: minute 18 supersedes it
    await Promise.all(replicas.slice(1).map((r) => r.tick(minute(18))));
    const mine = posted.slice(before).filter((p) => p.kind === 'report' && p.sessionId === s1.id);
    expect(mine.map((p) => (p.kind === 'report' ? p.report.at.toISOString() : ''))).toEqual([minute(18).toISOString()]);
    (posters[0] as RecordingPoster).failReports = undefined;
  });

  it('schedules survive a restart: a new scheduler on the same store keeps session 1 at every 2m', async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    const fresh = build(dbs[2] as Database, 'r4', new RecordingPoster('r4', posted), new ScriptedObserver(script, clock));
    const s1 = sessions[0] as Session;
    expect(await fresh.scheduleOf(s1)).toMatchObject({ kind: 'interval', seconds: 120, text: 'every 2m' });
    const before = posted.length;
    clock.t = minute(19);
    await fresh.tick(minute(19));
    expect(posted.slice(before).filter((p) => p.kind === 'report')).toHaveLength(0);
    clock.t = minute(20);
    await fresh.tick(minute(20));
    const at20 = posted.slice(before).filter((p) => p.kind === 'report');
    // Session 1 (every 2m) and sessions 2 and 3 (profile default every 5m) all tick at minute 20.
    expect(at20.map((p) => p.sessionId).sort()).toEqual(sessions.map((s) => s.id).sort());
    await fresh.setSchedule(s1.id, 'off', 'U1');
    clock.t = minute(22);
    const summary = await fresh.tick(minute(22));
    expect(summary.reports).not.toContain(s1.id);
    // Alerts keep sampling while reports are off.
    expect(summary.samples).toContain(s1.id);
    await expect(fresh.setSchedule(s1.id, 'hourly', 'U1')).rejects.toMatchObject({ code: ErrorCode.CommandInvalid });
  });
});
