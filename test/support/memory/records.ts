/**
 * The journal, the audit log, idempotency keys, report schedules and executor locks in memory, with the
 * contracts of their store adapters: journal entries and attempts keyed by session (a foreign key to
 * the session), JSON columns stored as JSON, an append-only audit log, keys claimed once (or per
 * window), advisory locks held by a process and released with it.
 */
import type { AttemptPatch, AttemptRecord } from '../../../src/domain/attempt.js';
import type { AttemptKind, CutoverStep, JournalEntry, JournalEvent } from '../../../src/domain/cutover-plan.js';
import type { AuditEntry, AuditLog, AuditRecord, ExecutorLock, IdempotencyKeys, JournalRepository, ReportSchedules, StepEvent } from '../../../src/domain/ports/stores.js';
import type { ReportSchedule } from '../../../src/domain/report-schedule.js';
import type { Process } from './process.js';
import { clone, json } from './rows.js';

interface StoredEntry extends JournalEntry {
  sessionId: string;
}

const JSON_FIELDS = new Set<keyof AttemptPatch>(['frozenWhat', 'lagAtFreeze', 'fence', 'approvals', 'freezeRecord']);

export class MemoryJournal implements JournalRepository {
  readonly #attempts = new Map<string, AttemptRecord[]>();
  readonly #entries: StoredEntry[] = [];
  readonly #now: () => Date;
  readonly #sessionExists: (id: string) => boolean;

  constructor(now: () => Date, sessionExists: (id: string) => boolean) {
    this.#now = now;
    this.#sessionExists = sessionExists;
  }

  async begin(sessionId: string, kind: AttemptKind, startedBy: string, patch: AttemptPatch = {}): Promise<number> {
    if (!this.#sessionExists(sessionId)) throw new Error(`cutover_attempts: no session ${sessionId} (foreign key)`);
    const list = this.#attempts.get(sessionId) ?? [];
    const attempt = Math.max(0, ...list.map((a) => a.attempt)) + 1;
    list.push({
      sessionId,
      attempt,
      kind,
      startedBy,
      startedAt: this.#now(),
      frozenWhat: null,
      frozenAt: null,
      freezeBudgetSeconds: null,
      lagAtFreeze: null,
      fence: null,
      sequencesCopied: null,
      switchedAt: null,
      resumedAt: null,
      resumedOn: null,
      writesHeld: null,
      predictedFreezeMs: null,
      verification: null,
      approvals: null,
      freezeRecord: null,
      outcome: null,
      endedAt: null,
    });
    this.#attempts.set(sessionId, list);
    await this.update(sessionId, attempt, patch);
    return attempt;
  }

  async record(sessionId: string, attempt: number, step: CutoverStep, event: JournalEvent, detail: Record<string, unknown> = {}, patch: AttemptPatch = {}): Promise<void> {
    await this.recordAll(sessionId, attempt, [{ step, event, detail }], patch);
  }

  async recordAll(sessionId: string, attempt: number, events: readonly StepEvent[], patch: AttemptPatch = {}): Promise<void> {
    const row = this.#find(sessionId, attempt);
    if (!row) throw new Error(`cutover_journal: no attempt ${attempt} of session ${sessionId} (foreign key)`);
    await this.update(sessionId, attempt, patch);
    for (const { step, event, detail } of events) {
      this.#entries.push({ sessionId, attempt, kind: row.kind, step, event, at: this.#now(), detail: json(detail ?? {}) });
    }
  }

  async entries(sessionId: string): Promise<JournalEntry[]> {
    return this.#entries.filter((e) => e.sessionId === sessionId).map(({ sessionId: _s, ...entry }) => clone(entry));
  }

  async latestAttemptEntries(sessionIds: readonly string[]): Promise<Map<string, JournalEntry[]>> {
    const result = new Map<string, JournalEntry[]>();
    for (const sessionId of sessionIds) {
      const latest = Math.max(...(this.#attempts.get(sessionId) ?? []).map((a) => a.attempt));
      const own = (await this.entries(sessionId)).filter((e) => e.attempt === latest);
      if (own.length > 0) result.set(sessionId, own);
    }
    return result;
  }

  async update(sessionId: string, attempt: number, patch: AttemptPatch): Promise<void> {
    const row = this.#find(sessionId, attempt);
    if (!row) return;
    for (const [key, value] of Object.entries(patch) as [keyof AttemptPatch, unknown][]) {
      if (value === undefined) continue;
      (row as unknown as Record<string, unknown>)[key] = JSON_FIELDS.has(key) && value !== null ? json(value) : clone(value);
    }
  }

  async attempt(sessionId: string, attempt: number): Promise<AttemptRecord | undefined> {
    const row = this.#find(sessionId, attempt);
    return row ? clone(row) : undefined;
  }

  async latestCutover(sessionId: string): Promise<AttemptRecord | undefined> {
    const row = (this.#attempts.get(sessionId) ?? []).filter((a) => a.kind === 'cutover').at(-1);
    return row ? clone(row) : undefined;
  }

  /** Every attempt of the session (tests). */
  async attempts(sessionId: string): Promise<AttemptRecord[]> {
    return (this.#attempts.get(sessionId) ?? []).map(clone);
  }

  #find(sessionId: string, attempt: number): AttemptRecord | undefined {
    return (this.#attempts.get(sessionId) ?? []).find((a) => a.attempt === attempt);
  }
}

export class MemoryAuditLog implements AuditLog {
  readonly #rows: AuditRecord[] = [];
  readonly #now: () => Date;
  readonly #sessionExists: (id: string) => boolean;

  constructor(now: () => Date, sessionExists: (id: string) => boolean) {
    this.#now = now;
    this.#sessionExists = sessionExists;
  }

  async append(entry: AuditEntry): Promise<AuditRecord> {
    if (entry.sessionId !== null && !this.#sessionExists(entry.sessionId)) throw new Error(`audit_log: no session ${entry.sessionId} (foreign key)`);
    const record: AuditRecord = {
      id: this.#rows.length + 1,
      sessionId: entry.sessionId,
      channelId: entry.channelId,
      actor: entry.actor,
      action: entry.action,
      outcome: entry.outcome,
      details: json(entry.details ?? {}),
      at: this.#now(),
    };
    this.#rows.push(record);
    return clone(record);
  }

  async forSession(sessionId: string, limit = 100): Promise<AuditRecord[]> {
    return this.#rows.filter((r) => r.sessionId === sessionId).slice(0, limit).map(clone);
  }

  async forChannel(channelId: string, limit = 50): Promise<AuditRecord[]> {
    return this.#rows.filter((r) => r.channelId === channelId).slice(-limit).map(clone);
  }

  /** Every row, in order (tests). */
  all(): AuditRecord[] {
    return this.#rows.map(clone);
  }
}

export class MemoryIdempotencyKeys implements IdempotencyKeys {
  readonly #keys = new Map<string, Date>();

  async claim(key: string, now: Date, windowMs?: number): Promise<boolean> {
    const claimed = this.#keys.get(key);
    const reclaimBefore = windowMs === undefined ? new Date(0) : new Date(now.getTime() - windowMs);
    if (claimed && !(claimed < reclaimBefore)) return false;
    this.#keys.set(key, new Date(now));
    return true;
  }

  async exists(key: string): Promise<boolean> {
    return this.#keys.has(key);
  }

  async release(key: string): Promise<void> {
    this.#keys.delete(key);
  }
}

export class MemoryReportSchedules implements ReportSchedules {
  readonly #rows = new Map<string, { schedule: ReportSchedule; setBy: string; at: Date }>();

  async set(sessionId: string, schedule: ReportSchedule, setBy: string, at: Date): Promise<void> {
    this.#rows.set(sessionId, { schedule: clone(schedule), setBy, at: new Date(at) });
  }

  async get(sessionId: string): Promise<string | null> {
    return this.#rows.get(sessionId)?.schedule.text ?? null;
  }
}

/** Advisory locks: one holder per key; a holder's locks go with its process (its connection). */
export class MemoryLocks {
  readonly #holders = new Map<string, Process>();

  /** The process holding `key`, if any. */
  holder(key: string): Process | undefined {
    return this.#holders.get(key);
  }

  heldBy(process: Process): string[] {
    return [...this.#holders].filter(([, p]) => p === process).map(([k]) => k);
  }

  forProcess(process: Process): ExecutorLock {
    return {
      withTryLock: <T>(key: string, work: () => Promise<T>): Promise<T | undefined> =>
        process.guard(async () => {
          if (this.#holders.has(key)) return undefined;
          this.#holders.set(key, process);
          const drop = () => {
            if (this.#holders.get(key) === process) this.#holders.delete(key);
          };
          process.onKill(drop);
          try {
            return await work();
          } finally {
            drop();
          }
        }),
    };
  }
}

/** The ports one process uses, on its connection to the shared store. */
