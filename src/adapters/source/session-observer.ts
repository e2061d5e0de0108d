/**
 * The production `SessionObserver`: lag from the migration's slot on the source (SlotLagProbe), the
 * source's WAL position (for the write rate), and DigitalOcean's status of the online migration.
 * One small pool per source database, shared by every session of that profile, so many sessions'
 * probes reuse a few connections; the scheduler bounds how many run at once.
 */
import type pg from 'pg';
import type { DigitalOceanApi } from '../../domain/ports/digitalocean.js';
import type { DoView, Observation } from '../../domain/report.js';
import type { Session } from '../../domain/session.js';
import { asCodedError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { SlotLagProbe } from './lag-probe.js';
import type { LagSample } from '../../domain/ports/replication.js';
import type { ReportProfile, SessionObserver } from '../../reports/ports.js';

/** What the observer needs of a profile besides the report settings: where the source is, which slot, which cluster. */
export type ObservedProfile = ReportProfile & {
  replication: { slot: string };
  digitalocean: { clusterUuid: string };
};

export interface SourceObserverOptions {
  /** A pool to the profile's source database (e.g. `pool(profile.source, { max: 2 })` from postgres/connect). */
  poolFor: (profileName: string) => Pick<pg.Pool, 'query' | 'end'>;
  profiles: ReadonlyMap<string, ObservedProfile>;
  digitalocean: Pick<DigitalOceanApi, 'getOnlineMigration'>;
  log: Logger;
  now?: () => Date;
}

export class SourceObserver implements SessionObserver {
  readonly #options: SourceObserverOptions;
  readonly #now: () => Date;
  readonly #pools = new Map<string, Pick<pg.Pool, 'query' | 'end'>>();
  /** One probe per session: it remembers the previous sample for its time estimate. */
  readonly #probes = new Map<string, SlotLagProbe>();

  constructor(options: SourceObserverOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
  }

  async observe(session: Session): Promise<{ observation: Observation; doView: DoView }> {
    const profile = this.#options.profiles.get(session.profile);
    const at = this.#now();
    if (!profile) {
      return {
        observation: { at, known: false, reason: `profile "${session.profile}" is not configured`, walPosition: null },
        doView: { known: false, reason: 'profile not configured' },
      };
    }
    let source = this.#pools.get(session.profile);
    if (!source) {
      source = this.#options.poolFor(session.profile);
      this.#pools.set(session.profile, source);
    }
    let probe = this.#probes.get(session.id);
    if (!probe) {
      probe = new SlotLagProbe({ source, slot: profile.replication.slot, now: this.#now });
      this.#probes.set(session.id, probe);
    }
    const [sample, walPosition, doView] = await Promise.all([
      probe.measure(),
      walPositionOf(source),
      doViewOf(this.#options.digitalocean, profile.digitalocean.clusterUuid, session.doMigrationId, this.#options.log),
    ]);
    return { observation: toObservation(sample, walPosition), doView };
  }

  retainOnly(sessionIds: ReadonlySet<string>): void {
    for (const id of this.#probes.keys()) if (!sessionIds.has(id)) this.#probes.delete(id);
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    this.#probes.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }
}

export function toObservation(sample: LagSample, walPosition: number | null): Observation {
  return sample.known
    ? {
        at: sample.at,
        known: true,
        bytes: sample.bytes,
        seconds: sample.seconds,
        slot: sample.slot,
        slotActive: sample.slotActive,
        walPosition,
      }
    : { at: sample.at, known: false, reason: sample.reason, walPosition };
}

/** pg_current_wal_lsn() as bytes since 0/0, or null when the source cannot be asked. */
export async function walPositionOf(source: Pick<pg.Pool, 'query'>): Promise<number | null> {
  try {
    const { rows } = await source.query<{ position: string }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS position`,
    );
    return rows[0] ? Number(rows[0].position) : null;
  } catch {
    return null;
  }
}

async function doViewOf(
  api: Pick<DigitalOceanApi, 'getOnlineMigration'>,
  clusterUuid: string,
  migrationId: string | null,
  log: Logger,
): Promise<DoView> {
  try {
    const migration = await api.getOnlineMigration(clusterUuid);
    if (!migration) return { known: true, status: 'none' };
    if (migrationId !== null && migration.id !== migrationId) {
      return { known: false, reason: `the cluster's migration is ${migration.id}, not this session's ${migrationId}` };
    }
    return { known: true, status: migration.status, id: migration.id, createdAt: new Date(migration.createdAt) };
  } catch (error) {
    const coded = asCodedError(error);
    log.warn({ name: 'reports', err: coded }, 'DigitalOcean status unavailable');
    return { known: false, reason: coded.message };
  }
}
