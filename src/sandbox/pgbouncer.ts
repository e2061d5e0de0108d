/**
 * A real PgBouncer (Debian's /usr/sbin/pgbouncer) for the sandbox and the integration tests.
 * Its [databases] entries live in an absolute-path `%include` file, as the bot expects in production,
 * so a test can repoint by rewriting that file. Stopped by stop() or when the process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';
import { RIG_PASSWORD, RIG_SUPERUSER, RUN_AS, rigTempDir } from './pg-cluster.js';

export const PGBOUNCER_BIN = '/usr/sbin/pgbouncer';
export const PGBOUNCER_ADMIN = 'pgb_admin';
export const PGBOUNCER_ADMIN_PASSWORD = 'pgb-admin-password';

export interface BouncerDatabase {
  host: string;
  port: number;
  dbname: string;
}

export interface PgBouncerOptions {
  /** Entries of the included databases file, by the name clients use. */
  databases: Record<string, BouncerDatabase>;
  poolMode?: 'session' | 'transaction';
  /** Extra [pgbouncer] settings. */
  settings?: Record<string, string | number>;
  /** Client logins (user → password), passed on to the servers; default the rig superuser. */
  users?: Record<string, string>;
}

export interface PgBouncer {
  host: string;
  port: number;
  databasesFile: string;
  logFile: string;
  /** The PgBouncer process (a test may stop it with SIGSTOP to hold an admin command in flight). */
  pid: number;
  adminUser: string;
  adminPassword: string;
  /** A client connection string through the pooler as the rig superuser. */
  connectionString(database: string): string;
  /** A connection to the admin console (simple queries only). */
  admin(): Promise<pg.Client>;
  /** Renders a databases file body for the given entries. */
  renderDatabases(databases: Record<string, BouncerDatabase>): string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

const render = (databases: Record<string, BouncerDatabase>) =>
  Object.entries(databases)
    .map(([name, db]) => `${name} = host=${db.host} port=${db.port} dbname=${db.dbname}\n`)
    .join('');

export async function startPgBouncer(options: PgBouncerOptions): Promise<PgBouncer> {
  if (!existsSync(PGBOUNCER_BIN)) throw new Error(`${PGBOUNCER_BIN} is missing: apt-get install -y pgbouncer`);
  const dir = rigTempDir('pgcutover-pgbouncer-');
  const port = await freePort();
  const databasesFile = join(dir, 'databases.ini');
  const logFile = join(dir, 'pgbouncer.log');
  writeFileSync(databasesFile, render(options.databases), { mode: 0o666 });
  writeFileSync(
    join(dir, 'userlist.txt'),
    Object.entries({ ...(options.users ?? { [RIG_SUPERUSER]: RIG_PASSWORD }), [PGBOUNCER_ADMIN]: PGBOUNCER_ADMIN_PASSWORD })
      .map(([user, password]) => `"${user.replaceAll('"', '""')}" "${password.replaceAll('"', '""')}"\n`)
      .join(''),
    { mode: 0o644 },
  );
  const settings: Record<string, string | number> = {
    listen_addr: '127.0.0.1',
    listen_port: port,
    unix_socket_dir: '',
    auth_type: 'scram-sha-256',
    auth_file: join(dir, 'userlist.txt'),
    admin_users: PGBOUNCER_ADMIN,
    pool_mode: options.poolMode ?? 'transaction',
    default_pool_size: 20,
    max_client_conn: 500,
    logfile: logFile,
    pidfile: join(dir, 'pgbouncer.pid'),
    server_login_retry: 1,
    ...options.settings,
  };
  const ini = [
    '[databases]',
    `%include ${databasesFile}`,
    '',
    '[pgbouncer]',
    ...Object.entries(settings).map(([k, v]) => `${k} = ${v}`),
    '',
  ].join('\n');
  const iniFile = join(dir, 'pgbouncer.ini');
  writeFileSync(iniFile, ini, { mode: 0o644 });

  // pgbouncer refuses to run as root; -u makes it drop to the rig user itself (signals reach it directly).
  const child = spawn(PGBOUNCER_BIN, [...(RUN_AS ? ['-u', RUN_AS] : []), iniFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  running.add(child);
  child.on('exit', () => running.delete(child));

  const admin = async () => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: PGBOUNCER_ADMIN,
      password: PGBOUNCER_ADMIN_PASSWORD,
      database: 'pgbouncer',
    });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };
  await waitUntilReady(admin, () => stderr + (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''));

  return {
    pid: child.pid ?? 0,
    host: '127.0.0.1',
    port,
    databasesFile,
    logFile,
    adminUser: PGBOUNCER_ADMIN,
    adminPassword: PGBOUNCER_ADMIN_PASSWORD,
    connectionString: (database) => `postgres://${RIG_SUPERUSER}:${RIG_PASSWORD}@127.0.0.1:${port}/${database}`,
    admin,
    renderDatabases: render,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        // SIGTERM is an immediate shutdown in 1.18 (SIGINT would wait for clients).
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitUntilReady(admin: () => Promise<pg.Client>, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const client = await admin();
      await client.end();
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(`pgbouncer did not start: ${(error as Error).message}\n${output()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
