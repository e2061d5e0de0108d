/**
 * Builds a session's machines (the engine's SessionMachines port) from its profile, out of the real
 * parts: the source registry's pool and lag probe, the target (DigitalOcean's cluster details with the
 * profile's overrides, looked up once per profile), the fence, the sequences, the write freeze and,
 * with the proxy strategy, the router. Per machines instance (closed by its `close()`): the pool to the
 * target and the proxy's admin connections.
 *
 * The in-database freeze hands its record (the roles it locks out, and whether each could log in) to
 * `onRecord` before it changes anything; it is persisted on the session's latest cutover attempt, and given back as `record`
 * whenever machines are built while that freeze is in force, so a restarted bot restores exactly.
 */
import type pg from 'pg';
import type { Env } from '../config/env.js';
import type { LoadedConfig, Profile } from '../config/profiles.js';
import type { FrozenWhat } from '../domain/attempt.js';
import { latestAttempt } from '../domain/cutover-plan.js';
import { evaluatePreflight } from '../domain/preflight.js';
import type { DigitalOceanApi } from '../domain/ports/digitalocean.js';
import type { CutoverSettings, PreflightItem, SessionMachines, TargetParameters } from '../domain/ports/machines.js';
import type { JournalRepository } from '../domain/ports/stores.js';
import type { Endpoint } from '../domain/ports/writes.js';
import type { Session } from '../domain/session.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { DigitalOceanClient } from './digitalocean/digitalocean-client.js';
import { startAndConfirm } from './digitalocean/start-migration.js';
import { createProxyAndFreeze, PgBouncerAdmin } from './proxy/index.js';
import { parseFreezeRecord, type InDatabaseFreezeRecord } from './proxy/in-database-freeze.js';
import { pool, type PostgresTarget } from './source/connect.js';
import { installFence, ReplicationFence } from './source/fence.js';
import type { Queryable } from './source/lag-probe.js';
import { gatherPreflightFacts } from './source/preflight-gatherer.js';
import { sequenceCopier } from './source/sequences.js';
import { SourceRegistry } from './source/source-registry.js';

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

/** The target as the bot connects to it: DO's cluster details with the profile's overrides. */
type TargetConnection = PostgresTarget & { sslmode: NonNullable<PostgresTarget['sslmode']> };

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
    const source = this.#sources.pool(session.profile);
    const slot = profile.replication.slot;

    // The target pool is opened on first use (a dry run never needs it).
    let targetPool: pg.Pool | undefined;
    const targetConnection = () => this.#target(session.profile, profile);
    const targetPoolNow = async () => (targetPool ??= pool(await targetConnection(), { max: 3, applicationName: 'pgcutover' }));
    // `connect` lets the fence hold one target connection across the freeze.
    const target: Queryable & Pick<pg.Pool, 'connect'> = {
      query: (async (text: string, values?: unknown[]) => (await targetPoolNow()).query(text, values)) as Queryable['query'],
      connect: (async () => (await targetPoolNow()).connect()) as pg.Pool['connect'],
    };

    const record = await this.#recordInForce(session.id);
    const { proxy, freeze } = createProxyAndFreeze(profile, {
      logger: log,
      ...(record ? { record } : {}),
      onRecord: (r) => this.#persistRecord(session.id, r),
    });
    const sourceEndpoint: Endpoint = { host: profile.source.host, port: profile.source.port, database: profile.source.database };
    const targetEndpoint = async (): Promise<Endpoint> => {
      const t = await targetConnection();
      return { host: t.host, port: t.port, database: t.database, user: t.user, password: t.password, tls: requiresTls(t.sslmode) };
    };
    const routed = profile.strategy === 'proxy';
    if (routed && !proxy) throw new CodedError(ErrorCode.ConfigInvalid, `Profile "${session.profile}" uses the proxy strategy without a proxy.`);
    const routing = routed && proxy ? { router: proxy, source: sourceEndpoint, target: await targetEndpoint() } : undefined;

    const fence = new ReplicationFence({ source, target, slot, logger: log });
    const migrationSource = profile.digitalocean.sourceForMigration;
    const startPollMs = this.#o.startPollMs ?? 2000;
    return {
      settings: cutoverSettingsOf(profile),
      digitalocean: doApi,
      lag: this.#sources.probe(session.profile),
      fence,
      sequences: sequenceCopier({ source, target, margin: profile.sequences.margin }),
      freeze,
      frozenWhat: frozenWhatOf(profile, proxy?.kind ?? 'none'),
      ...(routing ? { routing, routerLabel: `${routing.router.kind} database ${frozenWhatOf(profile, routing.router.kind).database ?? ''}`.trim() } : {}),
      async preflight(): Promise<PreflightItem[]> {
        const stage = session.state === 'created' ? 'before-migration' : 'before-freeze';
        const facts = await gatherPreflightFacts(
          {
            source,
            migrationUser: migrationSource?.user ?? profile.source.user,
            ignoreDbs: profile.digitalocean.ignoreDbs,
            api: doApi,
            clusterUuid: profile.digitalocean.clusterUuid,
            sourceHost: migrationSource?.host ?? profile.source.host,
            ...(routing ? { proxy: { admin: routing.router, expected: sourceEndpoint } } : {}),
          },
          stage,
        );
        const items: PreflightItem[] = evaluatePreflight(facts).map((i) => ({ check: i.check, status: i.status, detail: i.detail, ...(i.fix ? { fix: i.fix } : {}) }));
        // PgBouncer's own checks, with a real login to the target through it, before a freeze.
        if (proxy instanceof PgBouncerAdmin && routed && stage === 'before-freeze') {
          const checks = await proxy.preflight(await targetEndpoint());
          items.push(...checks.map((c): PreflightItem => ({ check: `pgbouncer: ${c.name}`, status: c.ok ? 'pass' : 'fail', detail: c.detail })));
        }
        return items;
      },
      async targetParameters(): Promise<TargetParameters> {
        const t = await targetConnection();
        return { host: t.host, port: t.port, database: t.database, user: t.user, password: t.password, sslmode: t.sslmode };
      },
      async startMigration() {
        await installFence(source);
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
      ...(proxy instanceof PgBouncerAdmin ? { writesHeld: async () => (await proxy.drainState()).clientsWaiting } : {}),
      async close() {
        // The fence first: it may hold connections of the pools below.
        await fence.close().catch(() => undefined);
        await proxy?.close().catch(() => undefined);
        await targetPool?.end().catch(() => undefined);
      },
    };
  }

  /** Ends the pools this factory opened (at shutdown, after the engine released its windows). */
  async close(): Promise<void> {
    this.#targets.clear();
    if (this.#ownSources) await this.#sources.close();
  }

  /** The target depends on the profile alone (its DO cluster and overrides): one look-up per profile. */
  #target(profileName: string, profile: Profile): Promise<TargetConnection> {
    let pending = this.#targets.get(profileName);
    if (!pending) {
      pending = this.doApi.getCluster(profile.digitalocean.clusterUuid).then((cluster) => {
        const o = profile.digitalocean.target ?? {};
        return {
          host: o.host ?? cluster.connection.host,
          port: o.port ?? cluster.connection.port,
          database: o.database ?? profile.digitalocean.database,
          user: o.user ?? cluster.connection.user,
          password: o.password ?? cluster.connection.password,
          sslmode: o.sslmode ?? (cluster.connection.ssl ? 'require' : 'disable'),
        };
      });
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
