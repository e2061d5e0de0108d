import type { AuditLog as AuditLogPort, AuditOutcome, AuditRecord } from '../../domain/ports/stores.js';
import type { Database } from './database.js';

export type { AuditEntry, AuditOutcome, AuditRecord } from '../../domain/ports/stores.js';

interface AuditRow {
  id: string | number;
  session_id: string | null;
  channel_id: string;
  actor: string;
  action: string;
  outcome: AuditOutcome;
  details: Record<string, unknown>;
  at: Date | string;
}

const toRecord = (row: AuditRow): AuditRecord => ({
  id: Number(row.id),
  sessionId: row.session_id,
  channelId: row.channel_id,
  actor: row.actor,
  action: row.action,
  outcome: row.outcome,
  details: row.details,
  at: new Date(row.at),
});

/** Append-only (a trigger refuses UPDATE and DELETE): the record of who did what, when, with what result. */
export class AuditLog implements AuditLogPort {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  async append(entry: Parameters<AuditLogPort['append']>[0]): Promise<AuditRecord> {
    const { rows } = await this.db.query<AuditRow>(
      `INSERT INTO audit_log (session_id, channel_id, actor, action, outcome, details)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
      [entry.sessionId, entry.channelId, entry.actor, entry.action, entry.outcome, JSON.stringify(entry.details ?? {})],
    );
    return toRecord(rows[0] as AuditRow);
  }

  async forSession(sessionId: string, limit = 100): Promise<AuditRecord[]> {
    const { rows } = await this.db.query<AuditRow>(
      'SELECT * FROM audit_log WHERE session_id = $1 ORDER BY id LIMIT $2',
      [sessionId, limit],
    );
    return rows.map(toRecord);
  }

  async forChannel(channelId: string, limit = 50): Promise<AuditRecord[]> {
    const { rows } = await this.db.query<AuditRow>(
      'SELECT * FROM (SELECT * FROM audit_log WHERE channel_id = $1 ORDER BY id DESC LIMIT $2) recent ORDER BY id',
      [channelId, limit],
    );
    return rows.map(toRecord);
  }
}
