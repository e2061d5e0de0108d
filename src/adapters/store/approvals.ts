/**
 * Gate requests and approvals (freeze, switch), idempotency keys for Slack commands and clicks, and the
 * per-session report schedule. Every write takes the clock as an argument (`now`), so expiry is tested
 * with a fake clock and never by sleeping.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ApprovalBinding } from '../../domain/freeze-prediction.js';
import type { Gate, GateRequest, GateRequestStatus } from '../../domain/gates.js';
import type { ApprovalRepository, IdempotencyKeys, NewGateRequest, ReportSchedules } from '../../domain/ports/stores.js';
import type { ReportSchedule } from '../../domain/report-schedule.js';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Database, SqlClient } from './database.js';
import { ReportStateStore } from './report-state.js';

interface GateRequestRow {
  id: string;
  session_id: string;
  gate: Gate;
  status: GateRequestStatus;
  requested_by: string;
  requested_at: Date | string;
  request_expires_at: Date | string;
  approved_by: string | null;
  approved_at: Date | string | null;
  approval_expires_at: Date | string | null;
  closed_at: Date | string | null;
  binding?: unknown;
}

/** The binding as stored (JSON read back is checked; a row from before it existed has none). */
const bindingSchema = z.looseObject({
  planHash: z.string(),
  lagBytes: z.number().nullable(),
  sourceLsn: z.string().nullable(),
  predictedFreezeMs: z.number().nullable(),
  replicatesBack: z.boolean().optional(),
  unknown: z.string().optional(),
});
const parseBinding = (value: unknown): ApprovalBinding | null => {
  const parsed = bindingSchema.safeParse(value);
  return parsed.success ? parsed.data : null;
};

const date = (v: Date | string | null): Date | null => (v === null ? null : new Date(v));
const jsonOrNull = (value: unknown) => (value == null ? null : JSON.stringify(value));

const toRequest = (row: GateRequestRow): GateRequest => ({
  id: row.id,
  sessionId: row.session_id,
  gate: row.gate,
  status: row.status,
  requestedBy: row.requested_by,
  requestedAt: new Date(row.requested_at),
  requestExpiresAt: new Date(row.request_expires_at),
  approvedBy: row.approved_by,
  approvedAt: date(row.approved_at),
  approvalExpiresAt: date(row.approval_expires_at),
  closedAt: date(row.closed_at),
  binding: parseBinding(row.binding),
});

const minutes = (now: Date, n: number) => new Date(now.getTime() + n * 60_000);

export class ApprovalStore implements ApprovalRepository {
  private readonly db: SqlClient;

  /** On the store, or on a transaction (a gate step). */
  constructor(db: SqlClient) {
    this.db = db;
  }

  /** The open (pending or approved) request per gate; expired ones included, the domain judges expiry. */
  async open(sessionId: string): Promise<Partial<Record<Gate, GateRequest>>> {
    const { rows } = await this.db.query<GateRequestRow>(
      `SELECT * FROM gate_requests WHERE session_id = $1 AND status IN ('pending', 'approved')`,
      [sessionId],
    );
    const result: Partial<Record<Gate, GateRequest>> = {};
    for (const row of rows) result[row.gate] = toRequest(row);
    return result;
  }

  /**
   * Records a request. Open requests of the same gate that have expired by `now` are closed first;
   * a still-valid open one makes this fail (the unique index), as a GateRefused error.
   */
  async request(input: NewGateRequest): Promise<GateRequest> {
    await this.expireStale(input.sessionId, input.gate, input.now);
    try {
      const { rows } = await this.db.query<GateRequestRow>(
        `INSERT INTO gate_requests (id, session_id, gate, status, requested_by, requested_at, request_expires_at, binding)
         VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7) RETURNING *`,
        [randomUUID(), input.sessionId, input.gate, input.requestedBy, input.now, minutes(input.now, input.expiryMinutes), jsonOrNull(input.binding)],
      );
      return toRequest(rows[0] as GateRequestRow);
    } catch (error) {
      if ((error as { code?: string }).code === '23505') {
        throw new CodedError(ErrorCode.GateRefused, `A ${input.gate} request is already open for this session.`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  /** Approves a pending, unexpired request; fails if someone else approved or closed it first. */
  async approve(
    requestId: string,
    input: { approvedBy: string; now: Date; expiryMinutes: number; binding?: ApprovalBinding | null },
  ): Promise<GateRequest> {
    // The approval's own binding replaces the request's: it is what the approver saw.
    const { rows } = await this.db.query<GateRequestRow>(
      `UPDATE gate_requests SET status = 'approved', approved_by = $2, approved_at = $3, approval_expires_at = $4, binding = coalesce($5, binding)
       WHERE id = $1 AND status = 'pending' AND request_expires_at > $3 RETURNING *`,
      [requestId, input.approvedBy, input.now, minutes(input.now, input.expiryMinutes), jsonOrNull(input.binding)],
    );
    const row = rows[0];
    if (!row) {
      throw new CodedError(ErrorCode.GateRefused, 'That request is no longer pending (approved, withdrawn or expired).');
    }
    return toRequest(row);
  }

  /** Closes an open request: executed, withdrawn, failed or expired. */
  async close(
    requestId: string,
    status: Exclude<GateRequestStatus, 'pending' | 'approved'>,
    now: Date,
  ): Promise<GateRequest | undefined> {
    const { rows } = await this.db.query<GateRequestRow>(
      `UPDATE gate_requests SET status = $2, closed_at = $3
       WHERE id = $1 AND status IN ('pending', 'approved') RETURNING *`,
      [requestId, status, now],
    );
    return rows[0] ? toRequest(rows[0]) : undefined;
  }

  /**
   * The query for the cutover engine: a valid (approved, not expired at `now`) approval of `gate` for
   * the session, or undefined. For "approve the switch now, run it when the fence is reached".
   */
  async validApproval(sessionId: string, gate: Gate, now: Date): Promise<GateRequest | undefined> {
    const { rows } = await this.db.query<GateRequestRow>(
      `SELECT * FROM gate_requests
       WHERE session_id = $1 AND gate = $2 AND status = 'approved' AND approval_expires_at > $3`,
      [sessionId, gate, now],
    );
    return rows[0] ? toRequest(rows[0]) : undefined;
  }

  /** The most recent request of a gate in any status (e.g. when the freeze was executed). */
  async latest(sessionId: string, gate: Gate): Promise<GateRequest | undefined> {
    const { rows } = await this.db.query<GateRequestRow>(
      `SELECT * FROM gate_requests WHERE session_id = $1 AND gate = $2 ORDER BY requested_at DESC, id LIMIT 1`,
      [sessionId, gate],
    );
    return rows[0] ? toRequest(rows[0]) : undefined;
  }

  async forSession(sessionId: string): Promise<GateRequest[]> {
    const { rows } = await this.db.query<GateRequestRow>(
      'SELECT * FROM gate_requests WHERE session_id = $1 ORDER BY requested_at, id',
      [sessionId],
    );
    return rows.map(toRequest);
  }

  private async expireStale(sessionId: string, gate: Gate, now: Date): Promise<void> {
    await this.db.query(
      `UPDATE gate_requests SET status = 'expired', closed_at = $3
       WHERE session_id = $1 AND gate = $2
         AND ((status = 'pending' AND request_expires_at <= $3) OR (status = 'approved' AND approval_expires_at <= $3))`,
      [sessionId, gate, now],
    );
  }
}

/** Keys that make Slack retries, double clicks and concurrent replicas act once. */
export class IdempotencyStore implements IdempotencyKeys {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  /**
   * Claims `key` at `now`. Returns false when it is already claimed (and, with `windowMs`, the claim
   * is younger than the window). Without a window a key is claimed once for ever.
   */
  async claim(key: string, now: Date, windowMs?: number): Promise<boolean> {
    const reclaimBefore = windowMs === undefined ? new Date(0) : new Date(now.getTime() - windowMs);
    const { rows } = await this.db.query<{ key: string }>(
      `INSERT INTO idempotency_keys (key, claimed_at) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET claimed_at = EXCLUDED.claimed_at
         WHERE idempotency_keys.claimed_at < $3
       RETURNING key`,
      [key, now, reclaimBefore],
    );
    return rows.length === 1;
  }

  async exists(key: string): Promise<boolean> {
    const { rows } = await this.db.query('SELECT 1 FROM idempotency_keys WHERE key = $1', [key]);
    return rows.length > 0;
  }

  /** Gives a key back (the work failed before changing anything, so a retry is legitimate). */
  async release(key: string): Promise<void> {
    await this.db.query('DELETE FROM idempotency_keys WHERE key = $1', [key]);
  }

  async prune(olderThan: Date): Promise<number> {
    const { rowCount } = await this.db.query('DELETE FROM idempotency_keys WHERE claimed_at < $1', [olderThan]);
    return rowCount;
  }
}

/**
 * The per-session report schedule set with `/migrate report …`, kept where the reporter reads it
 * (report_schedules, through ReportStateStore).
 */
export class ReportScheduleStore implements ReportSchedules {
  private readonly state: ReportStateStore;

  constructor(db: Database) {
    this.state = new ReportStateStore(db);
  }

  async set(sessionId: string, schedule: ReportSchedule, setBy: string, at: Date): Promise<void> {
    await this.state.setSchedule(sessionId, schedule, setBy, at);
  }

  /** The schedule's text, or null when the profile's default applies. */
  async get(sessionId: string): Promise<string | null> {
    return (await this.state.schedule(sessionId))?.schedule.text ?? null;
  }
}
