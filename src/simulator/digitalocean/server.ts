/**
 * A local DigitalOcean API for the calls pgcutover makes, with the official spec's shapes, backed by
 * real PostgreSQL clusters: PUT online-migration copies the schema and creates a real logical-
 * replication subscription; GET maps the subscription's state to DO's status values; DELETE drops it;
 * GET cluster returns the target's real connection details. Faults are injected with `injectFault()`
 * or over HTTP (`POST /_simulator/faults`), so a separate process (the sandbox) can drive it too.
 *
 * Behaviour copied from DO (shared/notes/do-api.md): PUT answers 200 at once and may fail moments
 * later; GET returns the most recent migration (404 before any); DELETE answers 204; errors carry
 * `{id, message, request_id}`; every answer carries `ratelimit-*` and `x-request-id`.
 * DO stops a migration after two weeks: `maxMigrationMs` reproduces that, ending in `done`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { FirewallRule, OnlineMigrationStatus } from '../../domain/ports/digitalocean.js';
import { startMigrationBodySchema } from '../../adapters/digitalocean/schemas.js';
import type { Logger } from '../../log.js';
import { Secret } from '../../secret.js';
import { clusterRoute, newRuleUuid, type ClusterState } from './cluster-routes.js';
import { faultAnswer, FaultQueue, faultSchema, type FaultInput } from './faults.js';
import { errorIds, readBody, redactBody, safeJson } from './http.js';
import {
  copySchema,
  createReplication,
  dropReplication,
  ensureDatabase,
  replicationNames,
  scrub,
  serverVersion,
  subscriptionState,
  withClient,
  type PgEndpoint,
  type ReplicationNames,
} from './replication.js';
import { listMigratedDatabases } from '../../adapters/source/databases.js';

export type { Fault, FaultInput } from './faults.js';

export interface SimulatedCluster {
  name?: string;
  /** The local target cluster, as a superuser: what GET cluster reports and where subscriptions go. */
  connection: PgEndpoint;
  /** Trusted sources reported by GET firewall (default: none, i.e. open to all). */
  firewallRules?: FirewallRule[];
  /** Cluster status (default `online`). */
  status?: string;
  /** PEM of the CA that signed the target's server certificate: served by GET …/ca, and the connection then says `ssl: true`. */
  caPem?: string;
  /** Reported as `private_network_uuid` (a VPC). */
  privateNetworkUuid?: string;
}

export interface DoSimulatorOptions {
  /** The bearer token the simulator accepts. */
  token: Secret;
  clusters: Record<string, SimulatedCluster>;
  logger: Logger;
  /** 0 (default) picks a free port; the server listens on 127.0.0.1 only. */
  port?: number;
  /** DO ends a migration after two weeks; here after this many ms (default: never), status `done`. */
  maxMigrationMs?: number;
  /** The hourly quota reported in `ratelimit-limit`. */
  rateLimit?: number;
  /** A token without `database:view_credentials`: DO then leaves passwords out of its answers. */
  credentialsHidden?: boolean;
}

export interface RecordedRequest {
  method: string;
  path: string;
  /** The parsed JSON body with the source password replaced by "[redacted]". */
  body: unknown;
  status: number;
  /** Response body as sent (JSON text or ''), for contract checks. */
  responseText: string;
  responseHeaders: Record<string, string>;
}

export interface MigrationView {
  id: string;
  status: OnlineMigrationStatus;
  /** The subscription's name on the target. */
  replicationName: string;
  /** The logical slot on the source, named as DigitalOcean's engine names it (`aiven_db_migrate_<db>_slot`). */
  slotName: string;
  /** The publication on the source (`aiven_db_migrate_<db>_pub`). */
  publicationName: string;
  /** Every database it replicates (all of the source but templates and `ignore_dbs`). */
  databases: string[];
  /** Why the migration is in `error` (scrubbed of passwords). */
  error?: string;
}

export interface DoSimulator {
  readonly url: string;
  readonly port: number;
  injectFault(fault: FaultInput): void;
  clearFaults(): void;
  readonly requests: readonly RecordedRequest[];
  /** The most recent migration of a cluster with its live status, for assertions. */
  migration(clusterUuid: string): Promise<MigrationView | undefined>;
  /** Drops every subscription it created and closes the server. */
  stop(): Promise<void>;
}

type Phase = 'starting' | 'active' | 'failed' | 'canceled' | 'done';

/** One migrated database: its replication from the source's database to the target's of the same name. */
interface MigratedDatabase {
  names: ReplicationNames;
  source: PgEndpoint;
  target: PgEndpoint;
}

interface Migration {
  id: string;
  createdAt: string;
  /** The replication of the database named in the request (`source.dbname`). */
  names: ReplicationNames;
  phase: Phase;
  error?: string;
  /** Every database of the source but templates and `ignore_dbs`, as DO migrates them; filled by the setup. */
  databases: MigratedDatabase[];
  setup: Promise<void>;
  startedAtMs: number;
}

const CONTROL_PREFIX = '/_simulator';

export async function startDoSimulator(options: DoSimulatorOptions): Promise<DoSimulator> {
  const log = options.logger.child({ name: 'do-simulator' });
  const faults = new FaultQueue();
  const requests: RecordedRequest[] = [];
  const migrations = new Map<string, Migration[]>();
  const limit = options.rateLimit ?? 5000;
  let remaining = limit;

  const latest = (uuid: string) => migrations.get(uuid)?.at(-1);
  const states = new Map<SimulatedCluster, ClusterState>();
  const stateOf = (cluster: SimulatedCluster) => {
    let state = states.get(cluster);
    if (!state) {
      const rules = (cluster.firewallRules ?? []).map((r) => ({ uuid: newRuleUuid(), type: r.type, value: r.value, created_at: '2026-01-01T00:00:00Z' }));
      state = { connection: cluster.connection, rules, users: new Map(), ...(cluster.caPem ? { caPem: cluster.caPem } : {}) };
      states.set(cluster, state);
    }
    return state;
  };
  const hidden = options.credentialsHidden ?? false;
  // DO clusters come with a default database (`defaultdb`): created on first use if missing, so a
  // simulator whose tests only use firewall or fault calls needs no running cluster.
  const prepared = new Map<SimulatedCluster, Promise<void>>();
  const prepare = (cluster: SimulatedCluster) => {
    let done = prepared.get(cluster);
    if (!done) {
      done = ensureDatabase({ ...cluster.connection, database: 'postgres' }, cluster.connection.database);
      done.catch(() => prepared.delete(cluster));
      prepared.set(cluster, done);
    }
    return done;
  };

  const dropAll = (m: Migration) => Promise.all(m.databases.map((d) => dropReplication(d.source, d.target, d.names)));

  /** The migration's state is its worst database's: one failing or missing is an error, one copying keeps it running. */
  const replicationState = async (m: Migration) => {
    const states = await Promise.all(m.databases.map((d) => subscriptionState(d.target, d.names.subscription)));
    return (
      states.find((s) => s.kind === 'missing') ??
      states.find((s) => s.kind === 'failing') ??
      states.find((s) => s.kind === 'copying') ?? { kind: 'streaming' as const }
    );
  };

  const statusOf = async (m: Migration): Promise<OnlineMigrationStatus> => {
    if (m.phase === 'active' && options.maxMigrationMs !== undefined && Date.now() - m.startedAtMs >= options.maxMigrationMs) {
      await dropAll(m).catch(() => undefined);
      m.phase = 'done';
    }
    switch (m.phase) {
      case 'starting':
        return 'running';
      case 'failed':
        return 'error';
      case 'canceled':
        return 'canceled';
      case 'done':
        return 'done';
      case 'active': {
        const state = await replicationState(m);
        if (state.kind === 'missing') {
          m.error = 'the subscription disappeared from the target';
          return 'error';
        }
        if (state.kind === 'failing') {
          m.error = `the replication workers report ${state.errors} error(s) (see the target's server log)`;
          return 'error';
        }
        return state.kind === 'copying' ? 'running' : 'syncing';
      }
    }
  };

  const startMigration = (uuid: string, cluster: SimulatedCluster, body: z.infer<typeof startMigrationBodySchema>) => {
    const id = randomUUID();
    const source: PgEndpoint = {
      host: body.source.host,
      port: body.source.port,
      user: body.source.username,
      password: new Secret(body.source.password),
      database: body.source.dbname,
    };
    const sslmode = body.disable_ssl ? 'disable' : 'prefer';
    const migration: Migration = {
      id,
      createdAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      names: replicationNames(body.source.dbname),
      phase: 'starting',
      databases: [],
      startedAtMs: Date.now(),
      setup: Promise.resolve(),
    };
    migration.setup = (async () => {
      try {
        await prepare(cluster);
        const names = await withClient(source, (c) => listMigratedDatabases(c, body.ignore_dbs ?? []));
        migration.databases = names.map((database) => ({
          names: replicationNames(database),
          source: { ...source, database },
          target: { ...cluster.connection, database },
        }));
        await Promise.all(
          migration.databases.map(async (d) => {
            await ensureDatabase(cluster.connection, d.target.database);
            await copySchema(d.source, d.target, sslmode);
            await createReplication(d.source, d.target, d.names, sslmode);
          }),
        );
        if (migration.phase === 'starting') migration.phase = 'active';
        log.info({ cluster: uuid, migration: id, databases: names }, 'online migration replicating');
      } catch (error) {
        migration.error = scrub((error as Error).message, [source.password, cluster.connection.password]);
        migration.phase = 'failed';
        log.warn({ cluster: uuid, migration: id, reason: migration.error }, 'online migration failed after the 200');
      }
    })();
    const list = migrations.get(uuid) ?? [];
    list.push(migration);
    migrations.set(uuid, list);
    return migration;
  };

  const stopMigration = async (m: Migration) => {
    await m.setup;
    if (m.phase === 'active' || m.phase === 'starting') {
      await dropAll(m);
      m.phase = 'canceled';
    } else if (m.phase === 'failed') {
      m.phase = 'canceled';
    }
  };

  const migrationJson = async (m: Migration) => ({ id: m.id, status: await statusOf(m), created_at: m.createdAt });

  const clusterJson = async (uuid: string, cluster: SimulatedCluster) => {
    const c = cluster.connection;
    const version = await serverVersion(c);
    const ssl = cluster.caPem !== undefined;
    const password = hidden ? '' : c.password.reveal();
    const uri = `postgresql://${encodeURIComponent(c.user)}${hidden ? '' : `:${encodeURIComponent(password)}`}@${c.host}:${c.port}/${encodeURIComponent(c.database)}?sslmode=${ssl ? 'require' : 'disable'}`;
    const connection = { uri, database: c.database, host: c.host, port: c.port, user: c.user, ...(hidden ? {} : { password }), ssl };
    return {
      database: {
        id: uuid,
        name: cluster.name ?? `sim-${uuid.slice(0, 8)}`,
        engine: 'pg',
        version: version.major,
        semantic_version: version.full,
        num_nodes: 1,
        size: 'db-s-1vcpu-1gb',
        region: 'nyc3',
        status: cluster.status ?? 'online',
        created_at: '2026-01-01T00:00:00Z',
        db_names: [c.database],
        connection,
        private_connection: connection,
        users: [{ name: c.user, role: 'primary', ...(hidden ? {} : { password }) }],
        tags: [],
        ...(cluster.privateNetworkUuid ? { private_network_uuid: cluster.privateNetworkUuid } : {}),
      },
    };
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const raw = await readBody(req);
    const requestId = randomUUID();
    let recordedBody: unknown;
    const send = (status: number, payload?: unknown, extraHeaders: Record<string, string> = {}, rawText?: string) => {
      remaining = Math.max(0, remaining - 1);
      const headers: Record<string, string> = {
        'ratelimit-limit': String(limit),
        'ratelimit-remaining': String(remaining),
        'ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 3600),
        'x-request-id': requestId,
        ...extraHeaders,
      };
      const text = rawText ?? (payload === undefined ? '' : JSON.stringify(payload));
      if (text !== '') headers['content-type'] = 'application/json; charset=utf-8';
      if (!path.startsWith(CONTROL_PREFIX)) {
        requests.push({ method, path, body: recordedBody, status, responseText: text, responseHeaders: headers });
      }
      log.debug({ method, path, status }, 'simulated DigitalOcean answered');
      if (!res.destroyed) {
        res.writeHead(status, headers);
        res.end(text);
      }
    };
    const fail = (status: number, message?: string) => {
      const [id, defaultMessage] = errorIds[status] ?? ['unexpected_error', 'unexpected error'];
      send(status, { id, message: message ?? defaultMessage, request_id: requestId });
    };

    if (req.headers.authorization !== `Bearer ${options.token.reveal()}`) return fail(401);

    if (path.startsWith(CONTROL_PREFIX)) {
      if (path === `${CONTROL_PREFIX}/faults` && method === 'POST') {
        const parsed = faultSchema.safeParse(safeJson(raw));
        if (!parsed.success) return fail(400, `invalid fault: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
        faults.inject(parsed.data);
        return send(204);
      }
      if (path === `${CONTROL_PREFIX}/faults` && method === 'DELETE') {
        faults.clear();
        return send(204);
      }
      return fail(404);
    }

    const parsedBody = raw === '' ? undefined : safeJson(raw);
    recordedBody = redactBody(parsedBody);

    const fault = faults.take(method, path);
    if (fault?.kind === 'slow') await new Promise((r) => setTimeout(r, fault.delayMs));
    if (fault?.kind === 'error') return fail(fault.status);
    const answer = fault && faultAnswer(fault, requestId);
    if (answer) return send(answer.status, answer.payload, answer.headers, answer.rawText);

    const match = /^\/v2\/databases\/([^/]+)(\/online-migration(?:\/([^/]+))?|\/firewall|\/ca|\/dbs|\/users(?:\/[^/]+)?)?$/.exec(path);
    const uuid = match?.[1];
    const cluster = uuid === undefined ? undefined : options.clusters[uuid];
    if (!match || uuid === undefined || !cluster) return fail(404);
    const sub = match[2];
    const migrationId = match[3];

    if (sub === undefined && method === 'GET') {
      await prepare(cluster);
      return send(200, await clusterJson(uuid, cluster));
    }
    if (sub !== undefined && !sub.startsWith('/online-migration')) {
      const reply = await clusterRoute(stateOf(cluster), uuid, method, sub, parsedBody, hidden);
      if (!reply) return fail(404);
      return 'error' in reply ? fail(reply.status, reply.error) : send(reply.status, reply.body);
    }
    if (sub === '/online-migration' && method === 'PUT') {
      const parsed = startMigrationBodySchema.safeParse(parsedBody);
      if (!parsed.success) return fail(400);
      const current = latest(uuid);
      if (current && (current.phase === 'starting' || current.phase === 'active')) {
        return fail(422, 'an online migration is already in progress for this cluster');
      }
      const started = startMigration(uuid, cluster, parsed.data);
      return send(200, { id: started.id, status: 'running', created_at: started.createdAt });
    }
    if (sub === '/online-migration' && method === 'GET') {
      const current = latest(uuid);
      if (!current) return fail(404);
      return send(200, await migrationJson(current));
    }
    if (sub?.startsWith('/online-migration/') && method === 'DELETE' && migrationId !== undefined) {
      const found = migrations.get(uuid)?.find((m) => m.id === migrationId);
      if (!found) return fail(404);
      await stopMigration(found);
      return send(204);
    }
    return fail(404);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log.error({ err: { message: (error as Error).message } }, 'simulator failed to answer');
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'server_error', message: 'Unexpected server-side error' }));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port }, 'DigitalOcean simulator listening');

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    injectFault: (fault) => faults.inject(fault),
    clearFaults: () => faults.clear(),
    requests,
    async migration(clusterUuid) {
      const m = latest(clusterUuid);
      if (!m) return undefined;
      const status = await statusOf(m);
      return {
        id: m.id,
        status,
        replicationName: m.names.subscription,
        slotName: m.names.slot,
        publicationName: m.names.publication,
        databases: m.databases.map((d) => d.source.database),
        ...(m.error ? { error: m.error } : {}),
      };
    },
    async stop() {
      for (const list of migrations.values()) {
        for (const m of list) {
          await m.setup.catch(() => undefined);
          if (m.phase === 'active') await dropAll(m).catch(() => undefined);
        }
      }
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
