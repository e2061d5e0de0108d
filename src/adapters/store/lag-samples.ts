import type { LagSampleHistory } from '../../reports/ports.js';
import type { LagSample } from '../../domain/ports/replication.js';
import type { Database } from './database.js';

interface LagRow {
  at: Date | string;
  known: boolean;
  slot: string | null;
  slot_active: boolean | null;
  bytes: string | number | null;
  seconds: number | null;
  reason: string | null;
}

const toSample = (row: LagRow): LagSample =>
  row.known
    ? {
        known: true,
        at: new Date(row.at),
        slot: row.slot ?? '',
        slotActive: row.slot_active ?? false,
        bytes: Number(row.bytes),
        seconds: row.seconds === null ? null : Number(row.seconds),
      }
    : { known: false, at: new Date(row.at), reason: row.reason ?? 'unknown' };

/** Lag samples kept per session, so reports can show the direction and an ETA (src/domain/lag-trend.ts). */
export class LagSampleStore implements LagSampleHistory {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  async record(sessionId: string, sample: LagSample): Promise<void> {
    await this.db.query(
      `INSERT INTO lag_samples (session_id, at, known, slot, slot_active, bytes, seconds, reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      sample.known
        ? [sessionId, sample.at, true, sample.slot, sample.slotActive, sample.bytes, sample.seconds, null]
        : [sessionId, sample.at, false, null, null, null, null, sample.reason],
    );
  }

  /** The `limit` most recent samples of the session, oldest first. */
  async recent(sessionId: string, limit = 60): Promise<LagSample[]> {
    const { rows } = await this.db.query<LagRow>(
      `SELECT * FROM (
         SELECT id, at, known, slot, slot_active, bytes, seconds, reason FROM lag_samples
          WHERE session_id = $1 ORDER BY at DESC, id DESC LIMIT $2
       ) recent ORDER BY at, id`,
      [sessionId, limit],
    );
    return rows.map(toSample);
  }

  /** Drops the session's samples older than `before` (reports only need a recent window). */
  async pruneBefore(sessionId: string, before: Date): Promise<number> {
    const { rowCount } = await this.db.query('DELETE FROM lag_samples WHERE session_id = $1 AND at < $2', [sessionId, before]);
    return rowCount;
  }
}
