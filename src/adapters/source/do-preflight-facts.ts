/**
 * Gathers the facts of the DigitalOcean-aware preflight (src/domain/preflight-digitalocean.ts): per
 * migrated database DO's slot and publication on the source with the WAL the slot holds back, the
 * migration's age, the target's engine and databases, a login as the application's role, and the
 * addresses of the source host DigitalOcean connects to. Each part fails on its own.
 */
import { isIP } from 'node:net';
import type { DatabaseCluster, DigitalOceanApi } from '../../domain/ports/digitalocean.js';
import { doReplicationNames, type DoPreflightFacts, type SlotFacts } from '../../domain/preflight-digitalocean.js';
import { connect, type PostgresTarget } from './connect.js';
import { listMigratedDatabases } from './databases.js';
import type { Queryable } from './lag-probe.js';

export interface DoPreflightDeps {
  stage: DoPreflightFacts['stage'];
  /** The profile's source database. */
  source: Queryable;
  /** Runs `work` on a connection to another database of the source (publications live per database). */
  sourceIn: <T>(database: string, work: (q: Queryable) => Promise<T>) => Promise<T>;
  ignoreDbs: readonly string[];
  api: DigitalOceanApi;
  clusterUuid: string;
  targetDatabase: string;
  /** Connection-parameters: the application user the switch hands out (appUserName of the target database). */
  appUserName?: string;
  /** Logs in to the target as the application's role (rejects with why not); absent: the profile names none. */
  appLogin?: { user: string; login: () => Promise<void> };
  /** The host DigitalOcean connects to (digitalocean.sourceForMigration.host ?? source.host). */
  sourceHost: string;
  /** False when DIGITALOCEAN_API_URL is not DigitalOcean's (a simulator): an unreachable source is then only flagged. */
  doIsRemote: boolean;
  resolve: (host: string) => Promise<string[]>;
  now: () => Date;
}

/** `sourceIn` for a source: a short connection to one of its databases per call. */
export function databaseRunner(source: PostgresTarget): DoPreflightDeps['sourceIn'] {
  return async (database, work) => {
    const client = await connect({ ...source, database }, { applicationName: 'pgcutover-preflight' });
    try {
      return await work(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  };
}

/** `appLogin.login` for a target and the application's credentials: connects, and says why not. */
export function loginAs(target: PostgresTarget): () => Promise<void> {
  return async () => {
    const client = await connect(target, { applicationName: 'pgcutover-preflight' });
    await client.end().catch(() => undefined);
  };
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** `cluster`: the target cluster as the rest of the preflight asked for it (one look-up). */
export async function gatherDoPreflightFacts(d: DoPreflightDeps, cluster: Promise<DatabaseCluster>): Promise<DoPreflightFacts> {
  const { appUserName: appUser, appLogin: login } = d;
  const [replication, migration, target, appLogin, sourceHost, appUserExists] = await Promise.all([
    replicationFacts(d).catch((error: unknown) => ({ error: message(error) })),
    d.stage === 'before-freeze' ? migrationFacts(d).catch(() => undefined) : Promise.resolve(undefined),
    targetFacts(d, cluster).catch((error: unknown) => ({ error: message(error) })),
    login
      ? login.login().then(
          () => ({ user: login.user, error: null }),
          (error: unknown) => ({ user: login.user, error: message(error) }),
        )
      : Promise.resolve('unnamed' as const),
    sourceHostFacts(d, cluster),
    appUser ? d.api.getUser(d.clusterUuid, appUser).then((u) => u !== undefined, () => null) : Promise.resolve(null),
  ]);
  return {
    stage: d.stage,
    replication,
    ...(migration ? { migration } : {}),
    target,
    targetDatabase: d.targetDatabase,
    appLogin,
    ...(appUser ? { appUser: { name: appUser, exists: appUserExists } } : {}),
    sourceHost,
  };
}

async function replicationFacts(d: DoPreflightDeps): Promise<Exclude<DoPreflightFacts['replication'], { error: string }>> {
  const databases = await listMigratedDatabases(d.source, d.ignoreDbs);
  const slots = await d.source.query<{ slot_name: string; active: boolean; wal_status: string | null; retained: string | null }>(
    `SELECT slot_name, active, wal_status, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained
       FROM pg_replication_slots WHERE slot_type = 'logical' AND slot_name = ANY ($1::text[])`,
    [databases.map((db) => doReplicationNames(db).slot)],
  );
  return Promise.all(
    databases.map(async (database) => {
      const names = doReplicationNames(database);
      const row = slots.rows.find((r) => r.slot_name === names.slot);
      const slot: SlotFacts | null = row
        ? { name: row.slot_name, active: row.active, walStatus: row.wal_status, retainedBytes: row.retained === null ? null : Number(row.retained) }
        : null;
      const publication = slot
        ? await d
            .sourceIn(database, async (q) => (await q.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [names.publication])).rows.length > 0)
            .catch(() => null)
        : null;
      return { database, slot, publication };
    }),
  );
}

async function migrationFacts(d: DoPreflightDeps): Promise<DoPreflightFacts['migration']> {
  const migration = await d.api.getOnlineMigration(d.clusterUuid);
  return migration ? { createdAt: migration.createdAt, status: migration.status, now: d.now().toISOString() } : undefined;
}

async function targetFacts(d: DoPreflightDeps, cluster: Promise<DatabaseCluster>): Promise<Exclude<DoPreflightFacts['target'], { error: string }>> {
  const [{ engine }, databases] = await Promise.all([
    cluster,
    d.api.listDatabases(d.clusterUuid).catch((error: unknown) => ({ error: message(error) })),
  ]);
  return { engine, databases };
}

async function sourceHostFacts(d: DoPreflightDeps, cluster: Promise<DatabaseCluster>): Promise<DoPreflightFacts['sourceHost']> {
  const addresses = isIP(d.sourceHost) ? [d.sourceHost] : await d.resolve(d.sourceHost).catch(() => []);
  const clusterInVpc = await cluster.then((c) => c.privateNetworkUuid !== undefined, () => false);
  return { host: d.sourceHost, addresses, clusterInVpc, doIsRemote: d.doIsRemote };
}
