/**
 * The production `adapters(session)` factory of the cutover engine: builds a session's SessionAdapters
 * from its profile and the environment (DigitalOcean token and API URL), out of the real parts.
 *
 * Cached per session: the lag probe (it remembers the previous sample for its time estimate) and the
 * target's connection (DigitalOcean's cluster details, fetched once). Shared per profile: one small
 * pool to the source. Per adapters instance (closed by its `close()`): the pool to the target and the
 * proxy's admin connections. `close()` of the factory ends the shared pools.
 *
 * The in-database freeze hands its record (the settings before the freeze) to `onRecord` before it
 * changes anything; it is persisted on the session's latest cutover attempt, and given back as `record`
 * whenever adapters are built while that freeze is in force, so a restarted bot restores exactly.
 */
import type pg from 'pg';
import type { Env } from '../config/env.js';
import type { LoadedConfig, Profile } from '../config/profiles.js';
import { latestAttempt } from '../domain/cutover-plan.js';
import { evaluatePreflight } from '../domain/preflight.js';
import { isActive, type Session } from '../domain/session.js';
import type { DigitalOceanApi } from '../domain/ports/digitalocean.js';
import { DigitalOceanClient } from './digitalocean/digitalocean-client.js';
import { startAndConfirm } from './digitalocean/start-migration.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { pool, type PostgresTarget } from './source/connect.js';
import { createProxyAndFreeze, PgBouncerAdmin, type InDatabaseFreezeRecord } from './proxy/index.js';
import type { Endpoint } from '../domain/ports/writes.js';
import type { ProxyAdmin } from './proxy/proxy-admin.js';
import { installFence, ReplicationFence } from './source/fence.js';
import { SlotLagProbe, type Queryable } from './source/lag-probe.js';
import { gatherPreflightFacts } from './source/preflight-gatherer.js';
import type { CutoverJournal, FrozenWhat } from './store/cutover-journal.js';
import type { SessionAdapters, TargetParameters, WriteControl } from '../app/cutover/engine.js';
import { sequenceCopier } from './source/sequences.js';
import type { PreflightItem } from '../app/session-operations.js';

export interface ProfileAdaptersOptions {
  config: LoadedConfig;
  env: Pick<Env, 'DIGITALOCEAN_TOKEN' | 'DIGITALOCEAN_API_URL'>;
  journal: CutoverJournal;
  log: Logger;
  /** The DigitalOcean API (default: the HTTP client on DIGITALOCEAN_API_URL). */
  doApi?: DigitalOceanApi;
  /** How often starting the migration polls DO until it is syncing (default 2 s). */
  startPollMs?: number;
}

/** The target as the bot connects to it: DO's cluster details with the profile's overrides. */
type TargetConnection = PostgresTarget & { sslmode: NonNullable<PostgresTarget['sslmode']> };

export class ProfileAdapters {
  readonly doApi: DigitalOceanApi;
  readonly #o: ProfileAdaptersOptions;
  readonly #log: Logger;
  readonly #sourcePools = new Map<string, pg.Pool>();
  /** By session id, while the session is active. */
  readonly #probes = new Map<string, SlotLagProbe>();
  /** By profile name. */
  readonly #targets = new Map<string, Promise<TargetConnection>>();

  constructor(options: ProfileAdaptersOptions) {
    this.#o = options;
    this.#log = options.log.child({ name: 'adapters' });
    this.doApi =
      options.doApi ??
      new DigitalOceanClient({ token: options.env.DIGITALOCEAN_TOKEN, baseUrl: options.env.DIGITALOCEAN_API_URL, logger: options.log });
  }

  /** The engine's `adapters(session)`. */
  async adapters(session: Session): Promise<SessionAdapters> {
    const profile = this.#o.config.profiles.get(session.profile);
    if (!profile) {
      throw new CodedError(ErrorCode.ConfigInvalid, `Session ${session.id} names profile "${session.profile}", which is not configured.`);
    }
    if (!isActive(session.state)) this.#forget(session.id);
    const log = this.#log.child({ session: session.id, profile: session.profile });
    const doApi = this.doApi;
    const source = this.#sourcePool(session.profile, profile);
    const slot = profile.replication.slot;

    // The target pool is opened on first use (lag and status refreshes never need it).
    let targetPool: pg.Pool | undefined;
    const targetConnection = () => this.#target(session.profile, profile);
    const target: Queryable = {
      query: (async (text: string, values?: unknown[]) => {
        targetPool ??= pool(await targetConnection(), { max: 3, applicationName: 'pgcutover' });
        return targetPool.query(text, values);
      }) as Queryable['query'],
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
    const frozenWhat = frozenWhatOf(profile, proxy);
    let writes: WriteControl;
    if (profile.strategy === 'proxy') {
      if (!proxy) throw new CodedError(ErrorCode.ConfigInvalid, `Profile "${session.profile}" uses the proxy strategy without a proxy.`);
      writes = { kind: 'proxy', proxy, source: sourceEndpoint, target: await targetEndpoint(), frozenWhat };
    } else {
      writes = { kind: 'in-database', freeze, frozenWhat };
    }

    const migrationSource = profile.digitalocean.sourceForMigration;
    const startPollMs = this.#o.startPollMs ?? 2000;
    return {
      settings: {
        strategy: profile.strategy,
        freezeMethod: profile.freeze.method,
        freezeBudgetSeconds: profile.freeze.budgetSeconds,
        maxLagBytesToFreeze: profile.gates.maxLagBytesToFreeze,
        fenceTimeoutSeconds: profile.replication.fenceTimeoutSeconds,
        sequenceMargin: profile.sequences.margin,
        doClusterUuid: profile.digitalocean.clusterUuid,
      },
      doApi,
      // Created on first measurement: plan and preflight (a dry run's draft session) never leave one behind.
      lag: { measure: () => this.#probe(session.id, source, slot).measure() },
      fence: new ReplicationFence({ source, target, slot, logger: log }),
      writes,
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
            ...(proxy && profile.strategy === 'proxy' ? { proxy: { admin: proxy, expected: sourceEndpoint } } : {}),
          },
          stage,
        );
        const items: PreflightItem[] = evaluatePreflight(facts).map((i) => ({
          check: i.check,
          status: i.status,
          detail: i.detail,
          ...(i.fix ? { fix: i.fix } : {}),
        }));
        // PgBouncer's own checks, with a real login to the target through it, before a freeze.
        if (proxy instanceof PgBouncerAdmin && profile.strategy === 'proxy' && stage === 'before-freeze') {
          const checks = await proxy.preflight(await targetEndpoint());
          items.push(...checks.map((c): PreflightItem => ({ check: `pgbouncer: ${c.name}`, status: c.ok ? 'pass' : 'fail', detail: c.detail })));
        }
        return items;
      },
      sequences: sequenceCopier({ source, target, margin: profile.sequences.margin }),
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
      ...(proxy instanceof PgBouncerAdmin
        ? { writesHeld: async () => (await proxy.drainState()).clientsWaiting }
        : {}),
      async close() {
        await proxy?.close().catch(() => undefined);
        await targetPool?.end().catch(() => undefined);
      },
    };
  }

  /** Ends the shared pools (at shutdown, after the engine released its windows). */
  async close(): Promise<void> {
    const pools = [...this.#sourcePools.values()];
    this.#sourcePools.clear();
    this.#probes.clear();
    this.#targets.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }

  #sourcePool(name: string, profile: Profile): pg.Pool {
    let created = this.#sourcePools.get(name);
    if (!created) {
      created = pool(profile.source, { max: 4, applicationName: 'pgcutover' });
      this.#sourcePools.set(name, created);
    }
    return created;
  }

  #forget(sessionId: string): void {
    this.#probes.delete(sessionId);
  }

  /** A session's lag probe keeps its recent apply rate, so it lives as long as the session is active. */
  #probe(sessionId: string, source: pg.Pool, slot: string): SlotLagProbe {
    let probe = this.#probes.get(sessionId);
    if (!probe) {
      probe = new SlotLagProbe({ source, slot });
      this.#probes.set(sessionId, probe);
    }
    return probe;
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
    if (!attempt) {
      throw new CodedError(ErrorCode.Internal, 'No cutover attempt to record the freeze on; nothing was frozen.');
    }
    await this.#o.journal.update(sessionId, attempt.attempt, { freezeRecord: record });
  }

  /**
   * The record of an in-database freeze still in force: the latest cutover attempt's, unless its freeze
   * was undone, or a later attempt resumed writes on the source (abort, rollback).
   */
  async #recordInForce(sessionId: string): Promise<InDatabaseFreezeRecord | undefined> {
    const attempt = await this.#o.journal.latestCutover(sessionId);
    if (!attempt?.freezeRecord) return undefined;
    const entries = await this.#o.journal.entries(sessionId);
    const own = entries.filter((e) => e.attempt === attempt.attempt);
    if (latestAttempt(own)?.status('freeze') === 'undone') return undefined;
    const resumedLater = entries.some(
      (e) =>
        e.attempt > attempt.attempt &&
        e.event === 'done' &&
        (e.step === 'unfreeze_source' || e.step === 'rollback_resume_source'),
    );
    return resumedLater ? undefined : attempt.freezeRecord;
  }
}

function requiresTls(sslmode: TargetConnection['sslmode']): boolean {
  return sslmode !== 'disable' && sslmode !== 'prefer';
}

function frozenWhatOf(profile: Profile, proxy: ProxyAdmin | null): FrozenWhat {
  const method = profile.freeze.method;
  if (method === 'proxy-pause') {
    return {
      method,
      via: proxy?.kind ?? 'none',
      database: profile.proxy.kind === 'pgbouncer' ? profile.proxy.database : profile.source.database,
    };
  }
  return {
    method,
    via: 'database',
    database: profile.source.database,
    ...(method === 'read-only-roles' ? { roles: [...profile.freeze.appRoles] } : {}),
  };
}
