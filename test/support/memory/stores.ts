/**
 * The bot's store in memory, with the contracts of the PostgreSQL adapters (src/adapters/store/):
 * sessions change by compare-and-set on `version` (SessionConflict on a stale one, InvalidTransition
 * from the domain's `transition`), a gate step bumps the version and changes gate requests in one
 * transaction (all or nothing), at most one open request per gate (a second one: GateRefused),
 * one active session per channel, an append-only audit log, JSON columns stored as JSON.
 *
 * `MemoryStore` is the shared data (one database); `connect(process)` is one process's connection to
 * it: its calls die with the process, and so do the executor locks it holds.
 */
import { randomUUID } from 'node:crypto';
import type { ApprovalRepository, AuditLog, ExecutorLock, IdempotencyKeys, JournalRepository, NewSession, ReportSchedules, SessionPatch, SessionRepository } from '../../../src/domain/ports/stores.js';
import { isActive, transition, type Session, type SessionEvent } from '../../../src/domain/session.js';
import { CodedError, ErrorCode } from '../../../src/errors.js';
import { MemoryApprovals, StagedRows, TableRows } from './approvals.js';
import type { Process } from './process.js';
import { MemoryAuditLog, MemoryIdempotencyKeys, MemoryJournal, MemoryLocks, MemoryReportSchedules } from './records.js';
import { clone } from './rows.js';

export { MemoryApprovals } from './approvals.js';
export { MemoryAuditLog, MemoryIdempotencyKeys, MemoryJournal, MemoryLocks, MemoryReportSchedules } from './records.js';

const notFound = () => new CodedError(ErrorCode.SessionNotFound, 'That migration session no longer exists.');
const conflict = (current: Session, expectedVersion: number) =>
  new CodedError(ErrorCode.SessionConflict, 'Someone else changed this session a moment ago; look at the updated status message and try again.', {
    details: { sessionId: current.id, expectedVersion, actualVersion: current.version },
  });

/** Serialises work per key, like a row lock held to the end of a transaction. */
class RowLocks {
  readonly #tails = new Map<string, Promise<unknown>>();

  async with<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const run = previous.then(work, work);
    const tail = run.catch(() => undefined);
    this.#tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

export class MemorySessions implements SessionRepository {
  readonly #rows = new Map<string, Session>();
  readonly #order: string[] = [];
  readonly #locks = new RowLocks();
  readonly #gates: TableRows;
  readonly #gateSeq: { n: number };
  readonly #now: () => Date;

  constructor(gates: TableRows, gateSeq: { n: number }, now: () => Date) {
    this.#gates = gates;
    this.#gateSeq = gateSeq;
    this.#now = now;
  }

  exists(id: string): boolean {
    return this.#rows.has(id);
  }

  async create(input: NewSession): Promise<Session> {
    if ([...this.#rows.values()].some((s) => s.channelId === input.channelId && isActive(s.state))) {
      throw new CodedError(ErrorCode.SessionAlreadyActive, 'This channel already has an active migration session: see `/migrate status`, or finish or abort it first.', {
        details: { channelId: input.channelId },
      });
    }
    const now = this.#now();
    const session: Session = {
      id: randomUUID(),
      channelId: input.channelId,
      profile: input.profile,
      strategy: input.strategy,
      state: 'created',
      version: 1,
      doMigrationId: null,
      startedBy: input.startedBy,
      statusMessageTs: null,
      createdAt: now,
      updatedAt: now,
    };
    this.#rows.set(session.id, session);
    this.#order.push(session.id);
    return clone(session);
  }

  async get(id: string): Promise<Session | undefined> {
    const s = this.#rows.get(id);
    return s ? clone(s) : undefined;
  }

  async require(id: string): Promise<Session> {
    const s = await this.get(id);
    if (!s) throw notFound();
    return s;
  }

  async activeInChannel(channelId: string): Promise<Session | undefined> {
    const s = [...this.#rows.values()].find((x) => x.channelId === channelId && isActive(x.state));
    return s ? clone(s) : undefined;
  }

  async listActive(): Promise<Session[]> {
    return this.#order.map((id) => this.#rows.get(id)!).filter((s) => isActive(s.state)).map(clone);
  }

  async listForChannel(channelId: string, limit = 20): Promise<Session[]> {
    return [...this.#order]
      .reverse()
      .map((id) => this.#rows.get(id)!)
      .filter((s) => s.channelId === channelId)
      .slice(0, limit)
      .map(clone);
  }

  async transition(id: string, expectedVersion: number, event: SessionEvent, patch: SessionPatch = {}): Promise<Session> {
    return this.#locks.with(id, async () => {
      const current = this.#rows.get(id);
      if (!current) throw notFound();
      if (current.version !== expectedVersion) throw conflict(current, expectedVersion);
      const result = transition(current.state, event);
      if (!result.ok) {
        throw new CodedError(ErrorCode.InvalidTransition, `Cannot ${event.replace('_', ' ')}: ${result.reason}.`, { details: { from: current.state, event } });
      }
      if (isActive(result.to) && [...this.#rows.values()].some((s) => s.id !== id && s.channelId === current.channelId && isActive(s.state))) {
        throw new CodedError(ErrorCode.SessionAlreadyActive, 'This channel already has an active migration session.');
      }
      const updated: Session = {
        ...current,
        state: result.to,
        ...('doMigrationId' in patch ? { doMigrationId: patch.doMigrationId ?? null } : {}),
        version: current.version + 1,
        updatedAt: this.#now(),
      };
      this.#rows.set(id, updated);
      return clone(updated);
    });
  }

  async gateStep<T>(id: string, expectedVersion: number, work: (approvals: ApprovalRepository) => Promise<T>): Promise<{ session: Session; result: T }> {
    return this.#locks.with(id, async () => {
      const current = this.#rows.get(id);
      if (!current) throw notFound();
      if (current.version !== expectedVersion) throw conflict(current, expectedVersion);
      const staged = new StagedRows(this.#gates);
      // A failure in `work` rolls the transaction back: no version step, no gate change.
      const result = await work(new MemoryApprovals(staged, (s) => this.exists(s), this.#gateSeq));
      staged.commit();
      const updated: Session = { ...current, version: current.version + 1, updatedAt: this.#now() };
      this.#rows.set(id, updated);
      return { session: clone(updated), result };
    });
  }

  async setStatusMessage(id: string, ts: string): Promise<Session> {
    const current = this.#rows.get(id);
    if (!current) throw notFound();
    const updated = { ...current, statusMessageTs: ts };
    this.#rows.set(id, updated);
    return clone(updated);
  }

  async discard(id: string): Promise<void> {
    const current = this.#rows.get(id);
    if (!current || current.state !== 'created' || current.statusMessageTs !== null || current.doMigrationId !== null) return;
    this.#rows.delete(id);
    this.#order.splice(this.#order.indexOf(id), 1);
  }
}

export interface MemoryPorts {
  sessions: SessionRepository;
  approvals: ApprovalRepository;
  journal: JournalRepository;
  audit: AuditLog;
  lock: ExecutorLock;
  idempotency: IdempotencyKeys;
  schedules: ReportSchedules;
}

/** A call a process made that succeeded: `port.method(args)`. */
export type AfterCall = (port: keyof MemoryPorts, method: string, args: unknown[]) => void | Promise<void>;

/** One in-memory database shared by every process of a test. */
export class MemoryStore {
  readonly sessions: MemorySessions;
  readonly approvals: MemoryApprovals;
  readonly journal: MemoryJournal;
  readonly audit: MemoryAuditLog;
  readonly idempotency = new MemoryIdempotencyKeys();
  readonly schedules = new MemoryReportSchedules();
  readonly locks = new MemoryLocks();

  constructor(now: () => Date) {
    const gates = new TableRows();
    const gateSeq = { n: 0 };
    this.sessions = new MemorySessions(gates, gateSeq, now);
    const exists = (id: string) => this.sessions.exists(id);
    this.approvals = new MemoryApprovals(gates, exists, gateSeq);
    this.journal = new MemoryJournal(now, exists);
    this.audit = new MemoryAuditLog(now, exists);
  }

  /** The store as `process` sees it: its calls die with it, and so do its locks. */
  connect(process: Process, after?: AfterCall): MemoryPorts {
    const wrap = <T extends object>(port: keyof MemoryPorts, target: T): T => process.connect(target, after ? (method, args) => after(port, method, args) : undefined);
    return {
      sessions: wrap('sessions', this.sessions),
      approvals: wrap('approvals', this.approvals),
      journal: wrap('journal', this.journal),
      audit: wrap('audit', this.audit),
      lock: this.locks.forProcess(process),
      idempotency: wrap('idempotency', this.idempotency),
      schedules: wrap('schedules', this.schedules),
    };
  }
}
