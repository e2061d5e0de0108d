/**
 * Deletes what no one reads any more: the report rows (schedules, tick claims, alert episodes,
 * observation windows) and lag samples of sessions that ended a while ago, and idempotency keys older
 * than a day (a retry or double click comes within seconds; a stale click is refused by the session
 * version anyway). Sessions and the audit log are kept for ever. Safe to run on several replicas at once.
 */
import { ACTIVE_STATES } from '../../domain/session.js';
import { IdempotencyStore } from './approvals.js';
import type { Database } from './database.js';

export interface HousekeepingOptions {
  /** How long after a session ended its rows are kept (a last status refresh may still read them). Default 1 h. */
  endedGraceMs?: number;
  /** Idempotency keys older than this go. Default 24 h. */
  idempotencyMaxAgeMs?: number;
}

/** Rows deleted per table. */
export type PruneCounts = Record<(typeof SESSION_TABLES)[number] | 'idempotency_keys', number>;

/** Tables whose rows belong to one session and are only read while it is active. */
const SESSION_TABLES = ['report_schedules', 'report_ticks', 'report_alerts', 'report_windows', 'lag_samples'] as const;

export class StoreHousekeeping {
  readonly #db: Database;
  readonly #endedGraceMs: number;
  readonly #idempotencyMaxAgeMs: number;

  constructor(db: Database, options: HousekeepingOptions = {}) {
    this.#db = db;
    this.#endedGraceMs = options.endedGraceMs ?? 3_600_000;
    this.#idempotencyMaxAgeMs = options.idempotencyMaxAgeMs ?? 24 * 3_600_000;
  }

  async prune(now: Date): Promise<PruneCounts> {
    const endedBefore = new Date(now.getTime() - this.#endedGraceMs);
    const counts = {} as PruneCounts;
    for (const table of SESSION_TABLES) {
      const { rowCount } = await this.#db.query(
        `DELETE FROM ${table} WHERE session_id IN (
           SELECT id FROM sessions WHERE state <> ALL($1::text[]) AND updated_at < $2)`,
        [[...ACTIVE_STATES], endedBefore],
      );
      counts[table] = rowCount;
    }
    counts.idempotency_keys = await new IdempotencyStore(this.#db).prune(new Date(now.getTime() - this.#idempotencyMaxAgeMs));
    return counts;
  }
}
