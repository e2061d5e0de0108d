/**
 * A whole cutover rig on real parts: a logical source and a target cluster, DigitalOcean's online
 * migration through the DO simulator (real logical replication), a real PgBouncer in front of the
 * source driven by the real PgBouncerAdmin, the real lag probe and fence, the real sequence copier, and
 * the bot's store (PostgreSQL, database `store` on the source cluster). `machines` is the per-session
 * factory the engine takes, wired the way the composition root would; `listener` collects the facts
 * the engine records as the thread lines Slack would show (`notes`).
 */
import pg from 'pg';
import { PgReverseReplication } from '../../src/adapters/replication/reverse-replication.js';
import { freezeParts } from '../../src/adapters/replication/freeze-parts.js';
import { measureFreezeInputs } from '../../src/adapters/source/freeze-inputs.js';
import type { EventListener } from '../../src/app/facts.js';
import { factLine } from '../../src/adapters/slack/texts.js';
import type { CutoverSettings, PreflightItem, SessionMachines } from '../../src/domain/ports/machines.js';
import type { Session } from '../../src/domain/session.js';
import { DigitalOceanClient } from '../../src/adapters/digitalocean/digitalocean-client.js';
import { startAndConfirm } from '../../src/adapters/digitalocean/start-migration.js';
import type { Logger } from '../../src/log.js';
import { InDatabaseFreeze } from '../../src/adapters/proxy/in-database-freeze.js';
import { PgBouncerAdmin } from '../../src/adapters/proxy/pgbouncer.js';
import type { Endpoint } from '../../src/domain/ports/writes.js';
import { installFence } from '../../src/adapters/source/fence-table.js';
import { SlotLagProbe } from '../../src/adapters/source/lag-probe.js';
import { Secret } from '../../src/secret.js';
import { startDoSimulator, type DoSimulator } from '../../src/simulator/digitalocean/index.js';
import type { Cluster } from './pg-cluster.js';
import { startPgBouncer, type PgBouncer } from './pgbouncer.js';
import { startReplicationPair } from './replication-pair.js';

export const DO_TOKEN = 'dop_v1_cutover_rig_token_0123456789abcdef';
export const DO_CLUSTER = '9cc10173-e9ea-4176-9dbc-a4cee4c4ff30';

/** The table the continuous writer fills: a text id from the client, and a sequence-backed `n`. */
export const RIG_SCHEMA = `
  CREATE TABLE writes (id text PRIMARY KEY, port int NOT NULL, at timestamptz NOT NULL DEFAULT now(),
                       n bigserial UNIQUE);
  CREATE SEQUENCE invoice_no;
  SELECT nextval('invoice_no') FROM generate_series(1, 10);
`;

export interface Note {
  sessionId: string;
  level: 'info' | 'warning' | 'error';
  text: string;
}

export interface CutoverRig {
  source: Cluster;
  target: Cluster;
  bouncer: PgBouncer;
  sim: DoSimulator;
  doApi: DigitalOceanClient;
  sourcePool: pg.Pool;
  targetPool: pg.Pool;
  sourceEndpoint: Endpoint;
  targetEndpoint: Endpoint;
  /** Connection string of the bot's store (database `store` on the source cluster). */
  storeUrl: string;
  notes: Note[];
  listener: EventListener;
  settings: CutoverSettings;
  /** The machines factory for the engine; `overrides` changes settings or the target for one test. */
  machines(
    session: Session,
    overrides?: { settings?: Partial<CutoverSettings>; target?: Endpoint; inDatabaseFreeze?: boolean },
  ): Promise<SessionMachines>;
  /** Starts DO's migration of `orders` (schema copy + subscription) and waits for `syncing`. */
  startMigration(): Promise<{ migrationId: string }>;
  stop(): Promise<void>;
}

/** The DO simulator serving `target` as the cluster DO_CLUSTER (its default database `defaultdb`). */
export function startRigSimulator(target: Cluster, logger: Logger): Promise<DoSimulator> {
  return startDoSimulator({
    token: new Secret(DO_TOKEN),
    logger,
    clusters: {
      [DO_CLUSTER]: {
        connection: { host: target.host, port: target.port, user: target.user, password: new Secret(target.password), database: 'defaultdb' },
      },
    },
  });
}

/** `replicateBack`: a logical target (as DigitalOcean's), and the machines replicate back after the switch as production's do. */
export async function startCutoverRig(logger: Logger, options: { replicateBack?: boolean } = {}): Promise<CutoverRig> {
  const [source, target] = await startReplicationPair(['orders', 'store'], { targetLogical: options.replicateBack ?? false });
  const sourcePool = new pg.Pool({ connectionString: source.connectionString('orders'), max: 4 });
  sourcePool.on('error', () => undefined);
  await sourcePool.query(RIG_SCHEMA);
  await installFence(sourcePool);
  const sim = await startRigSimulator(target, logger);
  const doApi = new DigitalOceanClient({ token: new Secret(DO_TOKEN), baseUrl: sim.url, logger });
  const bouncer = await startPgBouncer({
    databases: { orders: { host: source.host, port: source.port, dbname: 'orders' } },
    poolMode: 'transaction',
    settings: { query_wait_timeout: 30 },
  });
  let targetPool: pg.Pool | undefined;
  const sourceEndpoint: Endpoint = { host: source.host, port: source.port, database: 'orders' };
  const targetEndpoint: Endpoint = { host: target.host, port: target.port, database: 'orders' };
  const notes: Note[] = [];
  const settings: CutoverSettings = {
    strategy: 'proxy',
    freezeMethod: 'proxy-pause',
    freezeBudgetSeconds: 30,
    maxLagBytesToFreeze: 16 * 1024 * 1024,
    fenceTimeoutSeconds: 15,
    sequenceMargin: 1000,
    doClusterUuid: DO_CLUSTER,
    targetDatabase: 'orders',
  };

  const rig: CutoverRig = {
    source,
    target,
    bouncer,
    sim,
    doApi,
    sourcePool,
    get targetPool() {
      targetPool ??= new pg.Pool({ connectionString: target.connectionString('orders'), max: 4 });
      targetPool.on('error', () => undefined);
      return targetPool;
    },
    sourceEndpoint,
    targetEndpoint,
    storeUrl: source.connectionString('store'),
    notes,
    listener: {
      published({ session, fact }) {
        const line = factLine(fact);
        if (!line) return;
        const level =
          fact.type === 'resumed' ? fact.level : fact.type === 'resume_failed' || fact.type === 'failed' ? 'error' : line.broadcast ? 'warning' : 'info';
        notes.push({ sessionId: session.id, level, text: line.text });
      },
    },
    settings,
    async machines(session, overrides = {}) {
      const effective = { ...settings, ...overrides.settings };
      const to = overrides.target ?? targetEndpoint;
      const src = new pg.Pool({ connectionString: source.connectionString('orders'), max: 5 });
      const tgt = new pg.Pool({ connectionString: target.connectionString('orders'), max: 5 });
      src.on('error', () => undefined);
      tgt.on('error', () => undefined);
      const proxy = new PgBouncerAdmin({
        admin: { host: bouncer.host, port: bouncer.port, user: bouncer.adminUser, password: new Secret(bouncer.adminPassword) },
        database: 'orders',
        databasesFile: bouncer.databasesFile,
        pauseTimeoutSeconds: 5,
        logger,
      });
      const inDatabase = overrides.inDatabaseFreeze === true;
      // As production builds them (src/adapters/session-machines.ts): the fence's default poll, the
      // held writes counted on the warm admin connection, the predicted freeze's figures measured.
      const { fence, sequences, verifier } = freezeParts({
        databases: ['orders'],
        own: 'orders',
        sourceOf: () => src,
        targetOf: () => tgt,
        slotOf: () => 'auto',
        sequenceMargin: effective.sequenceMargin,
        logger,
      });
      const lag = new SlotLagProbe({ source: src, slot: 'auto' });
      const targetConnection = { host: target.host, port: target.port, database: 'orders', user: target.user, password: new Secret(target.password), sslmode: 'disable' as const };
      const reverse =
        options.replicateBack && !inDatabase
          ? new PgReverseReplication({ source: src, target: tgt, targetConnection, sessionId: session.id, sequenceMargin: effective.sequenceMargin, logger })
          : undefined;
      return {
        ...(reverse ? { reverse } : {}),
        settings: effective,
        digitalocean: doApi,
        lag,
        fence,
        ...(inDatabase
          ? {
              freeze: new InDatabaseFreeze({
                connection: { host: source.host, port: source.port, database: 'orders', user: source.user, password: new Secret(source.password) },
                method: 'read-only-database',
                logger,
              }),
              frozenWhat: { method: 'read-only-database', via: 'database', database: 'orders' },
            }
          : {
              freeze: proxy,
              frozenWhat: { method: 'proxy-pause', via: 'pgbouncer', database: 'orders' },
              routing: { router: proxy, source: sourceEndpoint, target: to },
            }),
        async preflight(): Promise<PreflightItem[]> {
          const checks = await proxy.preflight({ ...to, user: source.user, password: new Secret(source.password) });
          return checks.map((c) => ({ check: c.name, status: c.ok ? 'pass' : 'fail', detail: c.detail }));
        },
        sequences,
        verifier,
        async targetParameters() {
          const cluster = await doApi.getCluster(DO_CLUSTER);
          return { ...cluster.connection, database: 'orders', sslmode: cluster.connection.ssl ? 'require' : 'disable' };
        },
        async startMigration() {
          return rig.startMigration();
        },
        writesHeld: () => proxy.clientsWaiting(),
        freezeInputs: () => measureFreezeInputs({ source: src, target: tgt, lag, proxyRoundTripMs: () => proxy.roundTripMs() }),
        async close() {
          await Promise.all([fence.close(), sequences.close(), verifier.close(), reverse?.close()]).catch(() => undefined);
          await proxy.close().catch(() => undefined);
          await Promise.all([src.end().catch(() => undefined), tgt.end().catch(() => undefined)]);
        },
      };
    },
    async startMigration() {
      const migration = await startAndConfirm(
        doApi,
        DO_CLUSTER,
        {
          source: { host: source.host, port: source.port, dbname: 'orders', username: source.user, password: new Secret(source.password) },
          disableSsl: true,
          ignoreDbs: ['store', 'postgres'],
        },
        { pollIntervalMs: 100, watchMs: 30_000 },
      );
      return { migrationId: migration.id };
    },
    async stop() {
      await bouncer.stop().catch(() => undefined);
      await sim.stop().catch(() => undefined);
      await sourcePool.end().catch(() => undefined);
      await targetPool?.end().catch(() => undefined);
      await Promise.all([source.stop(), target.stop()]);
    },
  };
  return rig;
}
