/**
 * The schema guard on the report ticks of syncing sessions, with a scripted guard, a steady observer and
 * the embedded store under a fake clock (a minute per step): each new difference is announced once
 * (mentioning the operators), the same drift on later ticks says nothing, its end is announced once; a
 * failed or still-running check says nothing and fails no tick; sessions not syncing are not compared.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openEmbedded, type Database } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import type { Session } from '../../src/domain/session.js';
import type { ReportProfile, SchemaDriftChecks, SessionObserver } from '../../src/reports/ports.js';
import type { ReportScheduler } from '../../src/reports/scheduler.js';
import { minuteScheduler, postedAlerts, tickAt } from '../support/minute-ticks.js';
import { RecordingPoster } from '../support/report-recording-poster.js';

const profile: ReportProfile = {
  reports: { schedule: 'every 2m', alerts: { lagBytes: 1 << 30, consecutiveSamples: 3, twoWeekLimitWarningHours: 1 } },
  gates: { operators: ['U0OPS'], maxLagBytesToFreeze: 1 << 24 },
};
const NOTE = 'public.orders: column note (text) only on the source';
const INDEX = 'public.orders: index orders_note only on the target';

/** Lag zero, DigitalOcean syncing: nothing but the schema guard has anything to say. */
const steady: SessionObserver = {
  observe: async () => ({
    observation: { at: new Date(), known: true, bytes: 0, seconds: 0, slot: 's', slotActive: true, walPosition: null },
    doView: { known: true, status: 'syncing', id: 'm1', createdAt: new Date() },
  }),
};

/** Answers each check with the next scripted outcome (the last one repeats) and counts the checks. */
class ScriptedChecks implements SchemaDriftChecks {
  readonly asked: string[] = [];
  script: (string[] | null | Error)[] = [[]];

  async check(session: Session): Promise<string[] | null> {
    this.asked.push(session.id);
    const next = this.script.length > 1 ? this.script.shift()! : this.script[0]!;
    if (next instanceof Error) throw next;
    return next;
  }
}

describe('schema drift on the report ticks of a syncing session', () => {
  let db: Database;
  let sessions: SessionStore;
  let syncing: Session;
  let frozen: Session;
  let checks: ScriptedChecks;
  let poster: RecordingPoster;
  let scheduler: ReportScheduler;

  const replica = (replicaId: string) => minuteScheduler(db, { replicaId, profile, sessions, log: poster.log, observer: steady, schemaDrift: checks });
  const step = async (minute: number, by = scheduler) => (await tickAt(by, minute)).alerts;
  const alerts = () => postedAlerts(poster.log);

  beforeAll(async () => {
    db = await openEmbedded(undefined);
    await migrate(db);
    sessions = new SessionStore(db);
  });

  beforeEach(async () => {
    const a = await sessions.create({ channelId: 'C0DRIFT', profile: 'orders', strategy: 'proxy', startedBy: 'U1' });
    syncing = await sessions.transition(a.id, a.version, 'migration_started', { doMigrationId: 'm1' });
    const b = await sessions.create({ channelId: 'C0FROZEN', profile: 'orders', strategy: 'proxy', startedBy: 'U1' });
    const started = await sessions.transition(b.id, b.version, 'migration_started', { doMigrationId: 'm2' });
    frozen = await sessions.transition(started.id, started.version, 'freeze');
    checks = new ScriptedChecks();
    poster = new RecordingPoster('r1');
    scheduler = replica('r1');
  });

  // Each case's sessions end with it: the next case's scheduler sees its own only.
  afterEach(async () => {
    for (const s of [syncing, frozen]) {
      const current = await sessions.require(s.id);
      await sessions.transition(current.id, current.version, 'abort');
    }
  });

  afterAll(async () => {
    await db?.close();
  });

  it('announces each new difference once, says nothing while the drift stays, and announces its end once', async () => {
    checks.script = [[], [NOTE], [NOTE], [NOTE, INDEX], [INDEX], [INDEX], []];
    const fire = [{ sessionId: syncing.id, kind: 'schema_drift', action: 'fire' }];

    expect(await step(0)).toEqual([]);
    expect(await step(1)).toEqual(fire);
    expect(alerts()[0]).toEqual({
      kind: 'schema_drift',
      action: 'fire',
      title: 'schema drift between source and target',
      text:
        'public.orders: column note (text) only on the source. Logical replication carries rows, never schema changes: ' +
        'apply the same DDL on the other side. The freeze is refused until the schemas match.',
      operators: ['U0OPS'],
    });
    // Minute 2 is a report tick as well as a sample tick: one comparison, nothing said again.
    expect(await step(2)).toEqual([]);
    expect(await step(3)).toEqual(fire);
    expect(alerts()[1]?.text).toMatch(/^public\.orders: index orders_note only on the target \(2 differences in all\)\. /);
    // One of two differences is gone: the freeze is still refused, nothing to say.
    expect(await step(4)).toEqual([]);
    expect(await step(5)).toEqual([]);
    expect(await step(6)).toEqual([{ sessionId: syncing.id, kind: 'schema_drift', action: 'clear' }]);
    expect(alerts()[2]).toMatchObject({ action: 'clear', text: 'Resolved: source and target have the same tables, columns, keys and indexes again.' });
    expect(await step(7)).toEqual([]);
    expect(alerts()).toHaveLength(3);

    // Once per pass, of the syncing session only (the frozen one is not compared).
    expect(checks.asked).toEqual(Array.from({ length: 8 }, () => syncing.id));
    expect(checks.asked).not.toContain(frozen.id);
  });

  it('a failed or skipped comparison is no evidence: the drift is neither announced again nor cleared', async () => {
    checks.script = [[NOTE], new Error('the target is unreachable'), null, [NOTE], []];
    expect(await step(0)).toHaveLength(1);
    expect(await step(1)).toEqual([]);
    expect(await step(2)).toEqual([]);
    expect(await step(3)).toEqual([]);
    expect(await step(4)).toEqual([{ sessionId: syncing.id, kind: 'schema_drift', action: 'clear' }]);
    // The lag reports went on regardless (minutes 0, 2, 4).
    expect(poster.log.filter((p) => p.kind === 'report' && p.sessionId === syncing.id)).toHaveLength(3);
  });

  it('what was announced is in the store: a replica taking the next ticks does not announce the drift again', async () => {
    checks.script = [[NOTE], [NOTE], []];
    const other = replica('r2');
    expect(await step(0)).toHaveLength(1);
    expect(await step(1, other)).toEqual([]);
    expect(await step(2, other)).toEqual([{ sessionId: syncing.id, kind: 'schema_drift', action: 'clear' }]);
    expect(await step(3)).toEqual([]);
    expect(poster.log.flatMap((p) => (p.kind === 'alert' ? [`${p.replica} ${p.alert.action}`] : []))).toEqual(['r1 fire', 'r2 clear']);
  });

  it('names at most ten new differences, then how many more', async () => {
    const many = Array.from({ length: 12 }, (_, i) => `public.t${i}: table only on the source`);
    checks.script = [many];
    await step(0);
    expect(alerts()[0]?.text).toMatch(/^public\.t0: table only on the source; .*public\.t9: table only on the source; and 2 more\. /);
  });
});
