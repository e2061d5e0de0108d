/**
 * PgBouncer's admin console, low level: the simple query protocol only (never parameters, a client-side
 * timeout that destroys the connection), the SHOW rows as zod schemas, and the checks of every name
 * that goes into a console command or the databases file (the console has no quoting).
 */
import type pg from 'pg';
import { z } from 'zod';
import type { Endpoint } from '../../domain/ports/writes.js';
import { CodedError, ErrorCode } from '../../errors.js';

const IDENT = /^[A-Za-z0-9_]+$/;
const HOST = /^[A-Za-z0-9.:_-]+$/;

const num = z.coerce.number();
export const databaseRow = z.object({
  name: z.string(),
  host: z.string().nullable(),
  port: num,
  database: z.string(),
  pool_mode: z.string().nullable(),
  /** Server connections of the database. */
  current_connections: num,
  paused: num,
  disabled: num,
});
export const poolRow = z.object({
  database: z.string(),
  user: z.string(),
  cl_active: num,
  cl_waiting: num,
  sv_active: num,
  sv_idle: num,
  sv_used: num,
  sv_tested: num,
  sv_login: num,
  maxwait: num,
});
export const serverRow = z.object({ database: z.string(), state: z.string() });
const configRow = z.object({ key: z.string(), value: z.string().nullable() });
export type DatabaseRow = z.infer<typeof databaseRow>;
export type PoolRow = z.infer<typeof poolRow>;

/** One simple-protocol query (never parameters); a client-side timer destroys the connection on timeout. */
export async function simple(client: pg.Client, text: string, timeoutMs?: number): Promise<pg.QueryResult> {
  if (timeoutMs === undefined) return client.query(text);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      client.query(text),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          destroy(client);
          reject(new CodedError(ErrorCode.ProxyAdminFailed, `PgBouncer did not answer "${text}" within ${timeoutMs} ms`));
        }, timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function showConfig(admin: pg.Client, timeoutMs: number): Promise<Map<string, string>> {
  const result = await simple(admin, 'SHOW CONFIG', timeoutMs);
  const out = new Map<string, string>();
  for (const raw of result.rows) {
    const row = configRow.safeParse(raw);
    if (row.success && row.data.value !== null) out.set(row.data.key, row.data.value);
  }
  return out;
}

export function destroy(client: pg.Client): void {
  (client.connection.stream as { destroy?: () => void }).destroy?.();
}

export function checkIdent(value: string, what: string): string {
  if (!IDENT.test(value)) {
    throw new CodedError(ErrorCode.ProxyAdminFailed, `${what} "${value}" must match [A-Za-z0-9_]+`);
  }
  return value;
}

export function checkEndpoint(to: Endpoint): void {
  if (!HOST.test(to.host)) throw new CodedError(ErrorCode.ProxyAdminFailed, `Invalid target host "${to.host}"`);
  if (!Number.isInteger(to.port) || to.port < 1 || to.port > 65535) {
    throw new CodedError(ErrorCode.ProxyAdminFailed, `Invalid target port ${to.port}`);
  }
  if (to.database === '' || /[\n\r\0]/.test(to.database)) {
    throw new CodedError(ErrorCode.ProxyAdminFailed, 'Invalid target database name');
  }
}

/** Where a pause stands, from SHOW DATABASES / POOLS / SERVERS on one admin connection. */
export interface DrainState {
  paused: boolean;
  /** Server connections of the database still open (PAUSE answers once this is 0). */
  serverConnections: number;
  clientsWaiting: number;
  clientsActive: number;
  maxWaitSeconds: number;
}

/** Every entry's SHOW DATABASES row by name; an odd row of `own` is an error, another entry's is skipped. */
export async function databaseRows(admin: pg.Client, own: string, timeoutMs: number): Promise<Map<string, DatabaseRow>> {
  const result = await simple(admin, 'SHOW DATABASES', timeoutMs);
  const rows = new Map<string, DatabaseRow>();
  for (const raw of result.rows) {
    const parsed = databaseRow.safeParse(raw);
    if (parsed.success) rows.set(parsed.data.name, parsed.data);
    // Another entry's odd row is not ours to judge; our own must make sense.
    else if ((raw as { name?: unknown }).name === own) {
      throw new CodedError(ErrorCode.ProxyAdminFailed, `Unexpected SHOW DATABASES row: ${parsed.error.message}`);
    }
  }
  return rows;
}

/** The SHOW POOLS rows of `database`. */
export async function pools(admin: pg.Client, database: string, timeoutMs: number): Promise<PoolRow[]> {
  const result = await simple(admin, 'SHOW POOLS', timeoutMs);
  return result.rows
    .filter((r) => (r as { database?: unknown }).database === database)
    .map((r) => {
      const parsed = poolRow.safeParse(r);
      if (!parsed.success) throw new CodedError(ErrorCode.ProxyAdminFailed, `Unexpected SHOW POOLS row: ${parsed.error.message}`);
      return parsed.data;
    });
}

export const sum = (rows: PoolRow[], key: 'cl_active' | 'cl_waiting') => rows.reduce((n, p) => n + p[key], 0);

/** The pause of `database` as the console shows it; undefined when PgBouncer has no such entry. */
export async function drainState(admin: pg.Client, database: string, timeoutMs: number): Promise<DrainState | undefined> {
  const row = (await databaseRows(admin, database, timeoutMs)).get(database);
  if (!row) return undefined;
  const poolRows = await pools(admin, database, timeoutMs);
  const servers = (await simple(admin, 'SHOW SERVERS', timeoutMs)).rows.map((r) => serverRow.parse(r)).filter((r) => r.database === database);
  const inPools = poolRows.reduce((n, p) => n + p.sv_active + p.sv_idle + p.sv_used + p.sv_tested + p.sv_login, 0);
  return {
    paused: row.paused === 1,
    serverConnections: Math.max(inPools, servers.length),
    clientsWaiting: sum(poolRows, 'cl_waiting'),
    clientsActive: sum(poolRows, 'cl_active'),
    maxWaitSeconds: Math.max(0, ...poolRows.map((p) => p.maxwait)),
  };
}

/** RELOAD, its command tag checked (a tag other than RELOAD is an error). */
export async function reload(admin: pg.Client, timeoutMs: number): Promise<void> {
  const result = await simple(admin, 'RELOAD', timeoutMs);
  if (result.command !== 'RELOAD') {
    throw new CodedError(ErrorCode.ProxyAdminFailed, `PgBouncer answered RELOAD with "${result.command}"`);
  }
}

/** RESUME of one entry, its command tag checked; idempotent (an entry not paused is fine). */
export async function resumeEntry(admin: pg.Client, entry: string, timeoutMs: number): Promise<void> {
  try {
    const result = await simple(admin, `RESUME ${checkIdent(entry, 'PgBouncer database name')}`, timeoutMs);
    if (result.command !== 'RESUME') {
      throw new CodedError(ErrorCode.ProxyAdminFailed, `PgBouncer answered RESUME with "${result.command}"`);
    }
  } catch (error) {
    const message = (error as Error).message;
    if (/is not paused|not paused\/suspended/.test(message)) return; // already running: idempotent
    if (error instanceof CodedError) throw error;
    throw new CodedError(ErrorCode.ProxyAdminFailed, `PgBouncer refused RESUME ${entry}: ${message}`, {
      cause: error,
    });
  }
}
