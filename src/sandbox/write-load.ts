/**
 * The sandbox's steady application: `perSecond` inserts into WRITES_TABLE through one connection string
 * (PgBouncer, or the source directly), each on a fixed schedule, each recording which server took it
 * (`inet_server_addr():inet_server_port()`, compared with what the source and the target report for
 * themselves). Per second it keeps writes by server, errors and the replication lag measured on the
 * source, for the console's panel. A client held by a freeze skips the ticks it missed.
 */
import pg from 'pg';
import { SlotLagProbe } from '../adapters/source/lag-probe.js';

export const WRITES_TABLE = 'pgcutover_sandbox_writes';

/** Idempotent: what the load needs on the source database. */
export const WRITES_SCHEMA = `
  CREATE TABLE IF NOT EXISTS public.${WRITES_TABLE} (
    id         bigserial PRIMARY KEY,
    note       text NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now()
  );
  COMMENT ON TABLE public.${WRITES_TABLE} IS 'pgcutover sandbox: rows of the rehearsal write load; safe to drop'`;

export type Landing = 'source' | 'target' | 'other';

export interface LoadSecond {
  /** Unix seconds. */
  at: number;
  source: number;
  target: number;
  other: number;
  errors: number;
  /** Lag in bytes measured at the end of the second; null when unknown. */
  lagBytes: number | null;
}

export interface LoadView {
  perSecondTarget: number;
  via: string;
  totals: { source: number; target: number; other: number; errors: number };
  lastError: string | null;
  /** Oldest first; at most HISTORY_SECONDS. */
  seconds: LoadSecond[];
  lag: { bytes: number | null; seconds: number | null; reason: string | null };
}

export interface WriteLoadOptions {
  /** Where the application connects (PgBouncer or the source). */
  connectionString: string;
  /** How the application connects, for the panel (`PgBouncer`, `directly`). */
  via: string;
  /** Direct connections to the source and the target database, to tell where a write landed and to measure lag. */
  source: string;
  target: string;
  perSecond?: number;
  workers?: number;
}

export interface WriteLoad {
  view(): LoadView;
  /** Points the application at another server (the connection-parameters strategy's hand-out). */
  repoint(connectionString: string): Promise<void>;
  stop(): Promise<void>;
}

const HISTORY_SECONDS = 120;
const LANDING_SQL = `SELECT host(inet_server_addr()) || ':' || inet_server_port() AS server`;

async function serverOf(connectionString: string): Promise<string> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<{ server: string }>(LANDING_SQL)).rows[0]?.server ?? '';
  } finally {
    await client.end().catch(() => undefined);
  }
}

const newPool = (connectionString: string, max: number) => {
  const pool = new pg.Pool({ connectionString, max, connectionTimeoutMillis: 60_000 });
  pool.on('error', () => undefined); // idle clients dropped by a freeze or a switch; the next checkout reconnects
  return pool;
};

export async function startWriteLoad(options: WriteLoadOptions): Promise<WriteLoad> {
  const [sourceServer, targetServer] = await Promise.all([serverOf(options.source), serverOf(options.target)]);
  const perSecond = options.perSecond ?? 40;
  const workers = options.workers ?? 4;
  const intervalMs = (1000 * workers) / perSecond;
  let pool = newPool(options.connectionString, workers);
  const lagPool = newPool(options.source, 1);
  const probe = new SlotLagProbe({ source: lagPool, slot: 'auto' });
  const totals = { source: 0, target: 0, other: 0, errors: 0 };
  const seconds: LoadSecond[] = [];
  let lastError: string | null = null;
  let lag: LoadView['lag'] = { bytes: null, seconds: null, reason: 'not measured yet' };
  let stopping = false;

  const current = (): LoadSecond => {
    const at = Math.floor(Date.now() / 1000);
    let last = seconds.at(-1);
    if (!last || last.at !== at) {
      last = { at, source: 0, target: 0, other: 0, errors: 0, lagBytes: lag.bytes };
      seconds.push(last);
      if (seconds.length > HISTORY_SECONDS) seconds.shift();
    }
    return last;
  };
  const landed = (server: string): Landing => (server === sourceServer ? 'source' : server === targetServer ? 'target' : 'other');

  const writeOnce = async (worker: number, seq: number) => {
    try {
      const { rows } = await pool.query<{ server: string }>(
        `INSERT INTO public.${WRITES_TABLE} (note) VALUES ($1) RETURNING (${LANDING_SQL})`,
        [`worker ${worker} write ${seq}`],
      );
      const where = landed(rows[0]?.server ?? '');
      totals[where]++;
      current()[where]++;
    } catch (error) {
      totals.errors++;
      current().errors++;
      lastError = (error as Error).message;
    }
  };
  const loop = async (worker: number) => {
    let next = performance.now() + (intervalMs * worker) / workers;
    for (let seq = 0; !stopping; seq++) {
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (stopping) return;
      await writeOnce(worker, seq);
      next += intervalMs;
      const behind = performance.now() - next;
      if (behind > intervalMs) next += Math.floor(behind / intervalMs) * intervalMs;
    }
  };
  const running = Promise.all(Array.from({ length: workers }, (_, i) => loop(i)));
  const measure = async () => {
    const sample = await probe.measure().catch((error: unknown) => ({ known: false as const, reason: (error as Error).message }));
    lag = sample.known ? { bytes: sample.bytes, seconds: sample.seconds, reason: null } : { bytes: null, seconds: null, reason: sample.reason };
    current().lagBytes = lag.bytes;
  };
  const lagTimer = setInterval(() => void measure(), 1000);

  return {
    view: () => ({
      perSecondTarget: perSecond,
      via: options.via,
      totals: { ...totals },
      lastError,
      seconds: seconds.map((s) => ({ ...s })),
      lag: { ...lag },
    }),
    async repoint(connectionString) {
      const old = pool;
      pool = newPool(connectionString, workers);
      await old.end().catch(() => undefined);
    },
    async stop() {
      stopping = true;
      clearInterval(lagTimer);
      await running;
      await Promise.all([pool.end().catch(() => undefined), lagPool.end().catch(() => undefined)]);
    },
  };
}
