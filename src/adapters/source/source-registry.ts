/**
 * The one way to the source databases for measurements: per profile and migrated database one small
 * pool, and per profile one lag probe over every migrated database's slot (the profile's own database's
 * slot as configured, the others' `auto`) whose reading is served again for a short while. The status message,
 * the report observer and the engine read lag here, so twenty people asking `/migrate status` at once,
 * a lag report and a freeze check cost one query on one pool, and the probe's apply-rate estimate sees
 * every reading.
 */
import type pg from 'pg';
import type { LagProbe, LagSample } from '../../domain/ports/replication.js';
import type { Session } from '../../domain/session.js';
import { CodedError, ErrorCode } from '../../errors.js';
import { pool, type PostgresTarget } from './connect.js';
import { listMigratedDatabases } from './databases.js';
import { EveryDatabaseLagProbe } from './every-database.js';
import { SlotLagProbe, type Queryable, type SlotReading } from './lag-probe.js';

/** What the registry needs of a profile: where its source is, which slot the migration uses, what DO skips. */
export interface SourceProfile {
  source: PostgresTarget;
  replication: { slot: string };
  /** What DigitalOcean skips; without it the registry knows of the profile's own database only. */
  digitalocean?: { ignoreDbs?: readonly string[] };
}

/** A pool to a source: queries, a held connection (the fence polls on one), and its end. */
export type SourcePool = Queryable & Pick<pg.Pool, 'connect' | 'end'>;

export interface SourceRegistryOptions {
  profiles: ReadonlyMap<string, SourceProfile>;
  /** How long a lag reading is served again instead of asking the source (ms). Default 1000. */
  reuseMs?: number;
  now?: () => Date;
  /** Opens a profile's pool to one of its source's databases; default a small pg pool (4 connections). */
  openPool?: (profile: SourceProfile, database: string) => SourcePool;
}

export class SourceRegistry {
  readonly #profiles: ReadonlyMap<string, SourceProfile>;
  readonly #reuseMs: number;
  readonly #now: () => Date;
  readonly #openPool: (profile: SourceProfile, database: string) => SourcePool;
  /** By `profile\u0000database`. */
  readonly #pools = new Map<string, SourcePool>();
  /** By `profile\u0000slot`: bounded by the configuration, so it never needs pruning. */
  readonly #probes = new Map<string, SharedLagProbe>();

  constructor(options: SourceRegistryOptions) {
    this.#profiles = options.profiles;
    this.#reuseMs = options.reuseMs ?? 1000;
    this.#now = options.now ?? (() => new Date());
    this.#openPool = options.openPool ?? ((p, database) => pool({ ...p.source, database }, { max: 4, applicationName: 'pgcutover' }));
  }

  /** The profile's pool to a database of its source (default: the profile's own), opened on first use. */
  pool(profileName: string, database?: string): SourcePool {
    const profile = this.#profile(profileName);
    const db = database ?? profile.source.database;
    const key = `${profileName}\u0000${db}`;
    let opened = this.#pools.get(key);
    if (!opened) {
      opened = this.#openPool(profile, db);
      this.#pools.set(key, opened);
    }
    return opened;
  }

  /**
   * The databases DigitalOcean migrates for the profile (all of the source's but templates and
   * `ignoreDbs`), the profile's own first, and always listed: without its slot its lag is unknown.
   */
  async databases(profileName: string): Promise<string[]> {
    const profile = this.#profile(profileName);
    const own = profile.source.database;
    const ignoreDbs = profile.digitalocean?.ignoreDbs;
    if (!ignoreDbs) return [own];
    const all = await listMigratedDatabases(this.pool(profileName), ignoreDbs);
    return [own, ...all.filter((d) => d !== own)];
  }

  /** The lag of the profile's migration: every migrated database's slot (shared by every caller). */
  probe(profileName: string): SharedLagProbe {
    const slot = this.#profile(profileName).replication.slot;
    const key = `${profileName}\u0000${slot}`;
    let probe = this.#probes.get(key);
    if (!probe) {
      const own = this.#profile(profileName).source.database;
      const slots = new Map<string, SlotLagProbe>();
      const slotProbe = (database: string) => {
        let found = slots.get(database);
        if (!found) {
          found = new SlotLagProbe({ source: this.pool(profileName, database), slot: database === own ? slot : 'auto', now: this.#now });
          slots.set(database, found);
        }
        return found;
      };
      const every = new EveryDatabaseLagProbe({ databases: () => this.databases(profileName), probe: slotProbe, now: this.#now });
      probe = new SharedLagProbe(every, this.#reuseMs, this.#now);
      this.#probes.set(key, probe);
    }
    return probe;
  }

  /** The session's lag, from a reading at most `reuseMs` old. */
  lag(session: Pick<Session, 'profile'>): Promise<LagSample> {
    return this.probe(session.profile).measure();
  }

  /** Ends the pools (at shutdown). */
  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    this.#probes.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }

  #profile(name: string): SourceProfile {
    const profile = this.#profiles.get(name);
    if (!profile) throw new CodedError(ErrorCode.ConfigInvalid, `Profile "${name}" is not configured.`);
    return profile;
  }
}

/** A slot probe behind a short-lived cache: concurrent callers share one query, later ones reuse its reading. */
export class SharedLagProbe implements LagProbe {
  readonly #probe: Pick<SlotLagProbe, 'read'>;
  readonly #reuseMs: number;
  readonly #now: () => Date;
  #last: SlotReading | undefined;
  #inFlight: Promise<SlotReading> | undefined;

  constructor(probe: Pick<SlotLagProbe, 'read'>, reuseMs: number, now: () => Date) {
    this.#probe = probe;
    this.#reuseMs = reuseMs;
    this.#now = now;
  }

  read(): Promise<SlotReading> {
    const last = this.#last;
    if (last && this.#now().getTime() - last.sample.at.getTime() < this.#reuseMs) return Promise.resolve(last);
    this.#inFlight ??= this.#probe
      .read()
      .then((reading) => {
        this.#last = reading;
        return reading;
      })
      .finally(() => {
        this.#inFlight = undefined;
      });
    return this.#inFlight;
  }

  async measure(): Promise<LagSample> {
    return (await this.read()).sample;
  }
}
