/**
 * A continuous writer for proxy tests: `workers` loops, each inserting one row per transaction through
 * a connection string (loopback only) and recording every acknowledged write (with the server port that
 * took it) and every error. Bounded: it stops by itself after `maxDurationMs`.
 * Needs `CREATE TABLE writes (id text PRIMARY KEY, port int, at timestamptz DEFAULT now())` on each
 * database the proxy may route to (see `WRITES_TABLE`).
 */
import pg from 'pg';

export const WRITES_TABLE = 'CREATE TABLE writes (id text PRIMARY KEY, port int NOT NULL, at timestamptz NOT NULL DEFAULT now())';

export interface AckedWrite {
  id: string;
  port: number;
  /** When the client sent it and when it was acknowledged (ms since epoch). */
  sentAt: number;
  ackedAt: number;
}

export interface WriteError {
  at: number;
  worker: number;
  message: string;
  code?: string | undefined;
}

export interface WriteLoadOptions {
  connectionString: string;
  workers?: number;
  /** Pause between writes of one worker (ms). */
  intervalMs?: number;
  maxDurationMs?: number;
  /** After an error, wait this long before trying again (ms). */
  retryDelayMs?: number;
}

export interface WriteLoad {
  acked: AckedWrite[];
  errors: WriteError[];
  /** Resolves once `count` more writes have been acknowledged after now. */
  waitForWrites(count: number, timeoutMs?: number): Promise<void>;
  /** Longest time a single write took (ms) since `since`. */
  maxLatencySince(since: number): number;
  stop(): Promise<void>;
}

export function startProxyWriteLoad(options: WriteLoadOptions): WriteLoad {
  const url = new URL(options.connectionString);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw new Error('write-load only writes to loopback addresses');
  }
  const workers = options.workers ?? 4;
  const interval = options.intervalMs ?? 5;
  const retryDelay = options.retryDelayMs ?? 50;
  const stopAt = Date.now() + (options.maxDurationMs ?? 30_000);
  const acked: AckedWrite[] = [];
  const errors: WriteError[] = [];
  let stopping = false;

  const pool = new pg.Pool({ connectionString: options.connectionString, max: workers, connectionTimeoutMillis: 20_000 });
  pool.on('error', () => undefined); // idle clients dropped by the proxy; the next checkout reconnects

  const loop = async (worker: number) => {
    for (let seq = 0; !stopping && Date.now() < stopAt; seq++) {
      const id = `${worker}-${seq}`;
      const sentAt = Date.now();
      try {
        const result = await pool.query<{ port: number }>(
          'INSERT INTO writes (id, port) VALUES ($1, inet_server_port()) RETURNING port',
          [id],
        );
        acked.push({ id, port: Number(result.rows[0]?.port), sentAt, ackedAt: Date.now() });
        if (interval > 0) await sleep(interval);
      } catch (error) {
        const e = error as Error & { code?: string };
        errors.push({ at: Date.now(), worker, message: e.message, code: e.code });
        await sleep(retryDelay);
      }
    }
  };
  const running = Promise.all(Array.from({ length: workers }, (_, i) => loop(i)));

  return {
    acked,
    errors,
    async waitForWrites(count, timeoutMs = 10_000) {
      const target = acked.length + count;
      const deadline = Date.now() + timeoutMs;
      while (acked.length < target) {
        if (Date.now() > deadline) throw new Error(`only ${acked.length}/${target} writes acknowledged in ${timeoutMs} ms`);
        await sleep(10);
      }
    },
    maxLatencySince(since) {
      return Math.max(0, ...acked.filter((w) => w.ackedAt >= since).map((w) => w.ackedAt - w.sentAt));
    },
    async stop() {
      stopping = true;
      await running;
      await pool.end().catch(() => undefined);
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
