/**
 * Gathers the facts the preflight evaluates (src/domain/preflight.ts): settings, roles and tables on
 * the source, the DO cluster and its trusted sources, and what the proxy says. Each part fails on its
 * own: an unreachable part becomes an error fact, so the report still lists everything else.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { DatabaseCluster, DigitalOceanApi } from '../../domain/ports/digitalocean.js';
import {
  evaluatePreflight,
  type ClusterFacts,
  type FirewallFacts,
  type PreflightFacts,
  type PreflightItem,
  type PreflightStage,
  type ProxyFacts,
  type SourceFacts,
} from '../../domain/preflight.js';
import type { Router } from '../../domain/ports/writes.js';
import { listMigratedDatabases } from './databases.js';
import { gatherDoPreflightFacts, type DoPreflightDeps } from './do-preflight-facts.js';
import type { Queryable } from './lag-probe.js';

export interface PreflightDeps {
  /** The source database the bot monitors (a pool or client). */
  source: Queryable;
  /** The user DigitalOcean connects with (digitalocean.sourceForMigration.user ?? source.user). */
  migrationUser: string;
  /** Databases DO skips (digitalocean.ignoreDbs). */
  ignoreDbs?: readonly string[];
  api: DigitalOceanApi;
  clusterUuid: string;
  /** Host names (or addresses) the target must admit: the source as DO sees it, and the proxy. */
  sourceHost: string;
  proxyHost?: string;
  /** The proxy and the source endpoint it should point at, when the profile has one. */
  proxy?: { admin: Pick<Router, 'inspect'>; expected: { host: string; port: number; database: string } };
  /** Host name → IPv4 addresses; defaults to DNS. */
  resolve?: (host: string) => Promise<string[]>;
  /** The public IPv4 addresses DigitalOcean sees the proxy's and the bot's connections come from. */
  publicAddresses?: { proxy?: string; bot?: string };
  /** The DigitalOcean-aware checks (src/domain/preflight-digitalocean.ts); absent: not run. */
  digitalocean?: Pick<DoPreflightDeps, 'sourceIn' | 'targetDatabase' | 'appLogin' | 'appUserName' | 'doIsRemote'> & { now?: () => Date };
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export async function gatherPreflightFacts(deps: PreflightDeps, stage: PreflightStage): Promise<PreflightFacts> {
  const doCluster = deps.api.getCluster(deps.clusterUuid);
  doCluster.catch(() => undefined);
  const resolve = deps.resolve ?? defaultResolve;
  const [source, cluster, firewall, proxy, digitalocean] = await Promise.all([
    sourceFacts(deps).catch((error: unknown) => ({ error: message(error) })),
    clusterFacts(doCluster).catch((error: unknown) => ({ error: message(error) })),
    firewallFacts(deps, resolve).catch((error: unknown) => ({ error: message(error) })),
    deps.proxy ? proxyFacts(deps.proxy) : Promise.resolve(undefined),
    deps.digitalocean
      ? gatherDoPreflightFacts(
          {
            ...deps.digitalocean,
            stage,
            source: deps.source,
            ignoreDbs: deps.ignoreDbs ?? [],
            api: deps.api,
            clusterUuid: deps.clusterUuid,
            sourceHost: deps.sourceHost,
            resolve,
            now: deps.digitalocean.now ?? (() => new Date()),
          },
          doCluster,
        )
      : Promise.resolve(undefined),
  ]);
  return { stage, source, cluster, firewall, ...(proxy ? { proxy } : {}), ...(digitalocean ? { digitalocean } : {}) };
}

/** Gathers and evaluates: the list the channel sees. */
export async function runPreflight(deps: PreflightDeps, stage: PreflightStage): Promise<PreflightItem[]> {
  return evaluatePreflight(await gatherPreflightFacts(deps, stage));
}

async function sourceFacts(deps: PreflightDeps): Promise<SourceFacts> {
  const q = deps.source;
  const settings = (
    await q.query<{
      database: string;
      wal_level: string;
      max_slots: number;
      used_slots: number;
      max_senders: number;
      used_senders: number;
      version_num: number;
    }>(`SELECT current_database() AS database,
              current_setting('wal_level') AS wal_level,
              current_setting('max_replication_slots')::int AS max_slots,
              (SELECT count(*) FROM pg_replication_slots)::int AS used_slots,
              current_setting('max_wal_senders')::int AS max_senders,
              (SELECT count(*) FROM pg_stat_replication)::int AS used_senders,
              current_setting('server_version_num')::int AS version_num`)
  ).rows[0];
  if (!settings) throw new Error('the source returned no settings');
  const databases = await listMigratedDatabases(q, deps.ignoreDbs ?? []);
  const role = (await q.query<{ rolsuper: boolean }>('SELECT rolsuper FROM pg_roles WHERE rolname = $1', [deps.migrationUser])).rows[0];
  const userSchemas = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`;
  const noIdentity = await q.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND ${userSchemas}
        AND (c.relreplident = 'n'
             OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
             OR (c.relreplident = 'i' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)))
      ORDER BY 1`,
  );
  const unlogged = await q.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'u' AND ${userSchemas} ORDER BY 1`,
  );
  const counts = (
    await q.query<{ large_objects: number; sequences: number }>(
      `SELECT (SELECT count(*) FROM pg_largeobject_metadata)::int AS large_objects,
              (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind = 'S' AND ${userSchemas})::int AS sequences`,
    )
  ).rows[0];
  return {
    database: settings.database,
    walLevel: settings.wal_level,
    maxReplicationSlots: settings.max_slots,
    usedReplicationSlots: settings.used_slots,
    maxWalSenders: settings.max_senders,
    usedWalSenders: settings.used_senders,
    databasesToMigrate: databases.length,
    versionNum: settings.version_num,
    migrationUser: { name: deps.migrationUser, superuser: role ? role.rolsuper : null },
    tablesWithoutReplicaIdentity: noIdentity.rows.map((r) => r.name),
    unloggedTables: unlogged.rows.map((r) => r.name),
    largeObjects: counts?.large_objects ?? 0,
    sequences: counts?.sequences ?? 0,
  };
}

async function clusterFacts(doCluster: Promise<DatabaseCluster>): Promise<ClusterFacts> {
  const cluster = await doCluster;
  const major = Number.parseInt(cluster.version, 10);
  return { status: cluster.status, versionMajor: Number.isNaN(major) ? null : major };
}

async function firewallFacts(deps: PreflightDeps, resolve: (host: string) => Promise<string[]>): Promise<FirewallFacts> {
  const rules = await deps.api.listFirewallRules(deps.clusterUuid);
  const addressesOf = async (host: string) => (isIP(host) ? [host] : await resolve(host).catch(() => []));
  const required: FirewallFacts['required'] = [{ who: 'source', host: deps.sourceHost, addresses: await addressesOf(deps.sourceHost) }];
  const proxyHost = deps.publicAddresses?.proxy ?? deps.proxyHost;
  if (proxyHost) required.push({ who: 'proxy', host: proxyHost, addresses: await addressesOf(proxyHost) });
  const bot = deps.publicAddresses?.bot;
  if (bot) required.push({ who: 'bot', host: bot, addresses: [bot] });
  return { rules: rules.map((r) => ({ type: r.type, value: r.value })), required };
}

async function proxyFacts(proxy: NonNullable<PreflightDeps['proxy']>): Promise<ProxyFacts> {
  try {
    const status = await proxy.admin.inspect();
    return { expected: proxy.expected, observed: { healthy: status.healthy, pointsTo: status.pointsTo, detail: status.detail } };
  } catch (error) {
    return { expected: proxy.expected, observed: { error: message(error) } };
  }
}

async function defaultResolve(host: string): Promise<string[]> {
  const found = await lookup(host, { all: true, family: 4 });
  return found.map((a) => a.address);
}
