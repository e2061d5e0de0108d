/**
 * Throwaway PostgreSQL 15 clusters for the sandbox and the integration tests: initdb into a temp dir,
 * a free port, password (scram) authentication over TCP, optional wal_level=logical. Every cluster is
 * stopped by stop(), and any left over is stopped when the process exits, so a failing test or an
 * interrupted sandbox never leaks a server. As root (CI) the server runs as the `postgres` OS user.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pgBinDir } from '../simulator/digitalocean/replication.js';
import { freePort } from './free-port.js';

export const RIG_SUPERUSER = 'rig_admin';
export const RIG_PASSWORD = 'rig-password';

export interface ClusterOptions {
  /** wal_level=logical and room for slots and senders (the migration source). */
  logical?: boolean;
  /** Extra postgresql.conf lines. */
  settings?: Record<string, string | number>;
  /** Databases to create besides `postgres`. */
  databases?: string[];
}

export interface Cluster {
  host: string;
  port: number;
  dataDir: string;
  user: string;
  password: string;
  connectionString(database?: string): string;
  /** A connected client; closed by stop() if the test forgets. */
  connect(database?: string): Promise<pg.Client>;
  /** Runs SQL on a fresh connection and returns the rows. */
  query<Row = Record<string, unknown>>(sql: string, params?: unknown[], database?: string): Promise<Row[]>;
  stop(): Promise<void>;
}

/** As root, PostgreSQL (and PgBouncer, Pgpool) must run as an ordinary user. */
export const RUN_AS = process.getuid?.() === 0 ? 'postgres' : undefined;

const running = new Set<() => void>();
process.on('exit', () => {
  for (const stopNow of running) stopNow();
});

/** Runs a program as the rig's OS user, failing with its output. */
export function runAsRigUser(program: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}): string {
  const [cmd, argv] = RUN_AS ? ['runuser', ['-u', RUN_AS, '--', program, ...args]] : [program, args];
  const result = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, ...options.env } });
  if (result.status !== 0) {
    throw new Error(`${program} ${args.join(' ')} failed (${result.status}): ${result.stderr || result.stdout}`);
  }
  return result.stdout;
}

/** A temp dir the rig's OS user owns. */
export function rigTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (RUN_AS) {
    const uid = Number(execFileSync('id', ['-u', RUN_AS], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', RUN_AS], { encoding: 'utf8' }));
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  return dir;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const dataDir = rigTempDir('pgcutover-pg-');
  const pwFile = join(dataDir, 'pwfile');
  writeFileSync(pwFile, RIG_PASSWORD, { mode: 0o644 });
  runAsRigUser(join(pgBinDir(), 'initdb'), [
    '-D',
    join(dataDir, 'data'),
    '-U',
    RIG_SUPERUSER,
    `--pwfile=${pwFile}`,
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  rmSync(pwFile);
  const port = await freePort();
  const settings: Record<string, string | number> = {
    listen_addresses: "'127.0.0.1'",
    port,
    unix_socket_directories: `'${dataDir}'`,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: 100,
    shared_buffers: "'32MB'",
    ...(options.logical
      ? { wal_level: 'logical', max_replication_slots: 10, max_wal_senders: 10, wal_sender_timeout: "'10s'" }
      : {}),
    ...options.settings,
  };
  const conf = Object.entries(settings)
    .map(([key, value]) => `${key} = ${value}`)
    .join('\n');
  writeFileSync(join(dataDir, 'data', 'postgresql.auto.conf'), `${conf}\n`);
  // Replication connections (for subscriptions between rig clusters) authenticate like any other.
  writeFileSync(
    join(dataDir, 'data', 'pg_hba.conf'),
    'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost replication all 127.0.0.1/32 scram-sha-256\n',
  );
  const pgCtl = join(pgBinDir(), 'pg_ctl');
  runAsRigUser(pgCtl, ['-D', join(dataDir, 'data'), '-l', join(dataDir, 'server.log'), '-w', '-t', '30', 'start']);

  const clients = new Set<pg.Client>();
  const stopNow = () => {
    spawnSync(RUN_AS ? 'runuser' : pgCtl, [
      ...(RUN_AS ? ['-u', RUN_AS, '--', pgCtl] : []),
      '-D',
      join(dataDir, 'data'),
      '-m',
      'immediate',
      '-w',
      'stop',
    ]);
    rmSync(dataDir, { recursive: true, force: true });
  };
  running.add(stopNow);

  const connectionString = (database = 'postgres') =>
    `postgres://${RIG_SUPERUSER}:${RIG_PASSWORD}@127.0.0.1:${port}/${database}`;
  const connect = async (database?: string) => {
    const client = new pg.Client({ connectionString: connectionString(database) });
    client.on('error', () => undefined);
    await client.connect();
    clients.add(client);
    client.on('end', () => clients.delete(client));
    return client;
  };
  const cluster: Cluster = {
    host: '127.0.0.1',
    port,
    dataDir,
    user: RIG_SUPERUSER,
    password: RIG_PASSWORD,
    connectionString,
    connect,
    async query<Row>(sql: string, params: unknown[] = [], database?: string) {
      const client = await connect(database);
      try {
        return (await client.query(sql, params)).rows as Row[];
      } finally {
        await client.end();
      }
    },
    async stop() {
      await Promise.all([...clients].map((c) => c.end().catch(() => undefined)));
      running.delete(stopNow);
      stopNow();
    },
  };
  for (const database of options.databases ?? []) {
    await cluster.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  }
  return cluster;
}
