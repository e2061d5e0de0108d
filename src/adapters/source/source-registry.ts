/**
 * The one way to the source databases for measurements: per profile one small pool, and per
 * (profile, slot) one lag probe whose reading is served again for a short while. The status message,
 * the report observer and the engine read lag here, so twenty people asking `/migrate status` at once,
 * a lag report and a freeze check cost one query on one pool, and the probe's apply-rate estimate sees
 * every reading.
 */
import type pg from 'pg';
import type { LagProbe, LagSample } from '../../domain/ports/replication.js';
import type { Session } from '../../domain/session.js';
import { CodedError, ErrorCode } from '../../errors.js';
import { pool, type PostgresTarget } from './connect.js';
import { SlotLagProbe, type Queryable, type SlotReading } from './lag-probe.js';

/** What the registry needs of a profile: where its source is and which slot the migration uses. */
export interface SourceProfile {
  source: PostgresTarget;
  replication: { slot: string };
}

/** A pool to a source: queries, a held connection (the fence polls on one), and its end. */
export type SourcePool = Queryable & Pick<pg.Pool, 'connect' | 'end'>;

export interface SourceRegistryOptions {
  profiles: ReadonlyMap<string, SourceProfile>;
  /** How long a lag reading is served again instead of asking the source (ms). Default 1000. */
  reuseMs?: number;
  now?: () => Date;
  /** Opens a profile's pool; default a small pg pool (4 connections). */
  openPool?: (profile: SourceProfile) => SourcePool;
}

export class SourceRegistry {
  readonly #profiles: ReadonlyMap<string, SourceProfile>;
  readonly #reuseMs: number;
  readonly #now: () => Date;
  readonly #openPool: (profile: SourceProfile) => SourcePool;
  readonly #pools = new Map<string, SourcePool>();
  /** By `profile\u0000slot`: bounded by the configuration, so it never needs pruning. */
  readonly #probes = new Map<string, SharedLagProbe>();

  constructor(options: SourceRegistryOptions) {
    this.#profiles = options.profiles;
    this.#reuseMs = options.reuseMs ?? 1000;
    this.#now = options.now ?? (() => new Date());
    this.#openPool = options.openPool ?? ((p) => pool(p.source, { max: 4, applicationName: 'pgcutover' }));
  }

  /** The profile's pool to its source, opened on first use. */
  pool(profileName: string): SourcePool {
    let opened = this.#pools.get(profileName);
    if (!opened) {
      opened = this.#openPool(this.#profile(profileName));
      this.#pools.set(profileName, opened);
    }
    return opened;
  }

  /** The lag probe of the profile's migration slot (shared by every caller). */
  probe(profileName: string): SharedLagProbe {
    const slot = this.#profile(profileName).replication.slot;
    const key = `${profileName}\u0000${slot}`;
    let probe = this.#probes.get(key);
    if (!probe) {
      const slotProbe = new SlotLagProbe({ source: this.pool(profileName), slot, now: this.#now });
      probe = new SharedLagProbe(slotProbe, this.#reuseMs, this.#now);
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
