/**
 * One report tick (ReportScheduler.tick) at 100 and at 500 reported sessions on a PostgreSQL store,
 * every session with its own cron schedule and a report and a sample due at each tick. The report path
 * is production's (scheduler, Slack report poster, status message refresh) with stub Slack clients and
 * an in-memory observer, so what grows with the sessions is store work. Each statement store code
 * sends is counted (test/support/counting-database.ts), per session and per tick. Run with
 * `npx vitest bench --run bench/report-tick.bench.ts`; figures are printed at the end.
 */
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { openPostgres, type Database } from '../src/adapters/store/database.js';
import { migrate } from '../src/adapters/store/migrate.js';
import { createLogger } from '../src/log.js';
import { Secret } from '../src/secret.js';
import { startCluster, type Cluster } from '../test/support/pg-cluster.js';
import { reportStoreRig, type ReportStoreRig } from '../test/support/report-store-rig.js';

const SIZES = [100, 500] as const;
const CRON = '*/5 * * * *';
const ITERATIONS = 5;
/** Whole five minutes a day ahead: the sessions are created now, the rig's clock runs after. */
const T0 = Math.ceil(Date.now() / 300_000) * 300_000 + 24 * 3_600_000;

interface Run {
  wallMs: number;
  statements: number;
  perSession: number;
  maxPerSession: number;
  shared: number;
  rows: number;
}

let cluster: Cluster;
const dbs: Database[] = [];
const rigs = new Map<number, { rig: ReportStoreRig; at: number; runs: Run[] }>();

beforeAll(async () => {
  cluster = await startCluster({ databases: SIZES.map((n) => `ticks_${n}`) });
  for (const n of SIZES) {
    const db = openPostgres(new Secret(cluster.connectionString(`ticks_${n}`)), createLogger('silent'));
    dbs.push(db);
    await migrate(db);
    const rig = reportStoreRig(db);
    await rig.addSessions(n, CRON);
    // The first tick creates each session's claims, window and alert rows; the measured ones update them.
    await rig.tick(new Date(T0));
    rigs.set(n, { rig, at: T0, runs: [] });
  }
}, 300_000);

afterAll(async () => {
  await Promise.all(dbs.map((db) => db.close()));
  await cluster?.stop();
  const lines = ['', `report tick on a PostgreSQL store, every session on cron "${CRON}", a report and a sample due per session:`];
  const medians = new Map<number, Run>();
  for (const [n, { runs }] of rigs) {
    if (runs.length === 0) continue;
    const sorted = [...runs].sort((a, b) => a.wallMs - b.wallMs);
    const median = sorted[Math.floor(sorted.length / 2)] as Run;
    medians.set(n, median);
    lines.push(
      `  ${String(n).padStart(3)} sessions: ${median.statements} statements per tick = ${median.perSession.toFixed(1)} per session (max ${median.maxPerSession}) + ${median.shared} per tick; ` +
        `${(median.rows / n).toFixed(1)} rows read per session; wall ${median.wallMs.toFixed(0)} ms median of ${runs.length} (${(median.wallMs / n).toFixed(2)} ms per session)`,
    );
  }
  const small = medians.get(SIZES[0]);
  const large = medians.get(SIZES[1]);
  if (small && large) {
    lines.push(
      `  ×${SIZES[1] / SIZES[0]} sessions → ×${(large.statements / small.statements).toFixed(2)} statements, ×${(large.rows / small.rows).toFixed(2)} rows, ×${(large.wallMs / small.wallMs).toFixed(2)} wall time`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
});

describe('report tick', () => {
  for (const n of SIZES) {
    bench(
      `${n} sessions`,
      async () => {
        const entry = rigs.get(n);
        if (!entry) throw new Error('rig not started');
        entry.at += 300_000;
        entry.rig.db.reset();
        const started = performance.now();
        const summary = await entry.rig.tick(new Date(entry.at));
        const wallMs = performance.now() - started;
        if (summary.reports.length !== n || summary.failures.length > 0) {
          throw new Error(`expected ${n} reports, got ${summary.reports.length} (${summary.failures.length} failures)`);
        }
        const { statements, rows, bySession, shared } = entry.rig.db.counts;
        const per = [...bySession.values()].map((c) => c.statements);
        entry.runs.push({
          wallMs,
          statements,
          perSession: per.reduce((a, b) => a + b, 0) / n,
          maxPerSession: Math.max(...per),
          shared: shared.statements,
          rows,
        });
      },
      { iterations: ITERATIONS, time: 0, warmupIterations: 0, warmupTime: 0 },
    );
  }
});
