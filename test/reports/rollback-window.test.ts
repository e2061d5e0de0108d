/**
 * The rollback window on the sample ticks of a switched session that replicates back, with a scripted
 * reverse replication and the embedded store under a fake clock (a minute per step): retained WAL over
 * the budget and a stream not streaming are each announced once when they start and once when they end;
 * the status message is redrawn when its countdown changes; at the end of the window the reverse
 * replication is removed and the end announced once, whichever replica ticks, and nothing is looked at
 * again; a session that does not replicate back is not looked at; the housekeeping sweeps.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openEmbedded, type Database } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { ReportStateStore } from '../../src/adapters/store/report-state.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import type { ReverseDropResult, ReverseStatus } from '../../src/domain/ports/reverse-replication.js';
import type { ReplicatingBack } from '../../src/domain/rollback-window.js';
import type { Session } from '../../src/domain/session.js';
import type { ReportProfile, ReverseReplications, SessionObserver } from '../../src/reports/ports.js';
import type { ReportScheduler } from '../../src/reports/scheduler.js';
import { T0, minuteScheduler, postedAlerts, tickAt } from '../support/minute-ticks.js';
import { RecordingPoster } from '../support/report-recording-poster.js';

const MB = 1024 * 1024;
const profile: ReportProfile = {
  reports: { schedule: 'every 5m', alerts: { lagBytes: 1 << 30, consecutiveSamples: 2, twoWeekLimitWarningHours: 1 } },
  gates: { operators: ['U0OPS'], maxLagBytesToFreeze: 1 << 24 },
  rollback: { windowHours: 2, maxRetainedWalMb: 2 },
};

/** Switched sessions get no lag report: the scheduler must not measure them. */
const noObserver: SessionObserver = {
  observe: () => Promise.reject(new Error('a switched session was observed for a lag report')),
};

const streaming = (retainedMb: number | null): ReverseStatus => ({ slot: true, streaming: true, retainedWalBytes: retainedMb === null ? null : retainedMb * MB, lagBytes: 0 });
const idle: ReverseStatus = { slot: true, streaming: false, retainedWalBytes: MB, lagBytes: MB };

/** Answers status with the next scripted reading (the last one repeats) and counts what it was asked. */
class ScriptedReverse implements ReverseReplications {
  readonly back = new Map<string, ReplicatingBack>();
  readonly asked: string[] = [];
  readonly dropped: string[] = [];
  sweeps = 0;
  script: ReverseStatus[] = [streaming(1)];

  async replicatingBack(session: Session): Promise<ReplicatingBack | undefined> {
    return this.back.get(session.id);
  }

  async status(session: Session): Promise<ReverseStatus> {
    this.asked.push(session.id);
    return this.script.length > 1 ? this.script.shift()! : this.script[0]!;
  }

  async drop(session: Session): Promise<ReverseDropResult> {
    this.dropped.push(session.id);
    return { subscriptions: 1, slots: 1, publications: 1 };
  }

  async sweep(): Promise<number> {
    this.sweeps += 1;
    return 0;
  }
}

describe('the rollback window on the sample ticks of a switched session', () => {
  let db: Database;
  let sessions: SessionStore;
  let state: ReportStateStore;
  let back: Session;
  let notBack: Session;
  let reverse: ScriptedReverse;
  let poster: RecordingPoster;
  let scheduler: ReportScheduler;

  const replica = (replicaId: string) => minuteScheduler(db, { replicaId, profile, sessions, log: poster.log, observer: noObserver, state, reverse });
  const step = async (minute: number, by = scheduler) => (await tickAt(by, minute)).alerts.map((a) => `${a.kind} ${a.action}`);
  const alerts = () => postedAlerts(poster.log);
  const redraws = () => poster.log.filter((p) => p.kind === 'status').length;
  const switched = async (channelId: string) => {
    const created = await sessions.create({ channelId, profile: 'orders', strategy: 'proxy', startedBy: 'U1' });
    let s = await sessions.transition(created.id, created.version, 'migration_started', { doMigrationId: `m-${channelId}` });
    s = await sessions.transition(s.id, s.version, 'freeze');
    return sessions.transition(s.id, s.version, 'switch');
  };

  beforeAll(async () => {
    db = await openEmbedded(undefined);
    await migrate(db);
    sessions = new SessionStore(db);
    state = new ReportStateStore(db);
  });

  beforeEach(async () => {
    back = await switched('C0BACK');
    notBack = await switched('C0NOTBACK');
    reverse = new ScriptedReverse();
    reverse.back.set(back.id, { attempt: 1, switchedAt: new Date(T0) });
    poster = new RecordingPoster('r1');
    scheduler = replica('r1');
  });

  // Each case's sessions end with it: the next case's scheduler sees its own only.
  afterEach(async () => {
    for (const s of [back, notBack]) {
      const current = await sessions.require(s.id);
      if (current.state === 'switched') await sessions.transition(current.id, current.version, 'finish');
    }
  });

  afterAll(async () => {
    await db?.close();
  });

  it('announces retained WAL over the budget and a stream not streaming once each way', async () => {
    reverse.script = [streaming(1), streaming(3), streaming(3), streaming(null), streaming(1), idle, idle, idle, streaming(1), streaming(1)];

    expect(await step(0)).toEqual([]);
    expect(await step(1)).toEqual(['reverse_wal fire']);
    expect(alerts()[0]).toEqual({
      kind: 'reverse_wal',
      action: 'fire',
      title: 'replicating back keeps too much WAL on the target',
      text:
        'The target keeps 3.0 MiB of WAL for the reverse replication slot, over the budget of 2.0 MiB (rollback.maxRetainedWalMb): ' +
        "the source is not applying the target's writes as fast as they come. The WAL stays until it catches up, or until Finish, " +
        'a rollback or the end of the rollback window removes the reverse replication.',
      operators: ['U0OPS'],
    });
    expect(await step(2)).toEqual([]);
    // Unknown is no evidence: the episode neither clears nor fires again.
    expect(await step(3)).toEqual([]);
    expect(await step(4)).toEqual(['reverse_wal clear']);
    expect(alerts()[1]?.text).toBe('Back under the budget: 1.0 MiB of WAL kept for replicating back (budget 2.0 MiB).');
    // One reading without a reader is no episode (a walsender reconnecting); two in a row are.
    expect(await step(5)).toEqual([]);
    expect(await step(6)).toEqual(['reverse_stream fire']);
    expect(alerts()[2]?.text).toBe(
      "The source is not receiving the target's writes (2 samples in a row): the reverse replication slot on the target has no reader. The writes wait in the slot (the target keeps their WAL) and a rollback waits for them.",
    );
    expect(await step(7)).toEqual([]);
    expect(await step(8)).toEqual(['reverse_stream clear']);
    expect(alerts()[3]?.text).toBe("Streaming again: the source applies the target's writes.");
    expect(await step(9)).toEqual([]);
    expect(alerts()).toHaveLength(4);

    // Once per sample tick, of the session that replicates back only.
    expect(reverse.asked).toEqual(Array.from({ length: 10 }, () => back.id));
    const stored = await state.rollbackWindow(back.id);
    expect(stored).toMatchObject({ attempt: 1, endsAt: new Date(T0 + 2 * 3_600_000), endedAt: null, walOverBudget: false });
    expect(stored?.reading).toEqual({ at: new Date(T0 + 9 * 60_000), slot: true, streaming: true, retainedWalBytes: MB });
  });

  it('a slot gone from the target is told as such', async () => {
    reverse.script = [{ slot: false, streaming: false, retainedWalBytes: null, lagBytes: null }];
    expect(await step(0)).toEqual([]);
    expect(await step(1)).toEqual(['reverse_stream fire']);
    expect(alerts()[0]?.text).toBe(
      "The reverse replication slot is gone from the target (2 samples in a row): the target's writes are no longer carried back, and a rollback would leave them on the target.",
    );
  });

  it('redraws the status message when the countdown changes, not on every tick', async () => {
    await step(0); // the first reading: 2 h left
    await step(1); // 1 h 59 min: "1 h"
    await step(2);
    await step(30);
    expect(redraws()).toBe(2);
    await step(61); // 59 min
    expect(redraws()).toBe(3);
  });

  it('at the end of the window removes the reverse replication and announces it once, whichever replica ticks', async () => {
    const other = replica('r2');
    await step(119);
    expect(await step(120)).toEqual(['rollback_window fire']);
    expect(reverse.dropped).toEqual([back.id]);
    expect(alerts()[0]).toEqual({
      kind: 'rollback_window',
      action: 'fire',
      title: 'rollback window ended',
      text:
        '2 h after the switch, replicating back has stopped: its slot, subscription and publication are removed. ' +
        'A rollback from now on leaves the writes made on the target on the target; they are not carried back to the source.',
      operators: ['U0OPS'],
    });
    expect(poster.log.at(-1)).toEqual({ kind: 'status', replica: 'r1', sessionId: back.id });
    expect((await state.rollbackWindow(back.id))?.endedAt).toEqual(new Date(T0 + 120 * 60_000));

    // Nothing is removed, read or announced again.
    expect(await step(121, other)).toEqual([]);
    expect(await step(122)).toEqual([]);
    expect(reverse.dropped).toEqual([back.id]);
    expect(reverse.asked).toEqual([back.id]);
    expect(alerts()).toHaveLength(1);
  });

  it('the housekeeping sweeps the reverse replication of sessions no longer active', async () => {
    await step(0);
    await step(1);
    expect(reverse.sweeps).toBe(1);
  });
});
