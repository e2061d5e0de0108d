/**
 * An honest in-process stand-in for the cutover engine: every action performs the REAL store
 * transition (SessionStore.transition, compare-and-set on the version the caller named), closes the
 * gate request it executed, and records the outcome fact the engine records. It stands for the
 * machines (DigitalOcean, the proxy, the fence), not for the use cases or the Slack code.
 */
import type { ApprovalBinding } from '../../src/domain/freeze-prediction.js';
import type { ApprovalStore } from '../../src/adapters/store/approvals.js';
import type { Store } from '../../src/adapters/store/index.js';
import type { Fact, FactRecorder } from '../../src/app/facts.js';
import type { Actor, PlanStep, PreflightItem, SessionOperations, SessionRef } from '../../src/app/session-operations.js';
import type { Gate } from '../../src/domain/gates.js';
import type { LagSample } from '../../src/domain/ports/replication.js';
import type { Session, SessionEvent } from '../../src/domain/session.js';

export interface RecordedOperation {
  op: string;
  sessionId: string;
  expectedVersion?: number;
  actor?: string;
  ok: boolean;
}

const NO_SUMMARY = { ran: false, frozenMs: null, predictedFreezeMs: null, writesHeld: null, lagAtFreeze: null, fence: null, sequencesCopied: null, approvals: null };

export class FakeOperations implements SessionOperations {
  readonly calls: RecordedOperation[] = [];
  lagSample: () => LagSample = () => ({ known: true, at: new Date(), slot: 'do_slot', slotActive: true, bytes: 4096, seconds: 0.4 });
  preflightItems: PreflightItem[] = [
    { check: 'wal_level', status: 'pass', detail: 'logical' },
    { check: 'replication slots', status: 'pass', detail: '1 of 10 used' },
    { check: 'lag', status: 'warn', detail: '4 KiB behind', fix: 'wait for the target to catch up' },
  ];
  /** Milliseconds each action takes (makes concurrent clicks overlap for real). */
  delayMs = 0;
  private failNext: Map<string, Error> = new Map();
  private readonly store: Store;
  private readonly approvals: ApprovalStore;
  private readonly facts: FactRecorder;
  private readonly now: () => Date;

  constructor(store: Store, approvals: ApprovalStore, facts: FactRecorder, now: () => Date) {
    this.store = store;
    this.approvals = approvals;
    this.facts = facts;
    this.now = now;
  }

  /** The next call of `op` throws `error` (after checking nothing changed). */
  failOnce(op: string, error: Error): void {
    this.failNext.set(op, error);
  }

  count(op: string): number {
    return this.calls.filter((c) => c.op === op && c.ok).length;
  }

  startMigration(ref: SessionRef, actor: Actor): Promise<Session> {
    const migrationId = `do-mig-${ref.sessionId.slice(0, 8)}`;
    return this.act('startMigration', 'migration_started', ref, actor, { type: 'migration_started', actor: actor.userId, migrationId }, undefined, { doMigrationId: migrationId });
  }

  async plan(session: Session): Promise<PlanStep[]> {
    this.calls.push({ op: 'plan', sessionId: session.id, ok: true });
    return [
      { name: 'freeze writes', description: 'PAUSE the application database in PgBouncer (budget 30 s)' },
      { name: 'prove the fence', description: 'write a marker on the source and wait for it on the target' },
      { name: 'copy sequences', description: 'set every sequence on the target to the source value + margin' },
      { name: 'repoint the proxy', description: 'rewrite the databases file to the target and RELOAD' },
      { name: 'resume writes', description: 'RESUME in PgBouncer' },
    ];
  }

  async preflight(session: Session): Promise<PreflightItem[]> {
    this.calls.push({ op: 'preflight', sessionId: session.id, ok: true });
    return this.preflightItems;
  }

  /** A plan that never changes, the fake lag, and a freeze predicted at 40 ms. */
  async binding(session: Session): Promise<ApprovalBinding> {
    const lag = this.lagSample();
    return { planHash: `fake-${session.strategy}`, lagBytes: lag.known ? lag.bytes : null, sourceLsn: '0/16B3748', predictedFreezeMs: 40 };
  }

  async lag(sessionId: string): Promise<LagSample> {
    this.calls.push({ op: 'lag', sessionId, ok: true });
    return this.lagSample();
  }

  freeze(ref: SessionRef, actor: Actor): Promise<Session> {
    const fact: Fact = { type: 'frozen', actor: actor.userId, attempt: 1, budgetSeconds: 30, requestedBy: actor.userId, approvedBy: actor.userId };
    return this.act('freeze', 'freeze', ref, actor, fact, 'freeze');
  }

  switchover(ref: SessionRef, actor: Actor): Promise<Session> {
    const fact: Fact = { type: 'switched', actor: actor.userId, attempt: 1, strategy: 'proxy', frozenMs: 1, aheadOfTime: false, targetDatabase: 'target', recovered: false };
    return this.act('switchover', 'switch', ref, actor, fact, 'switch');
  }

  resume(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.act('resume', 'resume', ref, actor, { type: 'resumed', actor: actor.userId, reason: 'resumed on request', problems: [], level: 'info' });
  }

  rollback(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.act('rollback', 'rollback', ref, actor, { type: 'rolled_back', actor: actor.userId, strategy: 'proxy', switchedAt: null });
  }

  finish(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.act('finish', 'finish', ref, actor, { type: 'finished', actor: actor.userId, summary: NO_SUMMARY });
  }

  abort(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.act('abort', 'abort', ref, actor, { type: 'aborted', actor: actor.userId });
  }

  /** What the engine does when the freeze budget runs out: resume by itself and tell the channel. */
  async budgetExpired(sessionId: string): Promise<Session> {
    const current = await this.store.sessions.require(sessionId);
    const resumed = await this.store.sessions.transition(sessionId, current.version, 'resume');
    this.calls.push({ op: 'budgetExpired', sessionId, ok: true });
    await this.facts.record(resumed, { type: 'resumed', actor: 'bot', reason: 'the freeze budget ran out before the switch', problems: [], level: 'warning' });
    return resumed;
  }

  private async act(op: string, event: SessionEvent, ref: SessionRef, actor: Actor, fact: Fact, gate?: Gate, patch = {}): Promise<Session> {
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    const failure = this.failNext.get(op);
    try {
      if (failure) {
        this.failNext.delete(op);
        throw failure;
      }
      const session = await this.store.sessions.transition(ref.sessionId, ref.expectedVersion, event, patch);
      this.calls.push({ op, sessionId: ref.sessionId, expectedVersion: ref.expectedVersion, actor: actor.userId, ok: true });
      await this.closeGate(ref.sessionId, gate, 'executed');
      await this.facts.record(session, fact);
      return session;
    } catch (error) {
      this.calls.push({ op, sessionId: ref.sessionId, expectedVersion: ref.expectedVersion, actor: actor.userId, ok: false });
      await this.closeGate(ref.sessionId, gate, 'failed');
      const session = await this.store.sessions.get(ref.sessionId);
      const message = error instanceof Error ? error.message : String(error);
      if (session && failure) await this.facts.record(session, { type: 'failed', actor: actor.userId, action: op, message, code: 'internal' });
      throw error;
    }
  }

  private async closeGate(sessionId: string, gate: Gate | undefined, status: 'executed' | 'failed'): Promise<void> {
    const open = gate ? (await this.approvals.open(sessionId))[gate] : undefined;
    if (open?.status === 'approved') await this.approvals.close(open.id, status, this.now());
  }
}
