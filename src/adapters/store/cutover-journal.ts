/**
 * The cutover journal in the store: attempts (with what recovery and the summary need: what was frozen
 * and when, lag at freeze, the fence, writes held, approvals) and their step events, append-only.
 */
import {
  ATTEMPT_KINDS,
  CUTOVER_STEPS,
  JOURNAL_EVENTS,
  type AttemptKind,
  type CutoverStep,
  type JournalEntry,
  type JournalEvent,
} from '../../domain/cutover-plan.js';
import { CodedError, ErrorCode } from '../../errors.js';
import { z } from 'zod';
import type { ApprovalsSummary, AttemptPatch, AttemptRecord, FrozenWhat, LagAtFreeze, Verification } from '../../domain/attempt.js';
import type { JournalRepository, StepEvent } from '../../domain/ports/stores.js';
import type { Database } from './database.js';

export type { AttemptPatch, AttemptRecord } from '../../domain/attempt.js';

interface AttemptRow {
  session_id: string;
  attempt: number;
  kind: AttemptKind;
  started_by: string;
  started_at: Date | string;
  frozen_what: FrozenWhat | null;
  frozen_at: Date | string | null;
  freeze_budget_seconds: number | null;
  lag_at_freeze: LagAtFreeze | null;
  fence: AttemptRecord['fence'];
  sequences_copied: number | null;
  switched_at: Date | string | null;
  resumed_at: Date | string | null;
  resumed_on: 'source' | 'target' | null;
  writes_held: number | null;
  predicted_freeze_ms?: number | null;
  verification?: unknown;
  approvals: ApprovalsSummary | null;
  freeze_record?: unknown;
  outcome: string | null;
  ended_at: Date | string | null;
}

interface EntryRow {
  session_id: string;
  attempt: number;
  kind: string;
  step: string;
  event: string;
  at: Date | string;
  detail: Record<string, unknown>;
}

const date = (value: Date | string | null): Date | null => (value === null ? null : new Date(value));

/** JSON read back from the store is checked; a row from before the column existed has none. */
const verificationSchema = z.looseObject({
  outcome: z.enum(['same', 'different', 'not_run']),
  tables: z.number(),
  differing: z.array(z.looseObject({ table: z.string(), reasons: z.array(z.looseObject({ kind: z.string() })) })),
  reason: z.string().optional(),
  acknowledgedBy: z.string().optional(),
});
const parseVerification = (value: unknown): Verification | null => {
  const parsed = verificationSchema.safeParse(value);
  // The reasons' kinds are checked as strings; their wording tolerates a kind it does not know.
  return parsed.success ? (parsed.data as Verification) : null;
};

const toAttempt = (row: AttemptRow): AttemptRecord => ({
  sessionId: row.session_id,
  attempt: row.attempt,
  kind: row.kind,
  startedBy: row.started_by,
  startedAt: new Date(row.started_at),
  frozenWhat: row.frozen_what,
  frozenAt: date(row.frozen_at),
  freezeBudgetSeconds: row.freeze_budget_seconds === null ? null : Number(row.freeze_budget_seconds),
  lagAtFreeze: row.lag_at_freeze,
  fence: row.fence,
  sequencesCopied: row.sequences_copied,
  switchedAt: date(row.switched_at),
  resumedAt: date(row.resumed_at),
  resumedOn: row.resumed_on,
  writesHeld: row.writes_held,
  predictedFreezeMs: row.predicted_freeze_ms == null ? null : Number(row.predicted_freeze_ms),
  verification: parseVerification(row.verification),
  approvals: row.approvals,
  freezeRecord: row.freeze_record ?? null,
  outcome: row.outcome,
  endedAt: date(row.ended_at),
});

const toEntry = (row: EntryRow): JournalEntry[] =>
  isStep(row.step) && isEvent(row.event) && isKind(row.kind)
    ? [{ attempt: row.attempt, kind: row.kind, step: row.step, event: row.event, at: new Date(row.at), detail: row.detail }]
    : [];

const isStep = (s: string): s is CutoverStep => (CUTOVER_STEPS as readonly string[]).includes(s);
const isEvent = (s: string): s is JournalEvent => (JOURNAL_EVENTS as readonly string[]).includes(s);
const isKind = (s: string): s is AttemptKind => (ATTEMPT_KINDS as readonly string[]).includes(s);

/** Column for each patchable field, and whether it is stored as JSON. */
const PATCH_COLUMNS: Record<keyof AttemptPatch, [column: string, json: boolean]> = {
  frozenWhat: ['frozen_what', true],
  frozenAt: ['frozen_at', false],
  freezeBudgetSeconds: ['freeze_budget_seconds', false],
  lagAtFreeze: ['lag_at_freeze', true],
  fence: ['fence', true],
  sequencesCopied: ['sequences_copied', false],
  switchedAt: ['switched_at', false],
  resumedAt: ['resumed_at', false],
  resumedOn: ['resumed_on', false],
  writesHeld: ['writes_held', false],
  predictedFreezeMs: ['predicted_freeze_ms', false],
  verification: ['verification', true],
  approvals: ['approvals', true],
  freezeRecord: ['freeze_record', true],
  outcome: ['outcome', false],
  endedAt: ['ended_at', false],
};

/** `column = $n, …` for the patch's fields, appending their values to `params`; empty when nothing changes. */
function patchAssignments(patch: AttemptPatch, params: unknown[]): string {
  const sets: string[] = [];
  for (const [key, value] of Object.entries(patch) as [keyof AttemptPatch, unknown][]) {
    if (value === undefined) continue;
    const [column, json] = PATCH_COLUMNS[key];
    params.push(json && value !== null ? JSON.stringify(value) : value);
    sets.push(`${column} = $${params.length}`);
  }
  return sets.join(', ');
}

export class CutoverJournal implements JournalRepository {
  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  /** Opens the next attempt of the session and returns its number. */
  async begin(sessionId: string, kind: AttemptKind, startedBy: string, patch: AttemptPatch = {}): Promise<number> {
    const { rows } = await this.db.query<{ attempt: number }>(
      `INSERT INTO cutover_attempts (session_id, attempt, kind, started_by)
       SELECT $1, COALESCE(MAX(attempt), 0) + 1, $2, $3 FROM cutover_attempts WHERE session_id = $1
       RETURNING attempt`,
      [sessionId, kind, startedBy],
    );
    const attempt = rows[0]?.attempt;
    if (attempt === undefined) throw new CodedError(ErrorCode.Internal, 'The store returned no cutover attempt.');
    await this.update(sessionId, attempt, patch);
    return attempt;
  }

  /** Journals a step event; with a `patch`, the attempt's fields change in the same statement (no window between them). */
  async record(
    sessionId: string,
    attempt: number,
    step: CutoverStep,
    event: JournalEvent,
    detail: Record<string, unknown> = {},
    patch: AttemptPatch = {},
  ): Promise<void> {
    await this.recordAll(sessionId, attempt, [{ step, event, detail }], patch);
  }

  /** Several step events in order, and `patch`, in one statement. */
  async recordAll(sessionId: string, attempt: number, events: readonly StepEvent[], patch: AttemptPatch = {}): Promise<void> {
    if (events.length === 0) return this.update(sessionId, attempt, patch);
    const params: unknown[] = [sessionId, attempt];
    const rows = events.map(({ step, event, detail }) => {
      params.push(step, event, JSON.stringify(detail ?? {}));
      const n = params.length;
      return `($1, $2, $${n - 2}, $${n - 1}, $${n})`;
    });
    // One statement, ids in the order given: the journal's order is the id order.
    const insert = `INSERT INTO cutover_journal (session_id, attempt, step, event, detail) VALUES ${rows.join(', ')}`;
    const sets = patchAssignments(patch, params);
    await this.db.query(
      sets ? `WITH patched AS (UPDATE cutover_attempts SET ${sets} WHERE session_id = $1 AND attempt = $2) ${insert}` : insert,
      params,
    );
  }

  /** Every journaled event of the session, oldest first. */
  async entries(sessionId: string): Promise<JournalEntry[]> {
    const { rows } = await this.db.query<EntryRow>(
      `SELECT j.session_id, j.attempt, a.kind, j.step, j.event, j.at, j.detail
         FROM cutover_journal j JOIN cutover_attempts a USING (session_id, attempt)
        WHERE j.session_id = $1 ORDER BY j.id`,
      [sessionId],
    );
    return rows.flatMap(toEntry);
  }

  async latestAttemptEntries(sessionIds: readonly string[]): Promise<Map<string, JournalEntry[]>> {
    const { rows } = await this.db.query<EntryRow>(
      `SELECT j.session_id, j.attempt, a.kind, j.step, j.event, j.at, j.detail
         FROM cutover_journal j JOIN cutover_attempts a USING (session_id, attempt)
        WHERE (j.session_id, j.attempt) IN (
                SELECT session_id, max(attempt) FROM cutover_attempts WHERE session_id = ANY($1::uuid[]) GROUP BY session_id)
        ORDER BY j.id`,
      [[...sessionIds]],
    );
    const bySession = new Map<string, JournalEntry[]>();
    for (const row of rows) {
      const list = bySession.get(row.session_id) ?? [];
      list.push(...toEntry(row));
      bySession.set(row.session_id, list);
    }
    return bySession;
  }

  async update(sessionId: string, attempt: number, patch: AttemptPatch): Promise<void> {
    const params: unknown[] = [sessionId, attempt];
    const sets = patchAssignments(patch, params);
    if (sets) await this.db.query(`UPDATE cutover_attempts SET ${sets} WHERE session_id = $1 AND attempt = $2`, params);
  }

  async attempts(sessionId: string): Promise<AttemptRecord[]> {
    const { rows } = await this.db.query<AttemptRow>(
      'SELECT * FROM cutover_attempts WHERE session_id = $1 ORDER BY attempt',
      [sessionId],
    );
    return rows.map(toAttempt);
  }

  async attempt(sessionId: string, attempt: number): Promise<AttemptRecord | undefined> {
    const { rows } = await this.db.query<AttemptRow>(
      'SELECT * FROM cutover_attempts WHERE session_id = $1 AND attempt = $2',
      [sessionId, attempt],
    );
    return rows[0] ? toAttempt(rows[0]) : undefined;
  }

  /** The latest cutover attempt (the one with the freeze), for summaries and the status message. */
  async latestCutover(sessionId: string): Promise<AttemptRecord | undefined> {
    const { rows } = await this.db.query<AttemptRow>(
      `SELECT * FROM cutover_attempts WHERE session_id = $1 AND kind = 'cutover' ORDER BY attempt DESC LIMIT 1`,
      [sessionId],
    );
    return rows[0] ? toAttempt(rows[0]) : undefined;
  }
}
