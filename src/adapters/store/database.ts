import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { PGlite, type PGliteOptions } from '@electric-sql/pglite';
import pg from 'pg';
import type { Logger } from '../../log.js';
import type { Secret } from '../../secret.js';
import { lockEmbeddedStore } from './embedded-lock.js';
import { EMBEDDED_TEMPLATE_DIR, seedFromTemplate } from './embedded-template.js';
import './webassembly-baseline.js';

export interface QueryResult<Row> {
  rows: Row[];
  rowCount: number;
}

/** What store code needs from a connection: parameterised queries. Same SQL on both engines. */
export interface SqlClient {
  query<Row = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

export interface Database extends SqlClient {
  readonly engine: 'postgres' | 'embedded';
  /** Runs `work` in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(work: (tx: SqlClient) => Promise<T>): Promise<T>;
  /**
   * Runs `work` while holding a session-level advisory lock on `key`, or returns `undefined` at once
   * when another holder (another replica) has it.
   */
  withTryAdvisoryLock<T>(key: string, work: () => Promise<T>): Promise<T | undefined>;
  close(): Promise<void>;
}

/** A real PostgreSQL server (required when several replicas share the store). */
export function openPostgres(url: Secret, log: Logger): Database {
  const pool = new pg.Pool({ connectionString: url.reveal(), max: 10, connectionTimeoutMillis: 10_000 });
  // An idle client that loses its server must not crash the process.
  pool.on('error', (err) => log.warn({ err: { message: err.message } }, 'store connection lost'));
  const asResult = <Row>(r: pg.QueryResult): QueryResult<Row> => ({ rows: r.rows as Row[], rowCount: r.rowCount ?? 0 });
  return {
    engine: 'postgres',
    async query<Row>(text: string, params: readonly unknown[] = []) {
      return asResult<Row>(await pool.query(text, params as unknown[]));
    },
    async exec(script: string) {
      await pool.query(script);
    },
    async transaction<T>(work: (tx: SqlClient) => Promise<T>) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const tx: SqlClient = {
          query: async <Row>(text: string, params: readonly unknown[] = []) =>
            asResult<Row>(await client.query(text, params as unknown[])),
          exec: async (script: string) => {
            await client.query(script);
          },
        };
        const result = await work(tx);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    async withTryAdvisoryLock<T>(key: string, work: () => Promise<T>) {
      const client = await pool.connect();
      // A dropped lock connection must not crash the process: the lock is gone with it, and another
      // replica's recovery takes over (the pool discards the broken client on release).
      let broken = false;
      const onError = (err: Error) => {
        broken = true;
        log.warn({ err: { message: err.message }, key }, 'advisory lock connection lost');
      };
      client.on('error', onError);
      try {
        const { rows } = await client.query<{ locked: boolean }>(
          'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
          [key],
        );
        if (!rows[0]?.locked) return undefined;
        try {
          return await work();
        } finally {
          // A connection that could not unlock must never go back to the pool still holding the lock.
          await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]).catch(() => {
            broken = true;
          });
        }
      } finally {
        client.off('error', onError);
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}

/**
 * PostgreSQL's default shared_buffers (128MB) becomes resident as the store is used; the store holds a
 * few megabytes, and 8MB brings PGlite from ~300 MB to ~160 MB (README, "Embedded store"). PGlite runs
 * one backend (single-user mode): shared memory sized for the default 100 connections (process slots,
 * lock table) kept 4 MB more resident than for 10.
 */
const EMBEDDED_START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=8MB', '-c', 'max_connections=10'];
/** 1 MB WAL segments instead of 16 MB: a new store (and the template a fresh DATA_DIR copies) is 16 MB smaller. */
const EMBEDDED_INITDB_PARAMS = ['--wal-segsize=1'];

type EngineModule = NonNullable<PGliteOptions['pgliteWasmModule']>;
/** The WebAssembly global, which the ES library types this project compiles against leave out. */
const { WebAssembly: webAssembly } = globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<EngineModule> } };
let engineModule: Promise<EngineModule | undefined> | undefined;

/**
 * Compiles PGlite's WebAssembly (PostgreSQL) once per process. That takes 0.1–0.25 s on other threads:
 * started early (main.ts, and here before the template copy), it overlaps work on the main thread
 * instead of following it. On failure PGlite loads the module itself (and says what is wrong).
 */
export function compileEmbeddedEngine(): Promise<EngineModule | undefined> {
  engineModule ??= readFile(new URL('pglite.wasm', import.meta.resolve('@electric-sql/pglite')))
    .then((bytes) => webAssembly.compile(bytes))
    .catch(() => undefined);
  return engineModule;
}

/**
 * The embedded engine (PGlite, PostgreSQL compiled to WebAssembly) under DATA_DIR: a single-replica
 * install needs no database server. One process owns the directory (a lock file refuses a second), so
 * advisory locks are held in-process. A new directory starts as a copy of the prepared template
 * (embedded-template.ts) when there is one; `undefined` is an in-memory database (tests).
 */
export async function openEmbedded(dataDir: string | undefined, templateDir: string = EMBEDDED_TEMPLATE_DIR): Promise<Database> {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  // Before PGlite touches the directory: a second process must not open it at all.
  const lock = dataDir ? await lockEmbeddedStore(dataDir) : undefined;
  const opened = async () => {
    const engine = compileEmbeddedEngine();
    if (dataDir) seedFromTemplate(dataDir, templateDir);
    const pgliteWasmModule = await engine;
    return PGlite.create(dataDir, {
      startParams: EMBEDDED_START_PARAMS,
      initDbStartParams: EMBEDDED_INITDB_PARAMS,
      ...(pgliteWasmModule ? { pgliteWasmModule } : {}),
    });
  };
  const db = await opened().catch(async (error: unknown) => {
    await lock?.release();
    throw error;
  });
  const heldLocks = new Set<string>();
  const asResult = <Row>(r: { rows: unknown[]; affectedRows?: number }): QueryResult<Row> => ({
    rows: r.rows as Row[],
    rowCount: r.affectedRows ?? r.rows.length,
  });
  return {
    engine: 'embedded',
    async query<Row>(text: string, params: readonly unknown[] = []) {
      return asResult<Row>(await db.query(text, params as unknown[]));
    },
    async exec(script: string) {
      await db.exec(script);
    },
    transaction<T>(work: (tx: SqlClient) => Promise<T>) {
      return db.transaction(async (tx) =>
        work({
          query: async <Row>(text: string, params: readonly unknown[] = []) =>
            asResult<Row>(await tx.query(text, params as unknown[])),
          exec: async (script: string) => {
            await tx.exec(script);
          },
        }),
      );
    },
    async withTryAdvisoryLock<T>(key: string, work: () => Promise<T>) {
      if (heldLocks.has(key)) return undefined;
      heldLocks.add(key);
      try {
        return await work();
      } finally {
        heldLocks.delete(key);
      }
    },
    async close() {
      try {
        await db.close();
      } finally {
        await lock?.release();
      }
    },
  };
}
