/**
 * PgBouncer's checks before a cutover, without traffic impact: admin access, the database's entry and
 * its pooling mode, the include file (matches what PgBouncer runs, writable), TLS mode, and, when the
 * target carries a user and password, a real login to the target through PgBouncer via a temporary
 * probe entry (added, RELOADed, logged in through, removed and RELOADed again).
 */
import type pg from 'pg';
import type { Endpoint } from '../../domain/ports/writes.js';
import { atomicWrite } from './files.js';
import { showConfig, simple, type DatabaseRow } from './pgbouncer-console.js';
import { checkDatabasesFile, readDatabasesFile, renderConnString } from './pgbouncer-databases-file.js';

export interface PreflightCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** What the checks need of the driver: one admin connection and the driver's own settings. */
export interface PreflightDriver {
  admin: pg.Client;
  database: string;
  options: { admin: { user: string }; databasesFile: string; pauseTimeoutSeconds: number };
  queryTimeoutMs: number;
  row(): Promise<DatabaseRow | undefined>;
  reload(): Promise<void>;
  /** A client of PgBouncer's pooled side for the database `name`. */
  probeClient(name: string): pg.Client;
}

export async function pgbouncerPreflight(d: PreflightDriver, target?: Endpoint): Promise<PreflightCheck[]> {
  const checks: PreflightCheck[] = [];
  const add = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  const row = await d.row();
  const config = await showConfig(d.admin, d.queryTimeoutMs);
  add('admin console', true, `connected as ${d.options.admin.user}`);
  if (!row) {
    add('database entry', false, `PgBouncer has no database "${d.database}"`);
    return checks;
  }
  const mode = row.pool_mode ?? config.get('pool_mode') ?? 'unknown';
  add('pooling mode', mode === 'transaction', mode === 'transaction' ? 'transaction pooling' : `${mode} pooling: PAUSE needs transaction pooling`);
  add('not paused', row.paused === 0, row.paused === 0 ? 'running' : 'the database is paused right now');
  const wait = Number(config.get('query_wait_timeout') ?? 120);
  add('query_wait_timeout', wait === 0 || wait > d.options.pauseTimeoutSeconds, `query_wait_timeout = ${wait} s (clients held longer are disconnected)`);
  for (const check of await checkDatabasesFile(d.options.databasesFile, d.database, row)) add(check.name, check.ok, check.detail);
  if (target) {
    const tlsMode = config.get('server_tls_sslmode') ?? 'disable';
    const tlsOk = !target.tls || (tlsMode !== 'disable' && tlsMode !== 'allow');
    add('TLS to target', tlsOk, `server_tls_sslmode = ${tlsMode}${target.tls ? ' (target requires TLS)' : ''}`);
    if (target.user && target.password) add(...(await probe(d, target)));
    else add('target through proxy', false, 'not probed: no target user/password given');
  }
  return checks;
}

/** Adds `<db>_pgcutover_probe` pointing at the target, logs in through PgBouncer, removes it. */
async function probe(d: PreflightDriver, target: Endpoint): Promise<[string, boolean, string]> {
  const file = d.options.databasesFile;
  const name = `${d.database}_pgcutover_probe`;
  const before = await readDatabasesFile(file);
  const text = `${before.endsWith('\n') || before === '' ? before : `${before}\n`}${name} = ${renderConnString(new Map(), target)}\n`;
  try {
    await atomicWrite(file, text);
    await d.reload();
    const client = d.probeClient(name);
    client.on('error', () => undefined);
    try {
      await client.connect();
      const result = await simple(
        client,
        'SELECT inet_server_port() AS port, current_database() AS db, coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false) AS ssl',
        d.queryTimeoutMs,
      );
      const r = result.rows[0] as { port?: number; db?: string; ssl?: boolean } | undefined;
      const tlsOk = !target.tls || r?.ssl === true;
      return ['target through proxy', tlsOk, `logged in to ${r?.db} on port ${r?.port}, TLS ${r?.ssl ? 'on' : 'off'}`];
    } catch (error) {
      return ['target through proxy', false, `login through PgBouncer failed: ${(error as Error).message}`];
    } finally {
      await client.end().catch(() => undefined);
    }
  } finally {
    await atomicWrite(file, before);
    await d.reload().catch(() => undefined);
  }
}
