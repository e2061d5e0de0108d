/**
 * The continuous client of the cutover tests: `workers` loops through one connection string (PgBouncer),
 * one row per transaction into `writes` (see RIG_SCHEMA), each id unique across runs (`prefix`). Keeps
 * every acknowledged write (id, the server port that took it, the sequence value it got) and every error.
 * Loopback only; stops by itself after `maxDurationMs`.
 */
import pg from 'pg';

export interface Ack {
  id: string;
  port: number;
  n: number;
  sentAt: number;
  ackedAt: number;
}

export interface Writer {
  acked: Ack[];
  errors: { at: number; message: string }[];
  readonly startedAt: number;
  stop(): Promise<{ acked: number; errors: number; seconds: number; perSecond: number; maxLatencyMs: number }>;
}

/** One row into `writes`, recorded as acknowledged (with the server port and sequence value) or as an error. */
export async function writeOnce(pool: pg.Pool, id: string, acked: Ack[], errors: { at: number; message: string }[]): Promise<boolean> {
  const sentAt = Date.now();
  try {
    const { rows } = await pool.query<{ port: number; n: string }>('INSERT INTO writes (id, port) VALUES ($1, inet_server_port()) RETURNING port, n', [id]);
    acked.push({ id, port: Number(rows[0]?.port), n: Number(rows[0]?.n), sentAt, ackedAt: Date.now() });
    return true;
  } catch (error) {
    errors.push({ at: Date.now(), message: (error as Error).message });
    return false;
  }
}

export function startWriter(connectionString: string, options: { prefix: string; workers?: number; maxDurationMs?: number }): Writer {
  if (!['127.0.0.1', 'localhost'].includes(new URL(connectionString).hostname)) throw new Error('loopback only');
  const workers = options.workers ?? 8;
  const stopAt = Date.now() + (options.maxDurationMs ?? 60_000);
  const pool = new pg.Pool({ connectionString, max: workers, connectionTimeoutMillis: 30_000 });
  pool.on('error', () => undefined);
  const acked: Ack[] = [];
  const errors: { at: number; message: string }[] = [];
  let stopping = false;
  const startedAt = Date.now();
  const loop = async (worker: number) => {
    for (let seq = 0; !stopping && Date.now() < stopAt; seq++) {
      if (!(await writeOnce(pool, `${options.prefix}-${worker}-${seq}`, acked, errors))) await new Promise((r) => setTimeout(r, 20));
    }
  };
  const running = Promise.all(Array.from({ length: workers }, (_, i) => loop(i)));
  return {
    acked,
    errors,
    startedAt,
    async stop() {
      stopping = true;
      await running;
      await pool.end().catch(() => undefined);
      const seconds = (Date.now() - startedAt) / 1000;
      return {
        acked: acked.length,
        errors: errors.length,
        seconds,
        perSecond: Math.round(acked.length / seconds),
        // A loop, not Math.max(...spread): a long run acknowledges more writes than the call stack holds arguments.
        maxLatencyMs: acked.reduce((max, a) => Math.max(max, a.ackedAt - a.sentAt), 0),
      };
    },
  };
}
