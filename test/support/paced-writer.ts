/**
 * A steady client load for the cutover benchmark: `workers` clients through one connection string
 * (PgBouncer), together `perSecond` inserts into `writes` (RIG_SCHEMA), each client on its own fixed
 * schedule. A client held by a freeze skips the ticks it missed instead of bursting afterwards, so the
 * offered load stays steady and the latency of a held write is what the freeze cost it. Keeps every
 * acknowledged write and every error, like cutover-writer.ts. Loopback only. `ready` resolves once every
 * client is connected and the schedule runs.
 *
 * The clients run in a worker thread, with an event loop of their own: the applications are other
 * processes than the bot (or a DBA's script), and 800 writes/s of client callbacks sharing the measured
 * path's event loop would delay every step it awaits. `acked` and `errors` are filled in at stop().
 * The worker is plain JavaScript (no TypeScript loader in a worker): it inserts as writeOnce() does.
 */
import { Worker } from 'node:worker_threads';
import type { Ack } from './cutover-writer.js';

export interface PacedWriter {
  acked: Ack[];
  errors: { at: number; message: string }[];
  ready: Promise<void>;
  stop(): Promise<void>;
}

const CLIENTS = `
const { parentPort, workerData: o } = require('node:worker_threads');
const pg = require('pg');
const pool = new pg.Pool({ connectionString: o.connectionString, max: o.workers, connectionTimeoutMillis: 30000 });
pool.on('error', () => undefined);
const intervalMs = (1000 * o.workers) / o.perSecond;
const stopAt = Date.now() + o.maxDurationMs;
const acked = [];
const errors = [];
let stopping = false;
parentPort.on('message', () => { stopping = true; });
const warm = Promise.all(Array.from({ length: o.workers }, () => pool.connect())).then((clients) => clients.forEach((c) => c.release()));
const loop = async (worker) => {
  await warm;
  let next = performance.now() + (intervalMs * worker) / o.workers;
  for (let seq = 0; !stopping && Date.now() < stopAt; seq++) {
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const id = o.prefix + '-' + worker + '-' + seq;
    const sentAt = Date.now();
    try {
      const { rows } = await pool.query('INSERT INTO writes (id, port) VALUES ($1, inet_server_port()) RETURNING port, n', [id]);
      acked.push({ id, port: Number(rows[0].port), n: Number(rows[0].n), sentAt, ackedAt: Date.now() });
    } catch (error) {
      errors.push({ at: Date.now(), message: error.message });
    }
    next += intervalMs;
    const behind = performance.now() - next;
    if (behind > intervalMs) next += Math.floor(behind / intervalMs) * intervalMs;
  }
};
warm.then(() => parentPort.postMessage({ ready: true }), (error) => parentPort.postMessage({ ready: false, message: error.message }));
Promise.all(Array.from({ length: o.workers }, (_, i) => loop(i)))
  .catch(() => undefined)
  .then(() => pool.end().catch(() => undefined))
  .then(() => parentPort.postMessage({ done: true, acked, errors }));
`;

type FromClients = { ready: true } | { ready: false; message: string } | { done: true; acked: Ack[]; errors: { at: number; message: string }[] };

export function startPacedWriter(
  connectionString: string,
  options: { prefix: string; workers?: number; perSecond?: number; maxDurationMs?: number },
): PacedWriter {
  if (!['127.0.0.1', 'localhost'].includes(new URL(connectionString).hostname)) throw new Error('loopback only');
  const workerData = {
    connectionString,
    prefix: options.prefix,
    workers: options.workers ?? 8,
    perSecond: options.perSecond ?? 800,
    maxDurationMs: options.maxDurationMs ?? 120_000,
  };
  const worker = new Worker(CLIENTS, { eval: true, workerData });
  const acked: Ack[] = [];
  const errors: { at: number; message: string }[] = [];
  let readied!: (outcome: FromClients) => void;
  const readiness = new Promise<FromClients>((resolve) => (readied = resolve));
  const finished = new Promise<void>((resolve, reject) => {
    worker.on('message', (message: FromClients) => {
      if ('ready' in message) readied(message);
      if ('done' in message) {
        acked.push(...message.acked);
        errors.push(...message.errors);
        resolve();
      }
    });
    worker.on('error', (error) => {
      readied({ ready: false, message: error.message });
      reject(error);
    });
  });
  finished.catch(() => undefined);
  return {
    acked,
    errors,
    ready: readiness.then((r) => {
      if (!('ready' in r) || !r.ready) throw new Error(`the write load could not connect: ${'message' in r ? r.message : 'unknown'}`);
    }),
    async stop() {
      worker.postMessage('stop');
      try {
        await finished;
      } finally {
        await worker.terminate();
      }
    },
  };
}
