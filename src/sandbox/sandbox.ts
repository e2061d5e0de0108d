/**
 * The sandbox: the bot doing its whole job on one machine. It starts (and on stop() removes, in reverse
 * order) a source and a target PostgreSQL cluster — or, for a rehearsal, uses a team's own source and
 * target and a throwaway cluster for the bot's store —, the DigitalOcean API simulator replicating
 * between them, PgBouncer in front of the source where it is installed (else the in-database freeze),
 * a steady write load, a fake Slack Web API, the bot itself (in this process) and the console page.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { WATCH_PREFIX } from '../adapters/replication/split-brain-watch.js';
import { pino } from 'pino';
import { startBot } from '../composition-root.js';
import { loadEnv } from '../config/env.js';
import { parseProfiles } from '../config/profiles.js';
import { CodedError, ErrorCode } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { Secret } from '../secret.js';
import { startDoSimulator } from '../simulator/digitalocean/index.js';
import { pgBinDir } from '../simulator/digitalocean/replication.js';
import { startConsole } from './console-server.js';
import { startFakeSlack } from './fake-slack.js';
import { freePort } from './free-port.js';
import { startCluster } from './pg-cluster.js';
import { PGBOUNCER_BIN, startPgBouncer, type PgBouncer } from './pgbouncer.js';
import { startReplicationPair } from './replication-pair.js';
import { profileYaml, SANDBOX_CHANNEL, SANDBOX_PEOPLE, type Server } from './sandbox-profile.js';
import { startWriteLoad, WRITES_SCHEMA, WRITES_TABLE } from './write-load.js';

export interface SandboxOptions {
  /** A rehearsal against a team's own servers: both given, or neither (throwaway clusters). */
  rehearsal?: { source: Server; target: Server };
  /** Writes per second of the load (default 40). */
  writesPerSecond?: number;
  /** The console's port (default: any free port). */
  consolePort?: number;
  /** PgBouncer in front of the source (default: when it is installed). */
  pgbouncer?: boolean;
  /** Where the bot and the simulator log (default: `bot.log` in the sandbox's temp dir). */
  logger?: Logger;
}

export interface Sandbox {
  consoleUrl: string;
  /** The generated profiles file (in the temp dir, removed by stop()). */
  profilePath: string;
  logPath: string;
  /** PgBouncer's log, when the sandbox runs one. */
  bouncerLogPath?: string;
  source: Server;
  target: Server;
  via: 'pgbouncer' | 'direct';
  stop(): Promise<void>;
}

const APP_ROLE = 'pgcutover_sandbox_app';

const url = (s: Server, database = s.database) =>
  `postgres://${encodeURIComponent(s.user)}:${encodeURIComponent(s.password)}@${s.host}:${s.port}/${encodeURIComponent(database)}?sslmode=${s.sslmode}`;

async function runSql<T extends pg.QueryResultRow = pg.QueryResultRow>(server: Server, sql: string, database?: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url(server, database), connectionTimeoutMillis: 15_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Every database of the server but `keep` (DigitalOcean's migration copies all databases but `ignore_dbs`). */
async function databasesBut(server: Server, keep: string): Promise<string[]> {
  const rows = await runSql<{ datname: string }>(server, 'SELECT datname FROM pg_database WHERE NOT datistemplate');
  return rows.map((r) => r.datname).filter((name) => name !== keep);
}

export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  };
  try {
    return await start(options, cleanups, stop);
  } catch (error) {
    await stop();
    throw error;
  }
}

async function start(options: SandboxOptions, cleanups: Array<() => Promise<unknown>>, stop: () => Promise<void>): Promise<Sandbox> {
  try {
    pgBinDir(); // clusters, and the simulator's schema copy, need PostgreSQL's programs
  } catch (error) {
    throw new CodedError(ErrorCode.ConfigInvalid, 'PostgreSQL 15 is not installed here (no pg_config on the PATH): apt-get install postgresql-15, or run bash .ci/run once', { cause: error });
  }
  const dir = mkdtempSync(join(tmpdir(), 'pgcutover-sandbox-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const logPath = join(dir, 'bot.log');
  const log = options.logger ?? createLogger('info', pino.destination({ dest: logPath, sync: false }));

  // The servers: throwaway clusters (the store in a database of the source), or the team's and a store.
  let source: Server;
  let target: Server;
  let storeUrl: string;
  let targetDefaultDb: string;
  const storeDb = 'pgcutover_store';
  if (options.rehearsal) {
    ({ source, target } = options.rehearsal);
    targetDefaultDb = target.database;
    const store = await startCluster({ databases: [storeDb] });
    cleanups.push(() => store.stop());
    storeUrl = store.connectionString(storeDb);
  } else {
    const [s, t] = await startReplicationPair(['orders', storeDb], { targetLogical: true });
    cleanups.push(() => Promise.all([s.stop(), t.stop()]));
    source = { host: s.host, port: s.port, user: s.user, password: s.password, database: 'orders', sslmode: 'disable' };
    target = { host: t.host, port: t.port, user: t.user, password: t.password, database: 'orders', sslmode: 'disable' };
    targetDefaultDb = 'defaultdb';
    storeUrl = s.connectionString(storeDb);
  }
  const withBouncer = options.pgbouncer ?? existsSync(PGBOUNCER_BIN);
  await runSql(source, WRITES_SCHEMA);
  const appPassword = randomBytes(12).toString('hex');
  if (!withBouncer) {
    // The in-database freeze locks application roles out; the load logs in as one (superusers cannot be held).
    await runSql(
      source,
      `DO $$ BEGIN
         IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN CREATE ROLE ${APP_ROLE} LOGIN; END IF;
       END $$;
       ALTER ROLE ${APP_ROLE} LOGIN PASSWORD '${appPassword}';
       GRANT SELECT, INSERT ON public.${WRITES_TABLE} TO ${APP_ROLE};
       GRANT USAGE ON SEQUENCE public.${WRITES_TABLE}_id_seq TO ${APP_ROLE};`,
    );
  }

  const doToken = `dop_v1_${randomBytes(24).toString('hex')}`;
  const clusterUuid = randomUUID();
  const sim = await startDoSimulator({
    token: new Secret(doToken),
    logger: log,
    clusters: {
      [clusterUuid]: {
        name: 'sandbox-target',
        connection: { host: target.host, port: target.port, user: target.user, password: new Secret(target.password), database: targetDefaultDb },
      },
    },
  });
  cleanups.push(() => sim.stop());

  let bouncer: PgBouncer | undefined;
  if (withBouncer) {
    bouncer = await startPgBouncer({
      databases: { [source.database]: { host: source.host, port: source.port, dbname: source.database } },
      poolMode: 'transaction',
      // Held writes wait out the freeze budget (30 s) with room.
      settings: { query_wait_timeout: 120 },
      users: { [target.user]: target.password, [source.user]: source.password },
    });
    cleanups.push(() => bouncer!.stop());
  }

  const slack = await startFakeSlack();
  cleanups.push(() => slack.close());
  const signingSecret = randomBytes(16).toString('hex');
  const profilePath = join(dir, 'pgcutover.yml');
  const secrets = { SANDBOX_SOURCE_PASSWORD: source.password, SANDBOX_PGBOUNCER_ADMIN_PASSWORD: bouncer?.adminPassword ?? '' };
  const yaml = profileYaml({
    source,
    clusterUuid,
    // Only the demo database (or, in a rehearsal, the one in the source URL) is migrated.
    ignoreDbs: await databasesBut(source, source.database),
    proxy: bouncer ? { port: bouncer.port, user: bouncer.adminUser, databasesFile: bouncer.databasesFile } : { appRole: APP_ROLE },
  });
  writeFileSync(profilePath, yaml, { mode: 0o600 });
  const port = await freePort();
  const bot = await startBot(
    loadEnv({
      SLACK_BOT_TOKEN: `xoxb-sandbox-${randomBytes(12).toString('hex')}`,
      SLACK_SIGNING_SECRET: signingSecret,
      SLACK_API_URL: slack.apiUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      DIGITALOCEAN_TOKEN: doToken,
      DIGITALOCEAN_API_URL: sim.url,
      DATABASE_URL: storeUrl,
    }),
    parseProfiles(yaml, profilePath, secrets),
    log,
  );
  // Runs after the bot stopped: the session stays open when the sandbox stops, so the split-brain
  // watch's slot (dropped when a session ends) would retain WAL on the source for ever.
  cleanups.push(() =>
    runSql(source, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE '${WATCH_PREFIX}%' AND NOT active`),
  );
  cleanups.push(() => bot.stop());

  const load = await startWriteLoad({
    connectionString: bouncer
      ? `postgres://${encodeURIComponent(source.user)}:${encodeURIComponent(source.password)}@${bouncer.host}:${bouncer.port}/${encodeURIComponent(source.database)}`
      : url({ ...source, user: APP_ROLE, password: appPassword }),
    via: bouncer ? 'PgBouncer (transaction pooling)' : 'directly (no PgBouncer: the in-database freeze)',
    source: url(source),
    // Any database of the target tells its address; the simulator creates its default one lazily.
    target: url(target, options.rehearsal ? target.database : 'postgres'),
    perSecond: options.writesPerSecond ?? 40,
  });
  cleanups.push(() => load.stop());
  if (!bouncer) {
    // The connection-parameters strategy hands the target's parameters out; the application here follows them.
    let on: 'source' | 'target' = 'source';
    const follow = setInterval(() => {
      void bot.store.sessions.listForChannel(SANDBOX_CHANNEL.id, 1).then(async ([session]) => {
        const wanted = session?.state === 'switched' || session?.state === 'finished' ? 'target' : 'source';
        if (wanted === on) return;
        on = wanted;
        await load.repoint(wanted === 'target' ? url(target, source.database) : url({ ...source, user: APP_ROLE, password: appPassword }));
      });
    }, 1000);
    cleanups.push(async () => clearInterval(follow));
  }

  const consoleServer = await startConsole({
    slack,
    eventsUrl: `http://127.0.0.1:${port}/slack/events`,
    signingSecret,
    channel: SANDBOX_CHANNEL,
    people: SANDBOX_PEOPLE,
    port: options.consolePort ?? 0,
    about: [
      options.rehearsal ? 'Rehearsal on your own servers' : 'Throwaway clusters on this machine',
      `source ${source.host}:${source.port}/${source.database}`,
      `target (simulated DigitalOcean) ${target.host}:${target.port}`,
      bouncer ? `application → PgBouncer :${bouncer.port} → source` : 'application → source directly (in-database freeze)',
    ],
    load: () => load.view(),
  });
  cleanups.push(() => consoleServer.close());

  return { consoleUrl: consoleServer.url, profilePath, logPath, ...(bouncer ? { bouncerLogPath: bouncer.logFile } : {}), source, target, via: bouncer ? 'pgbouncer' : 'direct', stop };
}
