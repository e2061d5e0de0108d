/**
 * The cutover engine: what each gate and button does to the machines, in an executor window (one
 * executor per session across replicas), with the plan's steps run and journaled by the runner.
 * Every outcome is recorded once, as a fact, here; the use cases record what people did.
 *
 * Safety. The switch runs only after this attempt's fence and sequence steps are journaled done, and
 * never twice (a completed repoint is only ever followed by a resume). Any failure after the freeze,
 * and the budget running out before the switch completed, put everything back on the source.
 */
import { frozenMs, type GateAttribution } from '../../domain/attempt.js';
import { gateSteps, hasSwitched, latestAttempt, planSteps, recoveryDecision, type AttemptKind } from '../../domain/cutover-plan.js';
import type { Gate, GateRequest } from '../../domain/gates.js';
import type { Clock } from '../../domain/ports/clock.js';
import type { PreflightItem, SessionMachines } from '../../domain/ports/machines.js';
import type { LagSample } from '../../domain/ports/replication.js';
import type { ApprovalRepository, ExecutorLock, JournalRepository, SessionRepository } from '../../domain/ports/stores.js';
import { transition as allowedTransition, type Session, type SessionEvent } from '../../domain/session.js';
import { CodedError, ErrorCode, asCodedError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { maskSecret } from '../../secret.js';
import { BOT, summaryOf, type FactRecorder } from '../facts.js';
import type { Actor, PlanStep, SessionOperations, SessionRef } from '../session-operations.js';
import { Executor, type Window } from './executor.js';
import { Recovery, type RecoveryOutcome } from './recovery.js';
import { budgetExceeded, StepRunner, type StepContext } from './runner.js';

export type { RecoveryOutcome } from './recovery.js';

export const systemClock: Clock = {
  now: () => new Date(),
  setTimer(ms, fire) {
    const handle = setTimeout(fire, ms);
    handle.unref?.();
    return { cancel: () => clearTimeout(handle) };
  },
};

export interface CutoverEngineDeps {
  sessions: SessionRepository;
  journal: JournalRepository;
  approvals: ApprovalRepository;
  lock: ExecutorLock;
  facts: FactRecorder;
  log: Logger;
  /** Builds the machines of a session from its profile (stored or a dry run's draft). */
  machines(session: Session): Promise<SessionMachines>;
  /** The session's lag, from the shared per-source probe (no machines are built for it). */
  lag(session: Session): Promise<LagSample>;
  clock?: Clock;
  /** How often the holder of a freeze looks for a switch approved on another replica (default 200 ms). */
  approvalPollMs?: number;
}

export class CutoverEngine implements SessionOperations {
  readonly #d: CutoverEngineDeps;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #executor: Executor;
  readonly #runner: StepRunner;
  readonly #recovery: Recovery;
  /** Errors whose fact was already recorded (the caller must not record another). */
  readonly #reported = new WeakSet<object>();

  constructor(deps: CutoverEngineDeps) {
    this.#d = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#log = deps.log.child({ name: 'cutover' });
    this.#executor = new Executor({
      lock: deps.lock,
      machines: async (sessionId) => deps.machines(await deps.sessions.require(sessionId)),
      clock: this.#clock,
      log: this.#log,
    });
    this.#runner = new StepRunner(deps.journal, this.#clock);
    this.#recovery = new Recovery({
      sessions: deps.sessions,
      journal: deps.journal,
      approvals: deps.approvals,
      executor: this.#executor,
      runner: this.#runner,
      clock: this.#clock,
      log: this.#log,
      undo: (w, session, options) => this.#undo(w, session, options),
      recordSwitch: (session, attempt, actor, parameters) => this.#recordSwitched(session, attempt, actor, parameters, true),
      finishFact: (session, actor) => this.#finishFact(session, actor),
      mark: (error) => this.#mark(error),
      facts: deps.facts,
    });
  }

  /** Whether the fact of this error was recorded by the engine already. */
  reported(error: unknown): boolean {
    return typeof error === 'object' && error !== null && this.#reported.has(error);
  }

  // ── Operations ────────────────────────────────────────────────────────────────────────────────

  async startMigration(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.#operation(ref.sessionId, 'start', actor, async (w) => {
      const session = await this.#checked(ref, 'migration_started');
      const { migrationId } = await w.machines.startMigration();
      const updated = await this.#transition(session.id, 'migration_started', { doMigrationId: migrationId });
      await this.#d.facts.record(updated, { type: 'migration_started', actor: actor.userId, migrationId });
      return updated;
    });
  }

  async plan(session: Session): Promise<PlanStep[]> {
    return this.#withMachines(session, async (m) =>
      planSteps({ ...m.settings, ...(m.routerLabel ? { proxyLabel: m.routerLabel } : {}) }).map((s) => ({ name: s.name, description: s.description })),
    );
  }

  async preflight(session: Session): Promise<PreflightItem[]> {
    return this.#withMachines(session, (m) => m.preflight());
  }

  async lag(sessionId: string): Promise<LagSample> {
    return this.#d.lag(await this.#d.sessions.require(sessionId));
  }

  /** Gate 1 passed: preconditions, freeze (the budget starts), fence, sequences; then the switch if it is approved already. */
  async freeze(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.#operation(ref.sessionId, 'freeze', actor, async (w) => {
      let session = await this.#checked(ref, 'freeze');
      const journal = this.#d.journal;
      if (hasSwitched(await journal.entries(session.id))) {
        throw new CodedError(ErrorCode.InvalidTransition, 'This session already switched once; it will not switch twice.');
      }
      const gate = await this.#openApproval(session.id, 'freeze');
      const freezeBy = attribution(gate, actor);
      const attempt = await journal.begin(session.id, 'cutover', freezeBy.requestedBy ?? actor.userId, { approvals: { freeze: freezeBy } });
      w.attempt = attempt;
      const ctx = this.#context(w, session, attempt);
      const [pre, freeze, ...afterFreeze] = gateSteps(session.strategy, 'freeze');
      try {
        await this.#runner.run(ctx, [pre!]);
      } catch (error) {
        await journal.update(session.id, attempt, { outcome: 'refused', endedAt: this.#clock.now() });
        await this.#closeGate(gate, 'failed');
        await this.#d.facts.record(session, { type: 'freeze_refused', actor: actor.userId, reason: asCodedError(error).message });
        throw this.#mark(error);
      }
      let frozenAt: Date;
      try {
        frozenAt = (await this.#runner.run(ctx, [freeze!])).frozenAt ?? this.#clock.now();
      } catch (error) {
        await this.#closeGate(gate, 'failed');
        // The freeze may have partly taken effect: put it back.
        await this.#undo(w, session, { repointToSource: false, reason: `the freeze failed: ${asCodedError(error).message}`, level: 'error' });
        throw this.#mark(stepFailed('freeze', error));
      }
      this.#executor.hold(w, frozenAt, w.machines.settings.freezeBudgetSeconds, () => this.#budgetExpired(w));
      session = await this.#transition(session.id, 'freeze');
      await this.#closeGate(gate, 'executed');
      await this.#d.facts.record(session, {
        type: 'frozen',
        actor: actor.userId,
        attempt,
        budgetSeconds: w.machines.settings.freezeBudgetSeconds,
        requestedBy: freezeBy.requestedBy ?? actor.userId,
        approvedBy: freezeBy.approvedBy ?? actor.userId,
      });
      try {
        await this.#runner.run(ctx, afterFreeze);
      } catch (error) {
        const budget = isCode(error, ErrorCode.FreezeBudgetExceeded);
        await this.#undo(w, session, {
          repointToSource: false,
          reason: budget ? this.#budgetReason(w, 'before the switch') : `a step after the freeze failed: ${asCodedError(error).message}`,
          level: budget ? 'warning' : 'error',
        });
        throw this.#mark(budget ? error : stepFailed('freeze', error));
      }
      // Gate 2 ahead of time: switch at once, so the freeze lasts only as long as the machines need.
      const approval = await this.#validSwitchApproval(session.id);
      if (approval) return this.#switch(w, approval);
      const secondsLeft = Math.max(0, Math.round(this.#executor.remaining(w) / 1000));
      await this.#d.facts.record(session, { type: 'awaiting_switch', actor: BOT, attempt, secondsLeft });
      this.#executor.poll(
        w,
        this.#d.approvalPollMs ?? 200,
        async () => (await this.#validSwitchApproval(session.id)) !== undefined,
        async () => {
          const valid = await this.#validSwitchApproval(session.id);
          if (valid) await this.#switch(w, valid).catch((err: unknown) => this.#log.warn({ err, session: session.id }, 'switch after approval failed'));
        },
      );
      return session;
    });
  }

  /** Gate 2 passed while frozen: run the approved switch (or report the switch the holder's poll already ran). */
  async switchover(ref: SessionRef, actor: Actor): Promise<Session> {
    try {
      return await this.#operation(
        ref.sessionId,
        'switch',
        actor,
        async (w) => {
          const current = await this.#d.sessions.require(ref.sessionId);
          if (current.state === 'switched' && current.version > ref.expectedVersion) return current;
          await this.#checked(ref, 'switch');
          const approval = await this.#validSwitchApproval(ref.sessionId);
          if (!approval) throw new CodedError(ErrorCode.GateRefused, 'The switch has not been approved (or the approval expired).');
          return this.#switch(w, approval);
        },
        'Another replica holds this cutover; it runs the switch as soon as it sees the approval.',
      );
    } catch (error) {
      if (!isCode(error, ErrorCode.ExecutorBusy)) throw error;
      return this.#awaitHolderSwitch(ref.sessionId, error);
    }
  }

  async resume(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.#operation(ref.sessionId, 'resume', actor, async (w) => {
      const session = await this.#checked(ref, 'resume');
      const decision = recoveryDecision(await this.#d.journal.entries(session.id));
      w.attempt ??= decision.action === 'undo-freeze' ? decision.attempt : latestAttempt(await this.#d.journal.entries(session.id))?.attempt;
      return this.#undo(w, session, {
        repointToSource: decision.action === 'undo-freeze' && decision.repointToSource,
        reason: 'resumed on request',
        level: 'info',
        actor,
      });
    });
  }

  async rollback(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.#operation(ref.sessionId, 'rollback', actor, async (w) => {
      const session = await this.#checked(ref, 'rollback');
      const attempt = await this.#begin(w, session, 'rollback', actor);
      return this.#recovery.rollback(w, session, attempt, actor.userId);
    });
  }

  async finish(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.#operation(ref.sessionId, 'finish', actor, async (w) => {
      const session = await this.#checked(ref, 'finish');
      const attempt = await this.#begin(w, session, 'finish', actor);
      await this.#runner.run(this.#context(w, session, attempt), ['stop_migration']);
      const updated = await this.#transition(session.id, 'finish');
      await this.#finishFact(updated, actor.userId);
      return updated;
    });
  }

  async abort(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.#operation(ref.sessionId, 'abort', actor, async (w) => {
      const session = await this.#checked(ref, 'abort');
      const attempt = await this.#begin(w, session, 'abort', actor);
      return this.#recovery.abort(w, session, attempt, actor.userId);
    });
  }

  // ── Recovery ──────────────────────────────────────────────────────────────────────────────────

  /** Applies `recoveryDecision` to every active session no live executor holds (start-up, watchdog). */
  recover(): Promise<RecoveryOutcome[]> {
    return this.#recovery.recoverAll();
  }

  startWatchdog(intervalMs = 5000): void {
    this.#recovery.startWatchdog(intervalMs);
  }

  /** Stops the watchdog and releases this replica's windows, without touching the machines. */
  async close(): Promise<void> {
    this.#recovery.stopWatchdog();
    await this.#executor.close();
  }

  /** When writes resume by themselves, for a session frozen now (for the countdown). */
  async freezeDeadline(sessionId: string): Promise<Date | undefined> {
    const attempt = await this.#d.journal.latestCutover(sessionId);
    if (!attempt?.frozenAt || attempt.freezeBudgetSeconds === null || attempt.resumedAt) return undefined;
    return new Date(attempt.frozenAt.getTime() + attempt.freezeBudgetSeconds * 1000);
  }

  // ── The switch and the undo ───────────────────────────────────────────────────────────────────

  async #switch(w: Window, approval: GateRequest): Promise<Session> {
    const journal = this.#d.journal;
    const session = await this.#d.sessions.require(w.sessionId);
    const entries = await journal.entries(session.id);
    const latest = latestAttempt(entries);
    if (session.state !== 'frozen' || !latest || latest.kind !== 'cutover') {
      throw new CodedError(ErrorCode.InvalidTransition, 'Cannot switch: writes are not frozen.');
    }
    const attempt = latest.attempt;
    w.attempt = attempt;
    // Never switch without the fence (and the sequences) of this very freeze.
    if (latest.status('fence') !== 'done' || latest.status('sequences') !== 'done') {
      throw new CodedError(ErrorCode.GateRefused, 'Cannot switch: the fence is not proven for this freeze yet.');
    }
    if (hasSwitched(entries)) throw new CodedError(ErrorCode.InvalidTransition, 'This session already switched.');
    const record = await journal.attempt(session.id, attempt);
    if (!this.#executor.isHeld(w) && record?.frozenAt && record.freezeBudgetSeconds !== null) {
      // A switch on a window opened after a restart: the freeze's budget still counts from the freeze.
      this.#executor.hold(w, record.frozenAt, record.freezeBudgetSeconds, () => this.#budgetExpired(w));
    }
    const actor = approval.approvedBy ?? BOT;
    const switchBy: GateAttribution = {
      ...attribution(approval, { userId: actor }),
      // Ahead of time means approved before the freeze began, whoever's poll ran it.
      aheadOfTime: !!(approval.approvedAt && record?.frozenAt && approval.approvedAt < record.frozenAt),
    };
    await journal.update(session.id, attempt, { approvals: { ...record?.approvals, switch: switchBy } });
    if (this.#executor.remaining(w) <= 0) {
      await this.#undo(w, session, { repointToSource: false, reason: this.#budgetReason(w, 'before the switch'), level: 'warning' });
      throw this.#mark(budgetExceeded(w.machines.settings.freezeBudgetSeconds));
    }
    const steps = gateSteps(session.strategy, 'switch');
    let parameters;
    try {
      parameters = (await this.#runner.run(this.#context(w, session, attempt), steps)).parameters;
    } catch (error) {
      const budget = isCode(error, ErrorCode.FreezeBudgetExceeded);
      const repointStarted = (latestAttempt(await journal.entries(session.id))?.status('repoint') ?? 'pending') !== 'pending';
      await this.#closeGate(approval, 'failed');
      await this.#undo(w, session, {
        repointToSource: repointStarted,
        reason: budget ? this.#budgetReason(w, 'before the switch completed') : `the switch failed: ${asCodedError(error).message}`,
        level: budget ? 'warning' : 'error',
      });
      throw this.#mark(budget ? error : stepFailed('switch', error));
    }
    this.#executor.release(w);
    const switched = await this.#transition(session.id, 'switch');
    await this.#closeGate(approval, 'executed');
    await this.#recordSwitched(switched, attempt, actor, parameters, false);
    return switched;
  }

  async #recordSwitched(session: Session, attempt: number, actor: string, parameters: Awaited<ReturnType<SessionMachines['targetParameters']>> | undefined, recovered: boolean): Promise<void> {
    const record = await this.#d.journal.attempt(session.id, attempt);
    const ms = record ? frozenMs(record) : null;
    this.#log.info({ session: session.id, attempt, frozenMs: ms, recovered }, 'switched');
    await this.#d.facts.record(session, {
      type: 'switched',
      actor,
      attempt,
      strategy: session.strategy,
      frozenMs: ms,
      aheadOfTime: record?.approvals?.switch?.aheadOfTime === true,
      targetDatabase: parameters?.database ?? (await this.#targetDatabase(session)),
      recovered,
      ...(parameters
        ? {
            parameters: {
              host: parameters.host,
              port: parameters.port,
              database: parameters.database,
              user: parameters.user,
              maskedPassword: maskSecret(parameters.password.reveal()),
              sslmode: parameters.sslmode,
            },
          }
        : {}),
    });
  }

  async #targetDatabase(session: Session): Promise<string> {
    return this.#withMachines(session, async (m) => m.settings.targetDatabase).catch(() => 'the target');
  }

  /** Puts everything back on the source and resumes writes there, recording what happened. */
  async #undo(
    w: Window,
    session: Session,
    options: { repointToSource: boolean; reason: string; level: 'info' | 'warning' | 'error'; actor?: Actor },
  ): Promise<Session> {
    const actor = options.actor?.userId ?? BOT;
    const attempt = w.attempt ?? (await this.#begin(w, session, 'cutover', { userId: actor }));
    const { resumed, problems } = await this.#runner.undoFreeze({ ...this.#context(w, session, attempt), repointToSource: options.repointToSource }, options.reason);
    this.#executor.release(w);
    if (!resumed) {
      this.#log.error({ session: session.id, problems }, 'undo failed: writes may still be frozen');
      await this.#d.facts.record(session, { type: 'resume_failed', actor, reason: options.reason, problems });
      throw this.#mark(new CodedError(ErrorCode.FreezeFailed, `Writes could not be resumed: ${problems.join('; ')}`));
    }
    const current = await this.#d.sessions.require(session.id);
    const updated = current.state === 'frozen' ? await this.#transition(session.id, 'resume') : current;
    this.#log.warn({ session: session.id, reason: options.reason, problems }, 'writes resumed on the source');
    await this.#d.facts.record(updated, { type: 'resumed', actor, reason: options.reason, problems, level: problems.length ? 'error' : options.level });
    return updated;
  }

  async #budgetExpired(w: Window): Promise<void> {
    const session = await this.#d.sessions.require(w.sessionId);
    if (session.state !== 'frozen') return;
    const decision = recoveryDecision(await this.#d.journal.entries(session.id));
    if (decision.action !== 'undo-freeze') return;
    w.attempt = decision.attempt;
    await this.#undo(w, session, { repointToSource: decision.repointToSource, reason: this.#budgetReason(w, 'before the switch'), level: 'warning' });
  }

  #budgetReason(w: Window, when: string): string {
    return `the freeze budget of ${w.machines.settings.freezeBudgetSeconds} s ran out ${when}`;
  }

  async #finishFact(session: Session, actor: string): Promise<void> {
    await this.#d.facts.record(session, { type: 'finished', actor, summary: summaryOf(await this.#d.journal.latestCutover(session.id)) });
  }

  // ── Helpers ───────────────────────────────────────────────────────────────────────────────────

  /**
   * Runs an operation in the session's window; a failure nobody recorded yet (the machines refused,
   * DigitalOcean failed) becomes one `failed` fact. Refusals of the click itself record nothing.
   */
  async #operation<T>(sessionId: string, action: string, actor: Actor, work: (w: Window) => Promise<T>, busyMessage?: string): Promise<T> {
    try {
      return await this.#executor.exclusive(sessionId, work, busyMessage);
    } catch (error) {
      const coded = asCodedError(error);
      const nothingHappened = [ErrorCode.ExecutorBusy, ErrorCode.SessionConflict, ErrorCode.InvalidTransition, ErrorCode.SessionNotFound].includes(coded.code as never);
      if (!this.reported(error) && !nothingHappened) {
        const session = await this.#d.sessions.get(sessionId);
        if (session) await this.#d.facts.record(session, { type: 'failed', actor: actor.userId, action, message: coded.message, code: coded.code });
        this.#mark(error);
      }
      throw error;
    }
  }

  #mark<E>(error: E): E {
    if (typeof error === 'object' && error !== null) this.#reported.add(error);
    return error;
  }

  #context(w: Window, session: Session, attempt: number): StepContext {
    return { session, attempt, machines: w.machines, remainingMs: () => this.#executor.remaining(w) };
  }

  async #begin(w: Window, session: Session, kind: AttemptKind, actor: Actor): Promise<number> {
    w.attempt = await this.#d.journal.begin(session.id, kind, actor.userId);
    return w.attempt;
  }

  /** Another replica holds the freeze: with the switch approved, its poll runs the switch; wait for that outcome. */
  async #awaitHolderSwitch(sessionId: string, busy: unknown): Promise<Session> {
    const deadline = (await this.freezeDeadline(sessionId))?.getTime() ?? this.#clock.now().getTime();
    for (;;) {
      const session = await this.#d.sessions.require(sessionId);
      if (session.state === 'switched') return session;
      if (session.state !== 'frozen') {
        throw this.#mark(new CodedError(ErrorCode.CutoverStepFailed, 'The replica holding the freeze did not switch; writes went back to the source. Look at the status message.'));
      }
      if (!(await this.#validSwitchApproval(sessionId)) || Date.now() > deadline + 5000) throw busy;
      await new Promise((resolve) => setTimeout(resolve, this.#d.approvalPollMs ?? 200));
    }
  }

  async #validSwitchApproval(sessionId: string): Promise<GateRequest | undefined> {
    return this.#d.approvals.validApproval(sessionId, 'switch', this.#clock.now()).catch((err: unknown) => {
      this.#log.warn({ err, session: sessionId }, 'approval check failed');
      return undefined;
    });
  }

  /** The gate request a click approved (still open), if any. */
  async #openApproval(sessionId: string, gate: Gate): Promise<GateRequest | undefined> {
    return (await this.#d.approvals.open(sessionId))[gate];
  }

  async #closeGate(request: GateRequest | undefined, status: 'executed' | 'failed'): Promise<void> {
    if (request) await this.#d.approvals.close(request.id, status, this.#clock.now());
  }

  /** The session, if the click was based on its current version and the event is allowed now. */
  async #checked(ref: SessionRef, event: SessionEvent): Promise<Session> {
    const session = await this.#d.sessions.require(ref.sessionId);
    if (session.version !== ref.expectedVersion) {
      throw new CodedError(ErrorCode.SessionConflict, 'Someone else changed this session a moment ago; look at the updated status message and try again.', {
        details: { sessionId: session.id, expectedVersion: ref.expectedVersion, actualVersion: session.version },
      });
    }
    const allowed = allowedTransition(session.state, event);
    if (!allowed.ok) {
      throw new CodedError(ErrorCode.InvalidTransition, `Cannot ${event.replace('_', ' ')}: ${allowed.reason}.`, { details: { from: session.state, event } });
    }
    return session;
  }

  /** Applies `event` on the latest version (this replica holds the executor lock; gate steps only bump the version). */
  async #transition(sessionId: string, event: SessionEvent, patch: { doMigrationId?: string } = {}): Promise<Session> {
    for (let tries = 0; ; tries += 1) {
      const current = await this.#d.sessions.require(sessionId);
      try {
        return await this.#d.sessions.transition(sessionId, current.version, event, patch);
      } catch (error) {
        if (isCode(error, ErrorCode.SessionConflict) && tries < 5) continue;
        throw error;
      }
    }
  }

  async #withMachines<T>(session: Session, work: (m: SessionMachines) => Promise<T>): Promise<T> {
    const m = await this.#d.machines(session);
    try {
      return await work(m);
    } finally {
      await m.close().catch(() => undefined);
    }
  }
}

function attribution(request: GateRequest | undefined, actor: Actor): GateAttribution {
  if (!request) return { requestedBy: actor.userId, approvedBy: actor.userId };
  return {
    requestedBy: request.requestedBy,
    ...(request.approvedBy ? { approvedBy: request.approvedBy } : {}),
    ...(request.approvedAt ? { at: request.approvedAt.toISOString() } : {}),
  };
}

function isCode(error: unknown, code: ErrorCode): boolean {
  return error instanceof CodedError && error.code === code;
}

function stepFailed(step: string, error: unknown): CodedError {
  const cause = asCodedError(error);
  return new CodedError(ErrorCode.CutoverStepFailed, `The ${step} failed and was put back: ${cause.message}`, {
    cause: error,
    details: { step, cause: cause.code },
  });
}
