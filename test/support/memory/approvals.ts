/**
 * Gate requests in memory, as src/adapters/store/approvals.ts keeps them: at most one open (pending or
 * approved) request per session and gate (a second one: GateRefused), approval only of a pending,
 * unexpired request, expiry judged by the `now` passed in. A gate step works on a staged view that is
 * committed with the session's version step, or dropped.
 */
import { randomUUID } from 'node:crypto';
import type { ApprovalBinding } from '../../../src/domain/freeze-prediction.js';
import type { Gate, GateRequest, GateRequestStatus } from '../../../src/domain/gates.js';
import type { ApprovalRepository, NewGateRequest } from '../../../src/domain/ports/stores.js';
import { CodedError, ErrorCode } from '../../../src/errors.js';
import { clone } from './rows.js';

const minutes = (now: Date, n: number) => new Date(now.getTime() + n * 60_000);

/** Rows of gate_requests, or a transaction's view of them (its writes staged until commit). */
export interface GateRows {
  get(id: string): GateRequest | undefined;
  put(request: GateRequest): void;
  all(): GateRequest[];
}

export class TableRows implements GateRows {
  readonly rows = new Map<string, GateRequest>();
  get(id: string) {
    return this.rows.get(id);
  }
  put(request: GateRequest) {
    this.rows.set(request.id, request);
  }
  all() {
    return [...this.rows.values()];
  }
}

export class StagedRows implements GateRows {
  readonly #base: GateRows;
  readonly #staged = new Map<string, GateRequest>();
  constructor(base: GateRows) {
    this.#base = base;
  }
  get(id: string) {
    return this.#staged.get(id) ?? this.#base.get(id);
  }
  put(request: GateRequest) {
    this.#staged.set(request.id, request);
  }
  all() {
    const merged = new Map(this.#base.all().map((r) => [r.id, r]));
    for (const [id, r] of this.#staged) merged.set(id, r);
    return [...merged.values()];
  }
  commit() {
    for (const r of this.#staged.values()) this.#base.put(r);
  }
}

const isOpen = (r: GateRequest) => r.status === 'pending' || r.status === 'approved';

export class MemoryApprovals implements ApprovalRepository {
  readonly #rows: GateRows;
  readonly #sessionExists: (id: string) => boolean;
  #seq: { n: number };

  constructor(rows: GateRows, sessionExists: (id: string) => boolean, seq: { n: number }) {
    this.#rows = rows;
    this.#sessionExists = sessionExists;
    this.#seq = seq;
  }

  async open(sessionId: string): Promise<Partial<Record<Gate, GateRequest>>> {
    const result: Partial<Record<Gate, GateRequest>> = {};
    for (const r of this.#rows.all()) if (r.sessionId === sessionId && isOpen(r)) result[r.gate] = clone(r);
    return result;
  }

  async request(input: NewGateRequest): Promise<GateRequest> {
    if (!this.#sessionExists(input.sessionId)) throw new Error(`gate_requests: no session ${input.sessionId} (foreign key)`);
    for (const r of this.#rows.all()) {
      if (r.sessionId !== input.sessionId || r.gate !== input.gate) continue;
      const stale =
        (r.status === 'pending' && r.requestExpiresAt <= input.now) || (r.status === 'approved' && r.approvalExpiresAt !== null && r.approvalExpiresAt <= input.now);
      if (stale) this.#rows.put({ ...r, status: 'expired', closedAt: input.now });
    }
    if (this.#rows.all().some((r) => r.sessionId === input.sessionId && r.gate === input.gate && isOpen(r))) {
      throw new CodedError(ErrorCode.GateRefused, `A ${input.gate} request is already open for this session.`);
    }
    const request: GateRequest = {
      id: `gate-${String((this.#seq.n += 1)).padStart(4, '0')}-${randomUUID().slice(0, 8)}`,
      sessionId: input.sessionId,
      gate: input.gate,
      status: 'pending',
      requestedBy: input.requestedBy,
      requestedAt: new Date(input.now),
      requestExpiresAt: minutes(input.now, input.expiryMinutes),
      approvedBy: null,
      approvedAt: null,
      approvalExpiresAt: null,
      closedAt: null,
      binding: input.binding ?? null,
    };
    this.#rows.put(request);
    return clone(request);
  }

  async approve(requestId: string, input: { approvedBy: string; now: Date; expiryMinutes: number; binding?: ApprovalBinding | null }): Promise<GateRequest> {
    const r = this.#rows.get(requestId);
    if (!r || r.status !== 'pending' || !(r.requestExpiresAt > input.now)) {
      throw new CodedError(ErrorCode.GateRefused, 'That request is no longer pending (approved, withdrawn or expired).');
    }
    const approved: GateRequest = {
      ...r,
      status: 'approved',
      approvedBy: input.approvedBy,
      approvedAt: new Date(input.now),
      approvalExpiresAt: minutes(input.now, input.expiryMinutes),
      binding: input.binding ?? r.binding ?? null,
    };
    this.#rows.put(approved);
    return clone(approved);
  }

  async close(requestId: string, status: Exclude<GateRequestStatus, 'pending' | 'approved'>, now: Date): Promise<GateRequest | undefined> {
    const r = this.#rows.get(requestId);
    if (!r || !isOpen(r)) return undefined;
    const closed: GateRequest = { ...r, status, closedAt: new Date(now) };
    this.#rows.put(closed);
    return clone(closed);
  }

  async validApproval(sessionId: string, gate: Gate, now: Date): Promise<GateRequest | undefined> {
    const r = this.#rows.all().find((x) => x.sessionId === sessionId && x.gate === gate && x.status === 'approved' && x.approvalExpiresAt !== null && x.approvalExpiresAt > now);
    return r ? clone(r) : undefined;
  }

  async latest(sessionId: string, gate: Gate): Promise<GateRequest | undefined> {
    const all = this.#rows.all().filter((r) => r.sessionId === sessionId && r.gate === gate);
    all.sort((a, b) => b.requestedAt.getTime() - a.requestedAt.getTime() || (a.id < b.id ? 1 : -1));
    return all[0] ? clone(all[0]) : undefined;
  }

  /** Every request of the session, oldest first (tests). */
  async forSession(sessionId: string): Promise<GateRequest[]> {
    return this.#rows
      .all()
      .filter((r) => r.sessionId === sessionId)
      .sort((a, b) => a.requestedAt.getTime() - b.requestedAt.getTime() || (a.id < b.id ? -1 : 1))
      .map(clone);
  }
}

