/** The scheduler's own timer and its bounded concurrency, on the embedded store. */
import { describe, expect, it } from 'vitest';
import type { DoView, Observation } from '../../src/domain/report.js';
import { createLogger } from '../../src/log.js';
import type { ReportProfile, SessionObserver } from '../../src/reports/ports.js';
import { ReportScheduler } from '../../src/reports/scheduler.js';
import { Semaphore } from '../../src/reports/semaphore.js';
import { openEmbedded } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { ReportStateStore } from '../../src/adapters/store/report-state.js';
import { ReportTickStore } from '../../src/adapters/store/report-ticks.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import { RecordingPoster, type PostedItem } from '../support/report-recording-poster.js';

const log = createLogger('silent');
const profile: ReportProfile = {
  reports: { schedule: 'every 1m', alerts: { lagBytes: 1 << 30, consecutiveSamples: 3, twoWeekLimitWarningHours: 48 } },
  gates: { operators: ['U0OPS'], maxLagBytesToFreeze: 1 << 24 },
};

/** Takes `delayMs` per observation and records how many ran at once. */
class SlowObserver implements SessionObserver {
  running = 0;
  peak = 0;
  readonly delayMs: number;
  constructor(delayMs: number) {
    this.delayMs = delayMs;
  }
  async observe(): Promise<{ observation: Observation; doView: DoView }> {
    this.running++;
    this.peak = Math.max(this.peak, this.running);
    await new Promise((r) => setTimeout(r, this.delayMs));
    this.running--;
    return {
      observation: { at: new Date(), known: true, bytes: 0, seconds: 0, slot: 's', slotActive: true, walPosition: null },
      doView: { known: true, status: 'syncing', id: 'm1', createdAt: new Date() },
    };
  }
}

describe('the scheduler loop', () => {
  it('a semaphore never runs more than its limit and runs everything', async () => {
    const semaphore = new Semaphore(3);
    let running = 0;
    let peak = 0;
    const done = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        semaphore.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 5));
          running--;
          return i;
        }),
      ),
    );
    expect(done).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(peak).toBe(3);
    expect(semaphore.running).toBe(0);
    expect(() => new Semaphore(0)).toThrow(RangeError);
  });

  it('probes many sessions with bounded concurrency; the timer ticks by itself and stop waits for the pass', async () => {
    const db = await openEmbedded(undefined);
    try {
      await migrate(db);
      const sessions = new SessionStore(db);
      for (let i = 0; i < 10; i++) {
        const s = await sessions.create({ channelId: `CLOOP${i}`, profile: 'orders', strategy: 'proxy', startedBy: 'U1' });
        await sessions.transition(s.id, s.version, 'migration_started', { doMigrationId: 'm1' });
      }
      // One session in another state is not reported on.
      await sessions.create({ channelId: 'CLOOPX', profile: 'orders', strategy: 'proxy', startedBy: 'U1' });
      const observer = new SlowObserver(30);
      const posted: PostedItem[] = [];
      // The fake clock sits a minute past a whole minute after the sessions were created: every session is due.
      const clock = { now: () => new Date(Math.ceil(Date.now() / 60_000) * 60_000 + 60_000) };
      const scheduler = new ReportScheduler({
        sessions,
        ticks: new ReportTickStore(db),
        state: new ReportStateStore(db),
        profiles: new Map([['orders', profile]]),
        observer,
        poster: new RecordingPoster('loop', posted),
        log,
        replicaId: 'loop',
        clock,
        options: { maxConcurrentSessions: 3, pollMs: 20 },
      });
      const started = performance.now();
      scheduler.start();
      scheduler.start(); // idempotent
      // Waits for the outcome; the bound only stops a hang, so it is generous for a loaded machine.
      const deadline = Date.now() + 45_000;
      while (posted.filter((p) => p.kind === 'report').length < 10 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      await scheduler.stop();
      await scheduler.stop();
      const elapsed = performance.now() - started;
      expect(posted.filter((p) => p.kind === 'report')).toHaveLength(10);
      expect(observer.peak).toBe(3);
      expect(observer.running).toBe(0);
      // Further passes at the same instant claim nothing: still ten reports after more timer periods.
      await new Promise((r) => setTimeout(r, 60));
      expect(posted.filter((p) => p.kind === 'report')).toHaveLength(10);
      // A session that ended is no longer part of a pass.
      const reported = await sessions.listActive();
      const ended = reported.find((x) => x.state === 'syncing');
      if (!ended) throw new Error('expected a syncing session');
      await sessions.transition(ended.id, ended.version, 'abort');
      expect((await scheduler.tick(clock.now())).sessions).toBe(9);
      console.info(`10 sessions, 3 probes at a time (30 ms each): ${elapsed.toFixed(0)} ms through the timer`);
    } finally {
      await db.close();
    }
  });
});
