/**
 * Measures what the predicted freeze is made of (domain/freeze-prediction.ts): round trips to the
 * source, the target and the proxy's admin console, the oldest open write transaction on the source
 * (the drain), the lag's time estimate, how many sequences the in-freeze copy sets, and the source's
 * WAL position. A few light queries, run together, never inside a freeze.
 */
import type { FreezeInputs } from '../../domain/freeze-prediction.js';
import type { LagProbe } from '../../domain/ports/replication.js';
import type { Queryable } from './lag-probe.js';

export interface FreezeInputSources {
  source: Queryable;
  target: Queryable;
  lag: LagProbe;
  /** One round trip to the proxy's admin console; absent without a proxy. */
  proxyRoundTripMs?: () => Promise<number>;
}

/** Time of one `SELECT 1` (the pool's connection is opened first, so the connect is not counted). */
async function roundTrip(db: Queryable): Promise<number> {
  await db.query('SELECT 1');
  const started = performance.now();
  await db.query('SELECT 1');
  return performance.now() - started;
}

const SOURCE_FIGURES = `
  SELECT pg_current_wal_lsn()::text AS lsn,
         (SELECT count(*) FROM pg_sequences)::int AS sequences,
         coalesce((SELECT max(extract(epoch FROM clock_timestamp() - xact_start)) * 1000
                     FROM pg_stat_activity
                    WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() AND datname = current_database()), 0)::float8 AS drain_ms`;

export async function measureFreezeInputs(s: FreezeInputSources): Promise<FreezeInputs> {
  const [sourceRttMs, targetRttMs, proxyRttMs, figures, lag] = await Promise.all([
    roundTrip(s.source),
    roundTrip(s.target),
    s.proxyRoundTripMs ? s.proxyRoundTripMs() : Promise.resolve(null),
    s.source.query<{ lsn: string; sequences: number; drain_ms: number }>(SOURCE_FIGURES),
    s.lag.measure(),
  ]);
  const row = figures.rows[0];
  return {
    drainMs: Number(row?.drain_ms ?? 0),
    sourceRttMs,
    targetRttMs,
    proxyRttMs,
    applyDelayMs: lag.known && lag.seconds !== null ? lag.seconds * 1000 : null,
    sequences: Number(row?.sequences ?? 0),
    sourceLsn: row?.lsn ?? 'unknown',
  };
}
