/**
 * Housekeeping on both engines: the report rows and lag samples of sessions that ended a while ago
 * go, those of active and recently ended sessions stay, idempotency keys older than a day go; and the
 * scheduler runs it at most once per period.
 */
import { describe, expect, it } from 'vitest';
import type { Database } from '../../src/adapters/store/database.js';
import { StoreHousekeeping } from '../../src/adapters/store/housekeeping.js';
import { IdempotencyStore } from '../../src/adapters/store/approvals.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { ReportStateStore } from '../../src/adapters/store/report-state.js';
import { ReportTickStore } from '../../src/adapters/store/report-ticks.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import { createLogger } from '../../src/log.js';
import { ReportScheduler } from '../../src/reports/scheduler.js';
import { useStoreEngines } from '../support/store-engines.js';
import { reportStoreRig } from '../support/report-store-rig.js';

const { engines } = useStoreEngines();
const T0 = Math.ceil(Date.now() / 300_000) * 300_000 + 24 * 3_600_000;
const TABLES = ['report_schedules', 'report_ticks', 'report_alerts', 'report_windows', 'lag_samples'] as const;

async function rowsOf(db: Database, sessionId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of TABLES) {
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE session_id = $1`, [sessionId]);
    counts[table] = rows[0]?.n ?? 0;
  }
  return counts;
}

describe.each(engines)('store housekeeping on %s', (_engine, open) => {
  it('prunes the rows of sessions that ended before the grace period, and old idempotency keys', async () => {
    const db = await open();
    try {
      await migrate(db);
      const rig = reportStoreRig(db);
      const [ended] = await rig.addSessions(1, 'every 5m');
      await rig.tick(new Date(T0));
      await rig.endAll();
      const [active] = await rig.addSessions(1, 'every 5m');
      await rig.tick(new Date(T0 + 300_000));
      const keys = new IdempotencyStore(db);
      const now = new Date();
      await keys.claim('action:old', new Date(now.getTime() - 25 * 3_600_000));
      await keys.claim('action:fresh', new Date(now.getTime() - 3_600_000));
      const everything = { report_schedules: 1, report_ticks: 2, report_alerts: 5, report_windows: 1, lag_samples: 1 };
      expect(await rowsOf(db, ended!.id)).toEqual(everything);
      expect(await rowsOf(db, active!.id)).toEqual(everything);

      // Within the grace period an ended session keeps its rows (a last status refresh may read them).
      const housekeeping = new StoreHousekeeping(db, { endedGraceMs: 3_600_000 });
      const early = await housekeeping.prune(now);
      expect(early).toMatchObject({ report_schedules: 0, report_ticks: 0, idempotency_keys: 1 });
      expect(await keys.exists('action:old')).toBe(false);
      expect(await keys.exists('action:fresh')).toBe(true);

      const later = await housekeeping.prune(new Date(now.getTime() + 2 * 3_600_000));
      expect(later).toEqual({ ...everything, idempotency_keys: 0 });
      expect(await rowsOf(db, ended!.id)).toEqual({ report_schedules: 0, report_ticks: 0, report_alerts: 0, report_windows: 0, lag_samples: 0 });
      expect(await rowsOf(db, active!.id)).toEqual(everything);
      // The session itself and its audit trail stay.
      expect((await db.query('SELECT 1 FROM sessions WHERE id = $1', [ended!.id])).rows).toHaveLength(1);
      await rig.endAll();
    } finally {
      await db.close();
    }
  });
});

describe('housekeeping from the scheduler', () => {
  it('runs on the first pass and then at most once per period', async () => {
    const [, open] = engines[0]!;
    const db = await open();
    try {
      await migrate(db);
      const runs: Date[] = [];
      const scheduler = new ReportScheduler({
        sessions: new SessionStore(db),
        ticks: new ReportTickStore(db),
        state: new ReportStateStore(db),
        profiles: new Map(),
        observer: { observe: () => Promise.reject(new Error('no sessions here')) },
        poster: { postInThread: async () => undefined, alertChannel: async () => undefined, refreshStatus: async () => undefined },
        housekeeping: {
          prune: async (at) => {
            runs.push(at);
            return {};
          },
        },
        log: createLogger('silent'),
        replicaId: 'hk',
        options: { housekeepingEveryMs: 300_000 },
      });
      for (const minute of [0, 1, 4, 5, 6, 10]) await scheduler.tick(new Date(T0 + minute * 60_000));
      expect(runs.map((d) => (d.getTime() - T0) / 60_000)).toEqual([0, 5, 10]);
    } finally {
      await db.close();
    }
  });
});
