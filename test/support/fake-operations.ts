/**
 * An honest in-process stand-in for the cutover engine: every action performs the REAL store
 * transition (SessionStore.transition, compare-and-set on the version the caller named) and records
 * the call. It stands for the machines (DigitalOcean, the proxy, the fence), not for the Slack code.
 */
import type { Actor, PlanStep, PreflightItem, SessionNotifier, SessionOperations, SessionRef } from '../../src/app/session-operations.js';
import type { Session, SessionEvent } from '../../src/domain/session.js';
import type { LagSample } from '../../src/domain/ports/replication.js';
import type { Store } from '../../src/adapters/store/index.js';

export interface RecordedOperation {
  op: string;
  sessionId: string;
  expectedVersion?: number;
  actor?: string;
  ok: boolean;
}

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
  private readonly notifier: SessionNotifier | undefined;

  constructor(store: Store, notifier?: SessionNotifier) {
    this.store = store;
    this.notifier = notifier;
  }

  /** The next call of `op` throws `error` (after checking nothing changed). */
  failOnce(op: string, error: Error): void {
    this.failNext.set(op, error);
  }

  count(op: string): number {
    return this.calls.filter((c) => c.op === op && c.ok).length;
  }

  startMigration(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.act('startMigration', 'migration_started', ref, actor, { doMigrationId: `do-mig-${ref.sessionId.slice(0, 8)}` });
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

  async lag(sessionId: string): Promise<LagSample> {
    this.calls.push({ op: 'lag', sessionId, ok: true });
    return this.lagSample();
  }

  freeze(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.act('freeze', 'freeze', ref, actor);
  }

  switchover(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.act('switchover', 'switch', ref, actor);
  }

  resume(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.act('resume', 'resume', ref, actor);
  }

  rollback(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.act('rollback', 'rollback', ref, actor);
  }

  finish(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.act('finish', 'finish', ref, actor);
  }

  abort(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.act('abort', 'abort', ref, actor);
  }

  /** What the engine does when the freeze budget runs out: resume by itself and tell the channel. */
  async budgetExpired(sessionId: string): Promise<Session> {
    const current = await this.store.sessions.require(sessionId);
    const resumed = await this.store.sessions.transition(sessionId, current.version, 'resume');
    this.calls.push({ op: 'budgetExpired', sessionId, ok: true });
    await this.notifier?.notify(resumed, { level: 'warning', text: 'The freeze budget ran out: writes resumed on the source by themselves.' });
    return resumed;
  }

  private async act(op: string, event: SessionEvent, ref: SessionRef, actor: Actor, patch = {}): Promise<Session> {
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    const failure = this.failNext.get(op);
    if (failure) {
      this.failNext.delete(op);
      this.calls.push({ op, sessionId: ref.sessionId, expectedVersion: ref.expectedVersion, actor: actor.userId, ok: false });
      throw failure;
    }
    try {
      const session = await this.store.sessions.transition(ref.sessionId, ref.expectedVersion, event, patch);
      this.calls.push({ op, sessionId: ref.sessionId, expectedVersion: ref.expectedVersion, actor: actor.userId, ok: true });
      return session;
    } catch (error) {
      this.calls.push({ op, sessionId: ref.sessionId, expectedVersion: ref.expectedVersion, actor: actor.userId, ok: false });
      throw error;
    }
  }
}
