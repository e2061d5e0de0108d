/**
 * Builds a session's machines (the engine's SessionMachines port) from its profile, out of the real
 * parts: the source registry's pools and lag probe, the target (DigitalOcean's cluster details with the
 * profile's overrides, looked up once per profile), the fence, the sequences, the write freeze and,
 * with the proxy strategy, the router. Per machines instance (closed by its `close()`): the pools to the
 * target and the proxy's admin connections.
 *
 * A session covers every database DigitalOcean migrates (all of the source's but templates and
 * `ignoreDbs`, listed when the machines are built): a fence and the sequences of each, every PgBouncer
 * entry serving one paused and repointed, lag per slot, the database-specific preflight checks of each.
 *
 * The in-database freeze hands its record (the roles it locks out, and whether each could log in) to
 * `onRecord` before it changes anything; it is persisted on the session's latest cutover attempt, and given back as `record`
 * whenever machines are built while that freeze is in force, so a restarted bot restores exactly.
 */
import type pg from 'pg';
import type { Env } from '../config/env.js';
import type { LoadedConfig, Profile } from '../config/profiles.js';
import type { FrozenWhat } from '../domain/attempt.js';
import { appUserName } from '../domain/cluster-setup.js';
import { latestAttempt } from '../domain/cutover-plan.js';
import { evaluatePreflight } from '../domain/preflight.js';
import type { DigitalOceanApi } from '../domain/ports/digitalocean.js';
import type { CutoverSettings, PreflightItem, SessionMachines, TargetParameters } from '../domain/ports/machines.js';
import type { ReverseReplication } from '../domain/ports/reverse-replication.js';
import type { JournalRepository } from '../domain/ports/stores.js';
import type { Endpoint } from '../domain/ports/writes.js';
import type { Session } from '../domain/session.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { doPreflightDeps } from './digitalocean-preflight.js';
import { DigitalOceanClient } from './digitalocean/digitalocean-client.js';
import { startAndConfirm } from './digitalocean/start-migration.js';
import { resolveTarget, targetFor, type TargetConnection } from './digitalocean/target-connection.js';
import { createProxyAndFreeze } from './proxy/index.js';
import { parseFreezeRecord, type InDatabaseFreezeRecord } from './proxy/in-database-freeze.js';
import { pool } from './source/connect.js';
import { installFence } from './source/fence-table.js';
import type { Queryable } from './source/lag-probe.js';
import { measureFreezeInputs } from './source/freeze-inputs.js';
import { driftInEveryDatabase } from './replication/schema-catalog.js';
import { sessionReverse } from './replication/session-reverse.js';
import { SlotSplitBrainWatch } from './replication/split-brain-watch.js';
import { freezeParts } from './replication/freeze-parts.js';
import { gatherPreflightFacts, type PreflightDeps } from './source/preflight-gatherer.js';
import { SourceRegistry } from './source/source-registry.js';
import { settleAll } from './settle-all.js';
import { PgBouncerEntries } from './proxy/pgbouncer-entries.js';

export interface ProfileMachinesOptions {
  config: LoadedConfig;
  env: Pick<Env, 'DIGITALOCEAN_TOKEN' | 'DIGITALOCEAN_API_URL'>;
  journal: JournalRepository;
  log: Logger;
  /** The DigitalOcean API (default: the HTTP client on DIGITALOCEAN_API_URL). */
  doApi?: DigitalOceanApi;
  /** The shared pools and lag probes of the sources (default: one of its own, closed with this). */
  sources?: SourceRegistry;
  /** How often starting the migration polls DO until it is syncing (default 2 s). */
  startPollMs?: number;
}

export class ProfileMachines {
  readonly doApi: DigitalOceanApi;
  readonly #o: ProfileMachinesOptions;
  readonly #log: Logger;
  readonly #sources: SourceRegistry;
  readonly #ownSources: boolean;
  /** By profile name. */
  readonly #targets = new Map<string, Promise<TargetConnection>>();

  constructor(options: ProfileMachinesOptions) {
    this.#o = options;
    this.#log = options.log.child({ name: 'machines' });
    this.doApi =
      options.doApi ??
      new DigitalOceanClient({ token: options.env.DIGITALOCEAN_TOKEN, baseUrl: options.env.DIGITALOCEAN_API_URL, logger: options.log });
    this.#ownSources = !options.sources;
    this.#sources = options.sources ?? new SourceRegistry({ profiles: options.config.profiles });
  }

  /** The engine's `machines(session)`. */
  async machines(session: Session): Promise<SessionMachines> {
    const profile = this.#o.config.profiles.get(session.profile);
    if (!profile) {
      throw new CodedError(ErrorCode.ConfigInvalid, `Session ${session.id} names profile "${session.profile}", which is not configured.`);
    }
    const log = this.#log.child({ session: session.id, profile: session.profile });
    const doApi = this.doApi;
    const own = profile.source.database;
    const source = this.#sources.pool(session.profile);
    const sourceOf = (database: string) => this.#sources.pool(session.profile, database);
    const slot = profile.replication.slot;
    const slotOf = (database: string) => (database === own ? slot : 'auto');
    // The profile's own database first; the others are their namesakes on the target.
    const databases = await this.#sources.databases(session.profile);

    // The target pools are opened on first use (a dry run never needs them).
    const targetPools = new Map<string, Promise<pg.Pool>>();
    const targetConnection = () => this.#target(session.profile, profile);
    const doChecks = doPreflightDeps(profile, this.#o.env.DIGITALOCEAN_API_URL, targetConnection);
    const targetPoolNow = (database: string) => {
      let opened = targetPools.get(database);
      if (!opened) {
        opened = targetConnection().then((t) => pool(targetFor(t, database, database === own), { max: 5, applicationName: 'pgcutover' }));
        opened.catch(() => targetPools.delete(database));
        targetPools.set(database, opened);
      }
      return opened;
    };
    // `connect` lets the fence hold one target connection across the freeze.
    const targetOf = (database: string): Queryable & Pick<pg.Pool, 'connect'> => ({
      query: (async (text: string, values?: unknown[]) => (await targetPoolNow(database)).query(text, values)) as Queryable['query'],
      connect: (async () => (await targetPoolNow(database)).connect()) as pg.Pool['connect'],
    });

    const record = await this.#recordInForce(session.id);
    const { proxy, freeze } = createProxyAndFreeze(profile, {
      logger: log,
      ...(record ? { record } : {}),
      onRecord: (r) => this.#persistRecord(session.id, r),
      databases,
      pgbouncerEntries: {
        selection: async () => {
          // Entries already switched point at the target; without DigitalOcean's answer only the source's are found.
          const t = await targetConnection().catch((err: unknown) => log.warn({ err }, 'target unknown: PgBouncer entries on the target not looked for'));
          return {
            ...(profile.proxy.kind === 'pgbouncer' && profile.proxy.databases ? { listed: profile.proxy.databases } : {}),
            migrated: databases,
            servers: [profile.source, ...(t ? [t] : [])].map(({ host, port }) => ({ host, port })),
          };
        },
        profileDatabases: [own, profile.digitalocean.database],
      },
    });
    const bouncer = proxy instanceof PgBouncerEntries ? proxy : undefined;
    const sourceEndpoint: Endpoint = { host: profile.source.host, port: profile.source.port, database: profile.source.database };
    const targetEndpoint = async (): Promise<Endpoint> => {
      const t = await targetConnection();
      return { host: t.host, port: t.port, database: t.database, user: t.user, password: t.password, tls: requiresTls(t.sslmode) };
    };
    const routed = profile.strategy === 'proxy';
    if (routed && !proxy) throw new CodedError(ErrorCode.ConfigInvalid, `Profile "${session.profile}" uses the proxy strategy without a proxy.`);
    const routing = routed && proxy ? { router: proxy, source: sourceEndpoint, target: await targetEndpoint() } : undefined;

    // The fence, the sequence copy and the switch-point verifier, working together inside the freeze.
    const { fence, sequences, verifier } = freezeParts({
      databases,
      own,
      sourceOf,
      targetOf,
      slotOf,
      sequenceMargin: profile.sequences.margin,
      logger: log,
    });
    // Behind a router the applications write on the target after the switch: their writes flow back for a rollback.
    const reverse = routing
      ? sessionReverse({
          sessionId: session.id,
          databases,
          source: sourceOf,
          target: targetOf,
          targetConnection: await targetConnection(),
          sequenceMargin: profile.sequences.margin,
          logger: log,
        })
      : undefined;
    const migrationSource = profile.digitalocean.sourceForMigration;
    const startPollMs = this.#o.startPollMs ?? 2000;
    return {
      settings: cutoverSettingsOf(profile),
      digitalocean: doApi,
      lag: this.#sources.probe(session.profile),
      fence,
      sequences,
      verifier,
      ...(reverse ? { reverse } : {}),
      freeze,
      frozenWhat: frozenWhatOf(profile, proxy?.kind ?? 'none'),
      ...(routing ? { routing, routerLabel: `${routing.router.kind} database ${frozenWhatOf(profile, routing.router.kind).database ?? ''}`.trim() } : {}),
      async preflight(): Promise<PreflightItem[]> {
        const stage = session.state === 'created' ? 'before-migration' : 'before-freeze';
        const deps: PreflightDeps = {
          source,
          migrationUser: migrationSource?.user ?? profile.source.user,
          ignoreDbs: profile.digitalocean.ignoreDbs,
          api: doApi,
          clusterUuid: profile.digitalocean.clusterUuid,
          sourceHost: migrationSource?.host ?? profile.source.host,
          ...(routing ? { proxy: { admin: routing.router, expected: sourceEndpoint } } : {}),
          ...doChecks,
        };
        const items: PreflightItem[] = evaluatePreflight(await gatherPreflightFacts(deps, stage)).map(toItem);
        // The checks of what is inside a database (tables, sequences, large objects) for every other migrated one.
        const others = await settleAll(databases.slice(1), async (database) => {
          const { proxy: _ignored, digitalocean: _perCluster, ...rest } = deps;
          const facts = await gatherPreflightFacts({ ...rest, source: sourceOf(database) }, stage);
          return evaluatePreflight(facts)
            .filter((i) => PER_DATABASE_CHECKS.has(i.check))
            .map((i) => ({ ...toItem(i), check: `${i.check} (${database})` }));
        });
        items.push(...others.flat());
        if (bouncer) items.push(await entriesCheck(bouncer, databases));
        // PgBouncer's own checks, with a real login to the target through it, before a freeze.
        // Replication applies rows by column: a schema changed on one side only stops it (or a freeze waits
        // for a fence that never comes). Checked before every freeze, in every migrated database.
        if (stage === 'before-freeze') items.push(await schemaCheck(databases, sourceOf, targetOf));
        if (reverse && stage === 'before-freeze') items.push(await replicateBackCheck(reverse, profile.rollback.withoutReplicatingBack));
        if (bouncer && routed && stage === 'before-freeze') {
          const checks = await bouncer.preflight(await targetEndpoint());
          items.push(...checks.map((c): PreflightItem => ({ check: `pgbouncer: ${c.name}`, status: c.ok ? 'pass' : 'fail', detail: c.detail })));
        }
        return items;
      },
      async targetParameters(): Promise<TargetParameters> {
        const t = await targetConnection();
        // The applications' own user when `/migrate setup app-user` created it; doadmin's otherwise.
        const app = await doApi.getUser(profile.digitalocean.clusterUuid, appUserName(profile.digitalocean.database));
        return { host: t.host, port: t.port, database: t.database, user: app?.name ?? t.user, password: app?.password ?? t.password, sslmode: t.sslmode };
      },
      async startMigration() {
        await settleAll(databases, (database) => installFence(sourceOf(database)));
        const migration = await startAndConfirm(
          doApi,
          profile.digitalocean.clusterUuid,
          {
            source: {
              host: migrationSource?.host ?? profile.source.host,
              port: migrationSource?.port ?? profile.source.port,
              dbname: migrationSource?.database ?? profile.source.database,
              username: migrationSource?.user ?? profile.source.user,
              password: migrationSource?.password ?? profile.source.password,
            },
            disableSsl: profile.digitalocean.disableSsl,
            ignoreDbs: profile.digitalocean.ignoreDbs,
          },
          { pollIntervalMs: startPollMs },
        );
        log.info({ migrationId: migration.id, status: migration.status }, 'online migration started');
        return { migrationId: migration.id };
      },
      ...(bouncer ? { writesHeld: () => bouncer.clientsWaiting() } : {}),
      splitBrain: new SlotSplitBrainWatch({ source, sessionId: session.id, logger: log }),
      freezeInputs: () =>
        measureFreezeInputs({
          source,
          target: targetOf(own),
          lag: this.#sources.probe(session.profile),
          ...(freeze.roundTripMs ? { proxyRoundTripMs: () => freeze.roundTripMs!() } : {}),
        }),
      async close() {
        // The fence first: it may hold connections of the pools below.
        await Promise.all([fence.close(), sequences.close(), verifier.close(), reverse?.close()]).catch(() => undefined);
        await proxy?.close().catch(() => undefined);
        const pools = [...targetPools.values()];
        targetPools.clear();
        await Promise.all(pools.map(async (p) => (await p).end()).map((p) => p.catch(() => undefined)));
      },
    };
  }

  /** Ends the pools this factory opened (at shutdown, after the engine released its windows). */
  async close(): Promise<void> {
    this.#targets.clear();
    if (this.#ownSources) await this.#sources.close();
  }

  /** How the bot reaches a profile's target (the same look-up as its sessions' machines); the reports' schema guard uses it. */
  targetConnection(profileName: string): Promise<TargetConnection> {
    const profile = this.#o.config.profiles.get(profileName);
    if (!profile) return Promise.reject(new CodedError(ErrorCode.ConfigInvalid, `Profile "${profileName}" is not configured.`));
    return this.#target(profileName, profile);
  }

  /** The target depends on the profile alone (its DO cluster and overrides): one look-up per profile. */
  #target(profileName: string, profile: Profile): Promise<TargetConnection> {
    let pending = this.#targets.get(profileName);
    if (!pending) {
      pending = resolveTarget(this.doApi, profile.digitalocean);
      this.#targets.set(profileName, pending);
      // A failed look-up is not cached: the next use asks DigitalOcean again.
      pending.catch(() => {
        if (this.#targets.get(profileName) === pending) this.#targets.delete(profileName);
      });
    }
    return pending;
  }

  /** Persists the freeze record on the latest cutover attempt (the engine opened it before the freeze). */
  async #persistRecord(sessionId: string, record: InDatabaseFreezeRecord): Promise<void> {
    const attempt = await this.#o.journal.latestCutover(sessionId);
    if (!attempt) throw new CodedError(ErrorCode.Internal, 'No cutover attempt to record the freeze on; nothing was frozen.');
    await this.#o.journal.update(sessionId, attempt.attempt, { freezeRecord: record });
  }

  /**
   * The record of an in-database freeze still in force: the latest cutover attempt's, unless its freeze
   * was undone, or a later attempt resumed writes on the source (abort, rollback).
   */
  async #recordInForce(sessionId: string): Promise<InDatabaseFreezeRecord | undefined> {
    const attempt = await this.#o.journal.latestCutover(sessionId);
    const record = parseFreezeRecord(attempt?.freezeRecord);
    if (!attempt || !record) return undefined;
    const entries = await this.#o.journal.entries(sessionId);
    const own = entries.filter((e) => e.attempt === attempt.attempt);
    if (latestAttempt(own)?.status('freeze') === 'undone') return undefined;
    const resumedLater = entries.some(
      (e) => e.attempt > attempt.attempt && e.event === 'done' && (e.step === 'unfreeze_source' || e.step === 'rollback_resume_source'),
    );
    return resumedLater ? undefined : record;
  }
}

/**
 * Whether the target's writes can flow back after the switch. Without it a rollback leaves them on
 * the target: that fails the preflight (and so the freeze) unless the profile accepts it.
 */
async function replicateBackCheck(reverse: ReverseReplication, without: 'refuse' | 'accept'): Promise<PreflightItem> {
  const check = 'replicating back';
  const capability = await reverse.capability().catch((error: unknown) => ({ ok: false, reasons: [(error as Error).message] }));
  if (capability.ok) return { check, status: 'pass', detail: "after the switch the target's writes flow back to the source: a rollback loses nothing" };
  const accepted = without === 'accept';
  return {
    check,
    status: accepted ? 'warn' : 'fail',
    detail: `a rollback after the switch would leave the target's writes on the target only${accepted ? ' (accepted by the profile)' : ''}: ${capability.reasons.join('; ')}`,
    fix: 'wal_level = logical on the target and a target user with REPLICATION that owns the migrated tables (or a superuser), and a superuser on the source; or accept the loss with rollback.withoutReplicatingBack: accept in the profile',
  };
}

/** Which PgBouncer entries the cutover pauses and repoints, and which migrated databases none of them serves. */
async function entriesCheck(bouncer: PgBouncerEntries, databases: readonly string[]): Promise<PreflightItem> {
  const check = 'pgbouncer: entries';
  try {
    const entries = await bouncer.entries();
    const served = new Set(entries.map((e) => e.database));
    const unserved = databases.filter((d) => !served.has(d));
    const covers = `pauses and repoints ${entries.map((e) => `${e.name} (${e.database})`).join(', ')}`;
    if (unserved.length === 0) return { check, status: 'pass', detail: covers };
    return {
      check,
      status: 'warn',
      detail: `${covers}; no entry serves ${unserved.join(', ')}, which DigitalOcean migrates: writes to ${unserved.length === 1 ? 'it' : 'them'} would go around the freeze`,
      fix: 'Add a PgBouncer entry for it (or list its entry in proxy.databases), or put it in digitalocean.ignoreDbs if nothing writes to it.',
    };
  } catch (error) {
    return { check, status: 'fail', detail: `cannot tell which entries to pause: ${(error as Error).message}` };
  }
}

/** Preflight checks about what is inside one database, run for every migrated database. */
const PER_DATABASE_CHECKS: ReadonlySet<string> = new Set(['source_reachable', 'replica_identity', 'large_objects', 'unlogged_tables', 'sequences']);

const toItem = (i: ReturnType<typeof evaluatePreflight>[number]): PreflightItem => ({
  check: i.check,
  status: i.status,
  detail: i.detail,
  ...(i.fix ? { fix: i.fix } : {}),
});

function requiresTls(sslmode: TargetConnection['sslmode']): boolean {
  return sslmode !== 'disable' && sslmode !== 'prefer';
}

/** The numbers of a profile the engine works with. */
export function cutoverSettingsOf(profile: Profile): CutoverSettings {
  return {
    strategy: profile.strategy,
    freezeMethod: profile.freeze.method,
    freezeBudgetSeconds: profile.freeze.budgetSeconds,
    maxLagBytesToFreeze: profile.gates.maxLagBytesToFreeze,
    fenceTimeoutSeconds: profile.replication.fenceTimeoutSeconds,
    sequenceMargin: profile.sequences.margin,
    doClusterUuid: profile.digitalocean.clusterUuid,
    targetDatabase: profile.digitalocean.database,
  };
}

/** What a profile's freeze freezes, journaled so a restarted bot resumes exactly that; `via`: the proxy's kind. */
export function frozenWhatOf(profile: Profile, via: string): FrozenWhat {
  const method = profile.freeze.method;
  if (method === 'proxy-pause') {
    return { method, via, database: profile.proxy.kind === 'pgbouncer' ? profile.proxy.database : profile.source.database };
  }
  return { method, via: 'database', database: profile.source.database, ...(method === 'read-only-roles' ? { roles: [...profile.freeze.appRoles] } : {}) };
}

/** The schema guard's preflight item: source and target catalogs compared in every migrated database. */
async function schemaCheck(databases: readonly string[], sourceOf: (db: string) => Queryable, targetOf: (db: string) => Queryable): Promise<PreflightItem> {
  const lines = await driftInEveryDatabase(databases, sourceOf, targetOf);
  return lines.length === 0
    ? { check: 'schema', status: 'pass', detail: 'source and target have the same tables, columns, keys and indexes' }
    : {
        check: 'schema',
        status: 'fail',
        detail: `source and target differ (${lines.length}): ${lines.slice(0, 5).join('; ')}${lines.length > 5 ? '; …' : ''}`,
        fix: 'apply the same DDL on the other side (logical replication carries rows, never schema changes), then check again',
      };
}

