/**
 * The production `SessionObserver`: lag and the source's WAL position (for the write rate) from the
 * shared source registry (one reading per slot, reused by the status message and the engine), and
 * DigitalOcean's status of the online migration. The scheduler bounds how many sessions run at once.
 */
import type pg from 'pg';
import type { DigitalOceanApi } from '../../domain/ports/digitalocean.js';
import type { DoView, Observation } from '../../domain/report.js';
import type { Session } from '../../domain/session.js';
import { asCodedError, DoApiError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { LagSample } from '../../domain/ports/replication.js';
import type { ReportProfile, SessionObserver } from '../../reports/ports.js';
import type { SourceRegistry } from './source-registry.js';

/** What the observer needs of a profile besides the report settings: which DigitalOcean cluster. */
export type ObservedProfile = ReportProfile & { digitalocean: { clusterUuid: string } };

export interface SourceObserverOptions {
  sources: Pick<SourceRegistry, 'probe' | 'pool'>;
  profiles: ReadonlyMap<string, ObservedProfile>;
  digitalocean: Pick<DigitalOceanApi, 'getOnlineMigration'>;
  log: Logger;
  now?: () => Date;
  /** How long one session's DigitalOcean status may take before the report shows it as unknown. Default 3 s. */
  doBudgetMs?: number;
}

export class SourceObserver implements SessionObserver {
  readonly #options: SourceObserverOptions;
  readonly #now: () => Date;
  /** After DigitalOcean's 429: no DigitalOcean call until then (every session's report skips it). */
  #doQuietUntil = 0;

  constructor(options: SourceObserverOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
  }

  async observe(session: Session): Promise<{ observation: Observation; doView: DoView }> {
    const profile = this.#options.profiles.get(session.profile);
    if (!profile) {
      return {
        observation: { at: this.#now(), known: false, reason: `profile "${session.profile}" is not configured`, walPosition: null },
        doView: { known: false, reason: 'profile not configured' },
      };
    }
    const { sources } = this.#options;
    const [reading, doView] = await Promise.all([
      sources.probe(session.profile).read(),
      this.#doView(profile.digitalocean.clusterUuid, session.doMigrationId),
    ]);
    // The slot query carries the WAL position; only a source without a logical slot needs a second query.
    const walPosition = reading.walPosition ?? (await walPositionOf(sources.pool(session.profile)));
    return { observation: toObservation(reading.sample, walPosition), doView };
  }

  /** DigitalOcean's view within a short budget; a report degrades to "unknown" rather than wait. */
  async #doView(clusterUuid: string, migrationId: string | null): Promise<DoView> {
    const now = this.#now().getTime();
    if (now < this.#doQuietUntil) {
      return { known: false, reason: `DigitalOcean rate limit: not asked again before ${new Date(this.#doQuietUntil).toISOString()}` };
    }
    const budgetMs = this.#options.doBudgetMs ?? 3_000;
    let timer: NodeJS.Timeout | undefined;
    const api: Pick<DigitalOceanApi, 'getOnlineMigration'> = {
      getOnlineMigration: (uuid) =>
        Promise.race([
          this.#options.digitalocean.getOnlineMigration(uuid),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new DoApiError(ErrorCode.DoUnavailable, `DigitalOcean did not answer within ${budgetMs} ms`, {})),
              budgetMs,
            );
          }),
        ])
          .catch((error: unknown) => {
            if (error instanceof DoApiError && error.code === ErrorCode.DoRateLimited) {
              this.#doQuietUntil = Math.max(this.#doQuietUntil, this.#now().getTime() + (error.retryAfterMs ?? 60_000));
            }
            throw error;
          })
          .finally(() => clearTimeout(timer)),
    };
    return doViewOf(api, clusterUuid, migrationId, this.#options.log);
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
        ...(sample.databases ? { databases: sample.databases } : {}),
      }
    : { at: sample.at, known: false, reason: sample.reason, walPosition, ...(sample.databases ? { databases: sample.databases } : {}) };
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
    // A status DigitalOcean added after our spec says nothing we can judge: report it as unknown.
    if (migration.status === 'unknown') return { known: false, reason: `DigitalOcean reports migration ${migration.id} in a status this bot does not know` };
    return { known: true, status: migration.status, id: migration.id, createdAt: new Date(migration.createdAt) };
  } catch (error) {
    const coded = asCodedError(error);
    log.warn({ name: 'reports', err: coded }, 'DigitalOcean status unavailable');
    return { known: false, reason: coded.message };
  }
}
