/**
 * A real Pgpool-II 4.3 (Debian's /usr/sbin/pgpool) for integration tests, in raw mode in front of two
 * rig clusters: node 0 = source (DISALLOW_TO_FAILOVER), node 1 = target (ALLOW_TO_FAILOVER). Runs in
 * the foreground (-n) as the rig's OS user, in its own process group so stop() can always reap every
 * child; any instance left over is killed when the worker exits.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';
import { RIG_PASSWORD, RIG_SUPERUSER, RUN_AS, rigTempDir } from './pg-cluster.js';

export const PGPOOL_BIN = '/usr/sbin/pgpool';
export const PCP_USER = 'pcp_admin';
export const PCP_PASSWORD = 'pcp-password';

export interface PgpoolBackend {
  host: string;
  port: number;
}

export interface PgpoolOptions {
  /** Node 0 (the source) and node 1 (the target). */
  backends: [PgpoolBackend, PgpoolBackend];
  /** Extra pgpool.conf lines. */
  settings?: Record<string, string | number>;
}

export interface Pgpool {
  host: string;
  port: number;
  pcpPort: number;
  pcpUser: string;
  pcpPassword: string;
  configFile: string;
  logFile: string;
  connectionString(database: string): string;
  /** The log so far (stderr of the pgpool process tree). */
  log(): string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

const quote = (value: string | number) => (typeof value === 'number' ? String(value) : `'${value}'`);

export async function startPgpool(options: PgpoolOptions): Promise<Pgpool> {
  if (!existsSync(PGPOOL_BIN)) throw new Error(`${PGPOOL_BIN} is missing: apt-get install -y pgpool2`);
  const dir = rigTempDir('pgcutover-pgpool-');
  const [port, pcpPort] = [await freePort(), await freePort()];
  const configFile = join(dir, 'pgpool.conf');
  const logFile = join(dir, 'pgpool.log');
  const settings: Record<string, string | number> = {
    backend_clustering_mode: 'raw',
    listen_addresses: '127.0.0.1',
    port,
    socket_dir: dir,
    pcp_listen_addresses: '127.0.0.1',
    pcp_port: pcpPort,
    pcp_socket_dir: dir,
    ...Object.fromEntries(
      options.backends.flatMap((b, i) => [
        [`backend_hostname${i}`, b.host],
        [`backend_port${i}`, b.port],
        [`backend_weight${i}`, 1],
        [`backend_flag${i}`, i === 0 ? 'DISALLOW_TO_FAILOVER' : 'ALLOW_TO_FAILOVER'],
      ]),
    ),
    enable_pool_hba: 'on',
    pool_passwd: join(dir, 'pool_passwd'),
    num_init_children: 6,
    max_pool: 2,
    connection_cache: 'on',
    load_balance_mode: 'off',
    health_check_period: 0,
    sr_check_period: 0,
    failover_command: '',
    failback_command: '',
    failover_on_backend_error: 'off',
    logdir: dir,
    pid_file_name: join(dir, 'pgpool.pid'),
    log_destination: 'stderr',
    log_min_messages: 'info',
    ...options.settings,
  };
  writeFileSync(
    configFile,
    Object.entries(settings)
      .map(([k, v]) => `${k} = ${quote(v)}\n`)
      .join(''),
    { mode: 0o644 },
  );
  const md5 = createHash('md5').update(PCP_PASSWORD).digest('hex');
  writeFileSync(join(dir, 'pcp.conf'), `${PCP_USER}:${md5}\n`, { mode: 0o644 });
  writeFileSync(join(dir, 'pool_hba.conf'), 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n', {
    mode: 0o644,
  });
  // Pgpool authenticates to the (scram) backends itself, with the plaintext password from pool_passwd.
  writeFileSync(join(dir, 'pool_passwd'), `${RIG_SUPERUSER}:TEXT${RIG_PASSWORD}\n`, { mode: 0o644 });
  if (RUN_AS) {
    for (const file of ['pgpool.conf', 'pcp.conf', 'pool_hba.conf', 'pool_passwd']) {
      execFileSync('chown', [RUN_AS, join(dir, file)]);
    }
  }

  const ids = RUN_AS
    ? {
        uid: Number(execFileSync('id', ['-u', RUN_AS], { encoding: 'utf8' })),
        gid: Number(execFileSync('id', ['-g', RUN_AS], { encoding: 'utf8' })),
      }
    : {};
  const child = spawn(
    PGPOOL_BIN,
    ['-n', '-D', '-f', configFile, '-F', join(dir, 'pcp.conf'), '-a', join(dir, 'pool_hba.conf')],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, HOME: dir }, ...ids },
  );
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 2_000_000) output = output.slice(-1_000_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  running.add(child);
  child.on('exit', () => running.delete(child));

  const connectionString = (database: string) =>
    `postgres://${RIG_SUPERUSER}:${RIG_PASSWORD}@127.0.0.1:${port}/${database}`;
  await waitUntilReady(connectionString('postgres'), () => output, child);

  return {
    host: '127.0.0.1',
    port,
    pcpPort,
    pcpUser: PCP_USER,
    pcpPassword: PCP_PASSWORD,
    configFile,
    logFile,
    connectionString,
    log: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        killGroup(child, 'SIGINT'); // fast shutdown
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      }
      killGroup(child, 'SIGKILL'); // any child the parent left behind
      writeFileSync(logFile, output);
      if (!process.env.KEEP_PGPOOL_LOG) rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitUntilReady(connectionString: string, output: () => string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const client = new pg.Client({ connectionString, connectionTimeoutMillis: 2000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (error) {
      await client.end().catch(() => undefined);
      if (child.exitCode !== null || Date.now() > deadline) {
        killGroup(child, 'SIGKILL');
        throw new Error(`pgpool did not start: ${(error as Error).message}\n${output().slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Reads the current pgpool.conf (tests flip backend_flag through the driver, which rewrites this file). */
export function readPgpoolConf(pgpool: Pgpool): string {
  return readFileSync(pgpool.configFile, 'utf8');
}
