/**
 * Tick claims: how several replicas sharing one store post exactly one report per session per tick.
 * Every replica computes the same tick instants (see `nextTick`), and the first to run
 *   INSERT … ON CONFLICT (session_id, purpose) DO UPDATE … WHERE report_ticks.last_tick < excluded.last_tick
 * gets the row back; the others get nothing (the row already holds that tick). This is graphile-worker's
 * cron tick claiming. A claim carries a lease: if the claimer dies before `complete`, another replica
 * may take the same tick over once the lease has run out (`retake`), a bounded number of times. The
 * next tick never waits for an unfinished claim: it is a newer instant and claims as usual.
 */
import type { ReportTicks, TickClaim, TickPurpose, TickRow } from '../../reports/ports.js';
import type { Database } from './database.js';

export type { TickClaim, TickPurpose, TickRow } from '../../reports/ports.js';

interface Row {
  session_id: string;
  purpose: TickPurpose;
  last_tick: Date | string;
  claimed_by: string;
  claimed_at: Date | string;
  lease_until: Date | string;
  done_at: Date | string | null;
  attempts: number;
}

const toTickRow = (r: Row): TickRow => ({
  sessionId: r.session_id,
  purpose: r.purpose,
  lastTick: new Date(r.last_tick),
  claimedBy: r.claimed_by,
  claimedAt: new Date(r.claimed_at),
  leaseUntil: new Date(r.lease_until),
  doneAt: r.done_at === null ? null : new Date(r.done_at),
  attempts: r.attempts,
});

export class ReportTickStore implements ReportTicks {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  /** Claims `tick` for `replica`, or returns undefined when another replica already has it (or a newer one). */
  async claim(
    sessionId: string,
    purpose: TickPurpose,
    tick: Date,
    replica: string,
    now: Date,
    leaseMs: number,
  ): Promise<TickClaim | undefined> {
    const { rows } = await this.db.query<Row>(
      `INSERT INTO report_ticks (session_id, purpose, last_tick, claimed_by, claimed_at, lease_until, done_at, attempts)
       VALUES ($1, $2, $3, $4, $5, $6, NULL, 1)
       ON CONFLICT (session_id, purpose) DO UPDATE SET
         last_tick = excluded.last_tick,
         claimed_by = excluded.claimed_by,
         claimed_at = excluded.claimed_at,
         lease_until = excluded.lease_until,
         done_at = NULL,
         attempts = 1
       WHERE report_ticks.last_tick < excluded.last_tick
       RETURNING *`,
      [sessionId, purpose, tick, replica, now, new Date(now.getTime() + leaseMs)],
    );
    const row = rows[0];
    return row ? { sessionId, purpose, tick: new Date(row.last_tick), attempts: row.attempts } : undefined;
  }

  /**
   * Takes over the newest tick when its claim is unfinished and its lease has run out (the claimer
   * died or hung), at most `maxAttempts` times in all.
   */
  async retake(
    sessionId: string,
    purpose: TickPurpose,
    replica: string,
    now: Date,
    leaseMs: number,
    maxAttempts: number,
  ): Promise<TickClaim | undefined> {
    const { rows } = await this.db.query<Row>(
      `UPDATE report_ticks SET claimed_by = $3, claimed_at = $4, lease_until = $5, attempts = attempts + 1
        WHERE session_id = $1 AND purpose = $2 AND done_at IS NULL AND lease_until < $4 AND attempts < $6
       RETURNING *`,
      [sessionId, purpose, replica, now, new Date(now.getTime() + leaseMs), maxAttempts],
    );
    const row = rows[0];
    return row ? { sessionId, purpose, tick: new Date(row.last_tick), attempts: row.attempts } : undefined;
  }

  /** Marks the claimed tick's work done; false when the claim was taken over meanwhile. */
  async complete(claim: TickClaim, replica: string, now: Date): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE report_ticks SET done_at = $5
        WHERE session_id = $1 AND purpose = $2 AND last_tick = $3 AND claimed_by = $4 AND done_at IS NULL`,
      [claim.sessionId, claim.purpose, claim.tick, replica, now],
    );
    return rowCount > 0;
  }

  async get(sessionId: string, purpose: TickPurpose): Promise<TickRow | undefined> {
    const { rows } = await this.db.query<Row>('SELECT * FROM report_ticks WHERE session_id = $1 AND purpose = $2', [
      sessionId,
      purpose,
    ]);
    return rows[0] ? toTickRow(rows[0]) : undefined;
  }

  /** The newest claimed tick of these sessions for one purpose (one query for a scheduler pass). */
  async lastTicks(purpose: TickPurpose, sessionIds: readonly string[]): Promise<Map<string, TickRow>> {
    const { rows } = await this.db.query<Row>('SELECT * FROM report_ticks WHERE purpose = $1 AND session_id = ANY($2::uuid[])', [
      purpose,
      sessionIds,
    ]);
    return new Map(rows.map((r) => [r.session_id, toTickRow(r)]));
  }
}
