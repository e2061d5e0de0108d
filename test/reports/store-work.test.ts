/**
 * Store work of a report tick, counted statement by statement on both engines: constant per session
 * whatever the number of sessions, bulk loads that read only the reported sessions (never the rows of
 * ended ones), schedules looked up by id, and the status refresh after a report showing the report's
 * own measurement instead of probing again.
 */
import { describe, expect, it } from 'vitest';
import { migrate } from '../../src/adapters/store/migrate.js';
import { ReportStateStore } from '../../src/adapters/store/report-state.js';
import { ReportScheduleStore } from '../../src/adapters/store/approvals.js';
import { useStoreEngines } from '../support/store-engines.js';
import { reportStoreRig, type ReportStoreRig } from '../support/report-store-rig.js';

const { engines } = useStoreEngines();
/** Whole five minutes a day ahead of the real clock: sessions are created now, the rig's clock runs after. */
const T0 = Math.ceil(Date.now() / 300_000) * 300_000 + 24 * 3_600_000;
const CRON = '*/5 * * * *';

interface TickWork {
  perSession: number[];
  rowsPerSession: number[];
  sharedStatements: number;
  sharedRows: number;
}

/** Adds `n` sessions, warms up one tick, then counts the next (a report and a sample due for each). */
async function countTick(rig: ReportStoreRig, n: number, at: number): Promise<TickWork> {
  const made = await rig.addSessions(n, CRON);
  await rig.tick(new Date(at));
  rig.db.reset();
  const summary = await rig.tick(new Date(at + 300_000));
  expect(summary.reports).toHaveLength(n);
  expect(summary.samples).toHaveLength(n);
  expect(summary.failures).toEqual([]);
  const { bySession, shared } = rig.db.counts;
  const work = {
    perSession: made.map((s) => bySession.get(s.id)?.statements ?? 0),
    rowsPerSession: made.map((s) => bySession.get(s.id)?.rows ?? 0),
    sharedStatements: shared.statements,
    sharedRows: shared.rows,
  };
  await rig.endAll();
  return work;
}

describe.each(engines)('store work of a report tick on %s', (_engine, open) => {
  it('is the same per session at 10 and at 50 sessions, and never reads the rows of ended sessions', async () => {
    const db = await open();
    try {
      await migrate(db);
      const rig = reportStoreRig(db);
      const small = await countTick(rig, 10, T0);
      // The 10 sessions above have ended but keep their schedules, claims, windows and samples.
      const large = await countTick(rig, 50, T0 + 3_600_000);

      const [k] = small.perSession;
      expect(k).toBeGreaterThan(0);
      expect(new Set([...small.perSession, ...large.perSession])).toEqual(new Set([k]));
      expect(Math.max(...large.rowsPerSession)).toBe(Math.max(...small.rowsPerSession));
      // A pass's bulk loads: the same statements, and rows in proportion to the reported sessions only.
      expect(large.sharedStatements).toBe(small.sharedStatements);
      expect(large.sharedRows / 50).toBe(small.sharedRows / 10);
      // Every report refreshed the status message with the report's own measurement: no second probe.
      expect(rig.statusLagCalls()).toBe(0);
      expect(rig.statusUpdates()).toBe(2 * (10 + 50));
      console.info(
        `store statements per session per tick: ${k} (10 and 50 sessions); shared per tick: ${small.sharedStatements}, rows ${small.sharedRows} / ${large.sharedRows}`,
      );
    } finally {
      await db.close();
    }
  });

  it('looks up one schedule by its session id, reading one row however many are stored', async () => {
    const db = await open();
    try {
      await migrate(db);
      const rig = reportStoreRig(db);
      const sessions = await rig.addSessions(20, CRON);
      rig.db.reset();
      const one = sessions[7]!;
      expect((await new ReportStateStore(rig.db).schedule(one.id))?.schedule).toMatchObject({ kind: 'cron', expression: CRON });
      expect(await new ReportScheduleStore(rig.db).get(one.id)).toBe(CRON);
      expect(rig.db.counts.statements).toBe(2);
      expect(rig.db.counts.rows).toBe(2);
      expect(rig.db.counts.bySession.get(one.id)).toEqual({ statements: 2, rows: 2 });
    } finally {
      await db.close();
    }
  });
});
