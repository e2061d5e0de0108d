import { randomUUID } from 'node:crypto';
import type { ApprovalRepository, NewSession, SessionPatch, SessionRepository } from '../../domain/ports/stores.js';
import { ACTIVE_STATES, transition, type Session, type SessionEvent, type SessionState, type Strategy } from '../../domain/session.js';
import { CodedError, ErrorCode } from '../../errors.js';
import { ApprovalStore } from './approvals.js';
import type { Database, SqlClient } from './database.js';

/** SQLSTATE 23505: the partial unique index refused a second active session in the channel. */
const UNIQUE_VIOLATION = '23505';

interface SessionRow {
  id: string;
  channel_id: string;
  profile: string;
  strategy: Strategy;
  state: SessionState;
  version: number;
  do_migration_id: string | null;
  started_by: string;
  status_message_ts: string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

const toSession = (row: SessionRow): Session => ({
  id: row.id,
  channelId: row.channel_id,
  profile: row.profile,
  strategy: row.strategy,
  state: row.state,
  version: row.version,
  doMigrationId: row.do_migration_id,
  startedBy: row.started_by,
  statusMessageTs: row.status_message_ts,
  createdAt: new Date(row.created_at),
  updatedAt: new Date(row.updated_at),
});

export type { NewSession, SessionPatch } from '../../domain/ports/stores.js';

export class SessionStore implements SessionRepository {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  async create(input: NewSession): Promise<Session> {
    try {
      const { rows } = await this.db.query<SessionRow>(
        `INSERT INTO sessions (id, channel_id, profile, strategy, state, started_by)
         VALUES ($1, $2, $3, $4, 'created', $5) RETURNING *`,
        [randomUUID(), input.channelId, input.profile, input.strategy, input.startedBy],
      );
      return toSession(firstRow(rows));
    } catch (error) {
      if ((error as { code?: string }).code === UNIQUE_VIOLATION) {
        throw new CodedError(
          ErrorCode.SessionAlreadyActive,
          'This channel already has an active migration session: see `/migrate status`, or finish or abort it first.',
          { cause: error, details: { channelId: input.channelId } },
        );
      }
      throw error;
    }
  }

  async get(id: string, client: SqlClient = this.db): Promise<Session | undefined> {
    const { rows } = await client.query<SessionRow>('SELECT * FROM sessions WHERE id = $1', [id]);
    return rows[0] ? toSession(rows[0]) : undefined;
  }

  async require(id: string): Promise<Session> {
    const session = await this.get(id);
    if (!session) throw new CodedError(ErrorCode.SessionNotFound, 'That migration session no longer exists.');
    return session;
  }

  async activeInChannel(channelId: string): Promise<Session | undefined> {
    const { rows } = await this.db.query<SessionRow>(
      'SELECT * FROM sessions WHERE channel_id = $1 AND state = ANY($2::text[])',
      [channelId, [...ACTIVE_STATES]],
    );
    return rows[0] ? toSession(rows[0]) : undefined;
  }

  async listActive(): Promise<Session[]> {
    const { rows } = await this.db.query<SessionRow>(
      'SELECT * FROM sessions WHERE state = ANY($1::text[]) ORDER BY created_at',
      [[...ACTIVE_STATES]],
    );
    return rows.map(toSession);
  }

  async listForChannel(channelId: string, limit = 20): Promise<Session[]> {
    const { rows } = await this.db.query<SessionRow>(
      'SELECT * FROM sessions WHERE channel_id = $1 ORDER BY created_at DESC LIMIT $2',
      [channelId, limit],
    );
    return rows.map(toSession);
  }

  /**
   * Applies `event` to the session if it is still at `expectedVersion`: a compare-and-set, so of two
   * replicas or two clicks based on the same version exactly one wins; the other gets SessionConflict.
   */
  async transition(
    id: string,
    expectedVersion: number,
    event: SessionEvent,
    patch: SessionPatch = {},
    client: SqlClient = this.db,
  ): Promise<Session> {
    const current = await this.get(id, client);
    if (!current) throw new CodedError(ErrorCode.SessionNotFound, 'That migration session no longer exists.');
    if (current.version !== expectedVersion) throw conflict(current, expectedVersion);
    const result = transition(current.state, event);
    if (!result.ok) {
      throw new CodedError(ErrorCode.InvalidTransition, `Cannot ${event.replace('_', ' ')}: ${result.reason}.`, {
        details: { from: current.state, event },
      });
    }
    const updated = await this.compareAndSet(id, expectedVersion, { state: result.to, ...patch }, client);
    if (!updated) throw conflict(current, expectedVersion);
    return updated;
  }

  /** Bumps the version and changes gate requests in one transaction (compare-and-set on `expectedVersion`). */
  async gateStep<T>(
    id: string,
    expectedVersion: number,
    work: (approvals: ApprovalRepository) => Promise<T>,
  ): Promise<{ session: Session; result: T }> {
    return this.db.transaction(async (tx) => {
      const session = await this.compareAndSet(id, expectedVersion, {}, tx);
      if (!session) {
        const current = await this.get(id, tx);
        if (!current) throw new CodedError(ErrorCode.SessionNotFound, 'That migration session no longer exists.');
        throw conflict(current, expectedVersion);
      }
      return { session, result: await work(new ApprovalStore(tx)) };
    });
  }

  /** Records the status message's ts without a version step: posting the message invalidates no button. */
  async setStatusMessage(id: string, ts: string): Promise<Session> {
    const { rows } = await this.db.query<SessionRow>('UPDATE sessions SET status_message_ts = $2 WHERE id = $1 RETURNING *', [id, ts]);
    if (!rows[0]) throw new CodedError(ErrorCode.SessionNotFound, 'That migration session no longer exists.');
    return toSession(rows[0]);
  }

  async discard(id: string): Promise<void> {
    await this.db.query(
      `DELETE FROM sessions WHERE id = $1 AND state = 'created' AND status_message_ts IS NULL AND do_migration_id IS NULL`,
      [id],
    );
  }

  private async compareAndSet(
    id: string,
    expectedVersion: number,
    changes: SessionPatch & { state?: SessionState },
    client: SqlClient,
  ): Promise<Session | undefined> {
    const { rows } = await client.query<SessionRow>(
      `UPDATE sessions SET
         state = COALESCE($3, state),
         do_migration_id = CASE WHEN $4 THEN $5 ELSE do_migration_id END,
         version = version + 1,
         updated_at = now()
       WHERE id = $1 AND version = $2
       RETURNING *`,
      [
        id,
        expectedVersion,
        changes.state ?? null,
        'doMigrationId' in changes,
        changes.doMigrationId ?? null,
      ],
    );
    return rows[0] ? toSession(rows[0]) : undefined;
  }
}

function conflict(current: Session, expectedVersion: number): CodedError {
  return new CodedError(
    ErrorCode.SessionConflict,
    'Someone else changed this session a moment ago; look at the updated status message and try again.',
    { details: { sessionId: current.id, expectedVersion, actualVersion: current.version } },
  );
}

function firstRow<Row>(rows: Row[]): Row {
  const row = rows[0];
  if (row === undefined) throw new CodedError(ErrorCode.Internal, 'The store returned no row for an insert.');
  return row;
}
