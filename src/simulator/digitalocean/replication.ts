/**
 * What the simulator does to real clusters: copy the schema with pg_dump | psql, then a publication on
 * the source and a subscription on the target; and how it reads the subscription's real state back.
 * The source password travels only in PGPASSWORD (child env) and inside the subscription's conninfo;
 * every error message is scrubbed of it before it is kept or logged.
 */
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import type { Secret } from '../../secret.js';

export interface PgEndpoint {
  host: string;
  port: number;
  user: string;
  password: Secret;
  database: string;
}

let binDir: string | undefined;
export function pgBinDir(): string {
  binDir ??= execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  return binDir;
}

/** Replaces every occurrence of the secrets in `text` (error messages from libpq, psql, pg_dump). */
export function scrub(text: string, secrets: readonly Secret[]): string {
  let out = text;
  for (const secret of secrets) {
    const value = secret.reveal();
    if (value.length > 0) out = out.split(value).join('[redacted]');
  }
  return out;
}

export async function withClient<T>(endpoint: PgEndpoint, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: endpoint.host,
    port: endpoint.port,
    user: endpoint.user,
    password: endpoint.password.reveal(),
    database: endpoint.database,
    application_name: 'do-simulator',
    connectionTimeoutMillis: 10_000,
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function libpqEnv(endpoint: PgEndpoint, sslmode: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    PGHOST: endpoint.host,
    PGPORT: String(endpoint.port),
    PGUSER: endpoint.user,
    PGPASSWORD: endpoint.password.reveal(),
    PGDATABASE: endpoint.database,
    PGSSLMODE: sslmode,
    PGCONNECT_TIMEOUT: '10',
    PGAPPNAME: 'do-simulator',
  };
}

/** pg_dump --schema-only of the source database piped into psql on the target database. */
export async function copySchema(source: PgEndpoint, target: PgEndpoint, sslmode: string): Promise<void> {
  const secrets = [source.password, target.password];
  const dump = spawn(
    join(pgBinDir(), 'pg_dump'),
    ['--schema-only', '--no-owner', '--no-privileges', '--no-publications', '--no-subscriptions'],
    { env: libpqEnv(source, sslmode), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const restore = spawn(join(pgBinDir(), 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1'], {
    env: libpqEnv(target, 'prefer'),
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  dump.stdout.pipe(restore.stdin);
  restore.stdin.on('error', () => undefined);
  const collect = (child: ReturnType<typeof spawn>) => {
    let err = '';
    child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
    return new Promise<{ code: number | null; err: string }>((resolve) => {
      child.on('error', (error) => resolve({ code: -1, err: error.message }));
      child.on('close', (code) => resolve({ code, err }));
    });
  };
  const [dumped, restored] = await Promise.all([collect(dump), collect(restore)]);
  if (dumped.code !== 0) throw new Error(scrub(`pg_dump of the source failed: ${dumped.err.trim()}`, secrets));
  if (restored.code !== 0) throw new Error(scrub(`applying the schema on the target failed: ${restored.err.trim()}`, secrets));
}

const conninfoValue = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

export function sourceConninfo(source: PgEndpoint, sslmode: string): string {
  return [
    `host=${conninfoValue(source.host)}`,
    `port=${source.port}`,
    `dbname=${conninfoValue(source.database)}`,
    `user=${conninfoValue(source.user)}`,
    `password=${conninfoValue(source.password.reveal())}`,
    `sslmode=${sslmode}`,
    'connect_timeout=10',
    'application_name=do-simulator',
  ].join(' ');
}

/**
 * The names DigitalOcean's engine gives a migrated database's replication, after aiven-db-migrate
 * (`pgmigrate.py`): slot `aiven_db_migrate_<db>_slot` and publication `aiven_db_migrate_<db>_pub` on the
 * source. The subscription on the target is the simulator's own (DO's target side is not visible).
 */
export interface ReplicationNames {
  subscription: string;
  publication: string;
  slot: string;
}

export function replicationNames(database: string): ReplicationNames {
  const base = `aiven_db_migrate_${database}`;
  return { subscription: `${base}_sub`, publication: `${base}_pub`, slot: `${base}_slot` };
}

/** Publication on the source (all tables, as DO migrates the whole database), subscription on the target. */
export async function createReplication(
  source: PgEndpoint,
  target: PgEndpoint,
  names: ReplicationNames,
  sslmode: string,
): Promise<void> {
  const pub = pg.escapeIdentifier(names.publication);
  await withClient(source, (c) => c.query(`CREATE PUBLICATION ${pub} FOR ALL TABLES`));
  try {
    await withClient(target, (c) =>
      c.query(
        `CREATE SUBSCRIPTION ${pg.escapeIdentifier(names.subscription)} CONNECTION ${pg.escapeLiteral(sourceConninfo(source, sslmode))} PUBLICATION ${pub} WITH (slot_name = ${pg.escapeLiteral(names.slot)})`,
      ),
    );
  } catch (error) {
    await withClient(source, (c) => c.query(`DROP PUBLICATION IF EXISTS ${pub}`)).catch(() => undefined);
    throw new Error(scrub(`creating the subscription failed: ${(error as Error).message}`, [source.password, target.password]));
  }
}

/** Drops the subscription (which drops its slot on the source) and the publication. Idempotent. */
export async function dropReplication(source: PgEndpoint, target: PgEndpoint, names: ReplicationNames): Promise<void> {
  await withClient(target, async (c) => {
    const { rows } = await c.query('SELECT 1 FROM pg_subscription WHERE subname = $1', [names.subscription]);
    if (rows.length > 0) await c.query(`DROP SUBSCRIPTION ${pg.escapeIdentifier(names.subscription)}`);
  });
  await withClient(source, (c) => c.query(`DROP PUBLICATION IF EXISTS ${pg.escapeIdentifier(names.publication)}`)).catch(() => undefined);
}

export type SubscriptionState =
  | { kind: 'missing' }
  | { kind: 'failing'; errors: number }
  | { kind: 'copying'; pendingTables: number }
  | { kind: 'streaming' };

/**
 * The subscription's real state: `copying` while any table is not yet ready (pg_subscription_rel
 * i/d/f), `streaming` when every table is `r`/`s` and the apply worker runs, `failing` when the
 * workers reported errors and no apply worker runs.
 */
export async function subscriptionState(target: PgEndpoint, name: string): Promise<SubscriptionState> {
  return withClient(target, async (c) => {
    const { rows } = await c.query<{ pending: string; workers: string; errors: string | null }>(
      `SELECT
         (SELECT count(*) FROM pg_subscription_rel r WHERE r.srsubid = s.oid AND r.srsubstate NOT IN ('r', 's')) AS pending,
         (SELECT count(*) FROM pg_stat_subscription w WHERE w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL) AS workers,
         (SELECT st.apply_error_count + st.sync_error_count FROM pg_stat_subscription_stats st WHERE st.subid = s.oid) AS errors
       FROM pg_subscription s WHERE s.subname = $1`,
      [name],
    );
    const row = rows[0];
    if (!row) return { kind: 'missing' };
    const errors = Number(row.errors ?? 0);
    if (errors > 0 && Number(row.workers) === 0) return { kind: 'failing', errors };
    const pending = Number(row.pending);
    if (pending > 0 || Number(row.workers) === 0) return { kind: 'copying', pendingTables: pending };
    return { kind: 'streaming' };
  });
}

export async function ensureDatabase(target: PgEndpoint, database: string): Promise<void> {
  await withClient(target, async (c) => {
    const { rows } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rows.length === 0) await c.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  });
}

export async function serverVersion(target: PgEndpoint): Promise<{ major: string; full: string }> {
  return withClient(target, async (c) => {
    const { rows } = await c.query<{ v: string; n: string }>(
      "SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n",
    );
    const row = rows[0];
    return { major: String(Math.floor(Number(row?.n ?? 0) / 10000)), full: (row?.v ?? '').split(' ')[0] ?? '' };
  });
}
