/**
 * What the report scheduler keeps per session besides tick claims: the schedule set with
 * `/migrate report …`, the alert episodes, the recent observations (a bounded ring) that the
 * report's trend and sparkline are drawn from, the schema differences already announced, and the
 * rollback window of a session that replicates back.
 */
import type { ReportState, StoredSchedule } from '../../reports/ports.js';
import { z } from 'zod';
import { ALERT_KINDS, initialAlertState, type AlertKind, type AlertState } from '../../domain/alerts.js';
import type { Observation } from '../../domain/report.js';
import { parseReportSchedule, type ReportSchedule } from '../../domain/report-schedule.js';
import type { RollbackWindowState } from '../../domain/rollback-window.js';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Database, SqlClient } from './database.js';

export type { StoredSchedule } from '../../reports/ports.js';

const databaseLagSchema = z.union([
  z.object({ database: z.string(), known: z.literal(true), bytes: z.number(), seconds: z.number().nullable() }),
  z.object({ database: z.string(), known: z.literal(false), reason: z.string() }),
]);
const observationSchema = z.union([
  z.object({
    at: z.coerce.date(),
    known: z.literal(true),
    bytes: z.number(),
    seconds: z.number().nullable(),
    slot: z.string(),
    slotActive: z.boolean(),
    walPosition: z.number().nullable(),
    databases: z.array(databaseLagSchema).optional(),
  }),
  z.object({
    at: z.coerce.date(),
    known: z.literal(false),
    reason: z.string(),
    walPosition: z.number().nullable(),
    databases: z.array(databaseLagSchema).optional(),
  }),
]);
const observationsSchema = z.array(observationSchema);
const announcedDriftSchema = z.array(z.string());
const rollbackWindowSchema = z.object({
  attempt: z.number().int(),
  endsAt: z.coerce.date(),
  walOverBudget: z.boolean(),
  notStreaming: z.object({ streak: z.number().int().min(0), announced: z.boolean() }),
  reading: z.object({ at: z.coerce.date(), slot: z.boolean(), streaming: z.boolean(), retainedWalBytes: z.number().nullable() }).nullable(),
  endedAt: z.coerce.date().nullable(),
}) satisfies z.ZodType<RollbackWindowState>;

interface ScheduleRow {
  session_id: string;
  schedule: string;
  set_by: string;
  set_at: Date | string;
}

function toStoredSchedule(row: ScheduleRow): StoredSchedule {
  const parsed = parseReportSchedule(row.schedule);
  // Stored text was parsed when it was set; a row that no longer parses is a bug, not a user error.
  if (!parsed.ok) throw new CodedError(ErrorCode.Internal, `Stored report schedule "${row.schedule}" no longer parses.`);
  return { sessionId: row.session_id, schedule: parsed.schedule, setBy: row.set_by, setAt: new Date(row.set_at) };
}

/** How many observations a session keeps (a day of one-minute samples would be 1440; a trend needs far fewer). */
export const OBSERVATION_RING = 120;

export class ReportStateStore implements ReportState {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  // ---- schedules ----

  async setSchedule(sessionId: string, schedule: ReportSchedule, setBy: string, at: Date): Promise<StoredSchedule> {
    await this.db.query(
      `INSERT INTO report_schedules (session_id, schedule, set_by, set_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (session_id) DO UPDATE SET schedule = excluded.schedule, set_by = excluded.set_by, set_at = excluded.set_at`,
      [sessionId, schedule.text, setBy, at],
    );
    return { sessionId, schedule, setBy, setAt: at };
  }

  /** The stored schedules of these sessions (the scheduler's pass: active sessions only, one query). */
  async schedules(sessionIds: readonly string[]): Promise<Map<string, StoredSchedule>> {
    const { rows } = await this.db.query<ScheduleRow>('SELECT * FROM report_schedules WHERE session_id = ANY($1::uuid[])', [
      sessionIds,
    ]);
    return new Map(rows.map((row) => [row.session_id, toStoredSchedule(row)]));
  }

  async schedule(sessionId: string): Promise<StoredSchedule | undefined> {
    const { rows } = await this.db.query<ScheduleRow>('SELECT * FROM report_schedules WHERE session_id = $1', [sessionId]);
    return rows[0] ? toStoredSchedule(rows[0]) : undefined;
  }

  // ---- alert episodes ----

  /**
   * Reads the alert states of a session under a row lock, lets `decide` compute the next ones, writes
   * them, and returns what `decide` returned, all in one transaction: two replicas applying
   * observations of the same session serialise here.
   */
  async updateAlerts<T extends { states: AlertState[] }>(
    sessionId: string,
    decide: (previous: AlertState[]) => T,
  ): Promise<T> {
    return this.db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO report_alerts (session_id, kind) SELECT $1, k FROM unnest($2::text[]) AS k ON CONFLICT DO NOTHING`,
        [sessionId, [...ALERT_KINDS]],
      );
      const previous = await this.readAlerts(sessionId, tx, true);
      const result = decide(previous);
      for (const s of result.states) {
        await tx.query(
          `UPDATE report_alerts SET active = $3, streak = $4, since = $5, last_at = $6 WHERE session_id = $1 AND kind = $2`,
          [sessionId, s.kind, s.active, s.streak, s.since, s.lastAt],
        );
      }
      return result;
    });
  }

  async alerts(sessionId: string): Promise<AlertState[]> {
    return this.readAlerts(sessionId, this.db, false);
  }

  private async readAlerts(sessionId: string, client: SqlClient, forUpdate: boolean): Promise<AlertState[]> {
    const { rows } = await client.query<{
      kind: AlertKind;
      active: boolean;
      streak: number;
      since: Date | string | null;
      last_at: Date | string | null;
    }>(`SELECT kind, active, streak, since, last_at FROM report_alerts WHERE session_id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [
      sessionId,
    ]);
    const byKind = new Map(rows.map((r) => [r.kind, r]));
    return ALERT_KINDS.map((kind) => {
      const r = byKind.get(kind);
      if (!r) return initialAlertState(kind);
      return {
        kind,
        active: r.active,
        streak: r.streak,
        since: r.since === null ? null : new Date(r.since),
        lastAt: r.last_at === null ? null : new Date(r.last_at),
      };
    });
  }

  // ---- observations ----

  /** Appends an observation to the session's ring (kept in time order, newest last, at most OBSERVATION_RING). */
  async appendObservation(sessionId: string, observation: Observation): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(`INSERT INTO report_windows (session_id) VALUES ($1) ON CONFLICT DO NOTHING`, [sessionId]);
      const { rows } = await tx.query<{ observations: unknown }>(
        'SELECT observations FROM report_windows WHERE session_id = $1 FOR UPDATE',
        [sessionId],
      );
      const ring = parseObservations(rows[0]?.observations);
      ring.push(observation);
      ring.sort((a, b) => a.at.getTime() - b.at.getTime());
      const kept = ring.slice(Math.max(0, ring.length - OBSERVATION_RING));
      await tx.query('UPDATE report_windows SET observations = $2::jsonb WHERE session_id = $1', [
        sessionId,
        JSON.stringify(kept),
      ]);
    });
  }

  /** The observations and when the previous report went out. */
  async window(sessionId: string): Promise<{ observations: Observation[]; lastReportAt: Date | null }> {
    const { rows } = await this.db.query<{ observations: unknown; last_report_at: Date | string | null }>(
      'SELECT observations, last_report_at FROM report_windows WHERE session_id = $1',
      [sessionId],
    );
    const row = rows[0];
    if (!row) return { observations: [], lastReportAt: null };
    return {
      observations: parseObservations(row.observations),
      lastReportAt: row.last_report_at === null ? null : new Date(row.last_report_at),
    };
  }

  async markReported(sessionId: string, at: Date): Promise<void> {
    await this.db.query(
      `INSERT INTO report_windows (session_id, last_report_at) VALUES ($1, $2)
       ON CONFLICT (session_id) DO UPDATE SET last_report_at = GREATEST(report_windows.last_report_at, excluded.last_report_at)`,
      [sessionId, at],
    );
  }

  // ---- schema drift ----

  /** Reads the announced differences under a row lock, lets `decide` compute the next ones, writes them: one transaction. */
  async updateSchemaDrift<T extends { announced: string[] }>(sessionId: string, decide: (announced: string[]) => T): Promise<T> {
    return this.db.transaction(async (tx) => {
      await tx.query(`INSERT INTO report_windows (session_id) VALUES ($1) ON CONFLICT DO NOTHING`, [sessionId]);
      const { rows } = await tx.query<{ schema_drift: unknown }>('SELECT schema_drift FROM report_windows WHERE session_id = $1 FOR UPDATE', [
        sessionId,
      ]);
      const result = decide(parseStored(rows[0]?.schema_drift, announcedDriftSchema, 'schema differences'));
      await tx.query('UPDATE report_windows SET schema_drift = $2::jsonb WHERE session_id = $1', [sessionId, JSON.stringify(result.announced)]);
      return result;
    });
  }

  // ---- rollback window ----

  async rollbackWindow(sessionId: string): Promise<RollbackWindowState | undefined> {
    const { rows } = await this.db.query<{ rollback_window: unknown }>('SELECT rollback_window FROM report_windows WHERE session_id = $1', [sessionId]);
    return parseRollbackWindow(rows[0]?.rollback_window);
  }

  /** Reads the session's rollback window under a row lock, lets `decide` compute the next one, writes it: one transaction. */
  async updateRollbackWindow<T extends { state: RollbackWindowState }>(sessionId: string, decide: (previous: RollbackWindowState | undefined) => T): Promise<T> {
    return this.db.transaction(async (tx) => {
      await tx.query(`INSERT INTO report_windows (session_id) VALUES ($1) ON CONFLICT DO NOTHING`, [sessionId]);
      const { rows } = await tx.query<{ rollback_window: unknown }>('SELECT rollback_window FROM report_windows WHERE session_id = $1 FOR UPDATE', [
        sessionId,
      ]);
      const result = decide(parseRollbackWindow(rows[0]?.rollback_window));
      await tx.query('UPDATE report_windows SET rollback_window = $2::jsonb WHERE session_id = $1', [sessionId, JSON.stringify(result.state)]);
      return result;
    });
  }
}

function parseRollbackWindow(raw: unknown): RollbackWindowState | undefined {
  return raw === null || raw === undefined ? undefined : parseStored(raw, rollbackWindowSchema, 'rollback window');
}

function parseObservations(raw: unknown): Observation[] {
  return parseStored(raw, observationsSchema, 'report observations');
}

/** A jsonb value as the driver hands it (parsed, or as text), validated. */
function parseStored<T>(raw: unknown, schema: z.ZodType<T>, what: string): T {
  const value = typeof raw === 'string' ? (JSON.parse(raw) as unknown) : (raw ?? []);
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new CodedError(ErrorCode.Internal, `Stored ${what} are malformed: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}
