/**
 * A steady client load for the cutover benchmark: `workers` clients through one connection string
 * (PgBouncer), together `perSecond` inserts into `writes` (RIG_SCHEMA), each client on its own fixed
 * schedule. A client held by a freeze skips the ticks it missed instead of bursting afterwards, so the
 * offered load stays steady and the latency of a held write is what the freeze cost it. Keeps every
 * acknowledged write and every error, like cutover-writer.ts. Loopback only. `ready` resolves once every
 * client is connected and the schedule runs.
 */
import pg from 'pg';
import { writeOnce, type Ack } from './cutover-writer.js';

export interface PacedWriter {
  acked: Ack[];
  errors: { at: number; message: string }[];
  ready: Promise<void>;
  stop(): Promise<void>;
}

export function startPacedWriter(
  connectionString: string,
  options: { prefix: string; workers?: number; perSecond?: number; maxDurationMs?: number },
): PacedWriter {
  if (!['127.0.0.1', 'localhost'].includes(new URL(connectionString).hostname)) throw new Error('loopback only');
  const workers = options.workers ?? 8;
  const intervalMs = (1000 * workers) / (options.perSecond ?? 800);
  const stopAt = Date.now() + (options.maxDurationMs ?? 120_000);
  const pool = new pg.Pool({ connectionString, max: workers, connectionTimeoutMillis: 30_000 });
  pool.on('error', () => undefined);
  const acked: Ack[] = [];
  const errors: { at: number; message: string }[] = [];
  let stopping = false;
  // Every client connected (and authenticated) before the first tick, so no write's latency includes a login.
  const warm = Promise.all(Array.from({ length: workers }, () => pool.connect())).then((clients) => clients.forEach((c) => c.release()));
  const loop = async (worker: number) => {
    await warm;
    // Staggered starts spread the clients' ticks over the interval.
    let next = performance.now() + (intervalMs * worker) / workers;
    for (let seq = 0; !stopping && Date.now() < stopAt; seq++) {
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await writeOnce(pool, `${options.prefix}-${worker}-${seq}`, acked, errors);
      next += intervalMs;
      const behind = performance.now() - next;
      if (behind > intervalMs) next += Math.floor(behind / intervalMs) * intervalMs;
    }
  };
  const running = Promise.all(Array.from({ length: workers }, (_, i) => loop(i)));
  running.catch(() => undefined); // a failed login is reported through `ready`
  return {
    acked,
    errors,
    ready: warm,
    async stop() {
      stopping = true;
      await running;
      await pool.end().catch(() => undefined);
    },
  };
}
