/**
 * The cutover engine: what each gate and button does to the machines, in an executor window (one
 * executor per session across replicas), with the plan's steps run and journaled by the runner.
 * Every outcome is recorded once, as a fact, here; the use cases record what people did.
 *
 * Safety. The switch runs only after this attempt's fence and sequence steps are journaled done, and
 * never twice (a completed repoint is only ever followed by a resume). Any failure after the freeze,
 * and the budget running out before the switch completed, put everything back on the source.
 */
import { gateSteps, hasSwitched, latestAttempt, recoveryDecision, type AttemptKind } from '../../domain/cutover-plan.js';
import type { ApprovalBinding } from '../../domain/freeze-prediction.js';
import type { Gate, GateRequest } from '../../domain/gates.js';
import type { Clock } from '../../domain/ports/clock.js';
import type { PreflightItem, SessionMachines } from '../../domain/ports/machines.js';
import type { LagSample } from '../../domain/ports/replication.js';
import type { ApprovalRepository, ExecutorLock, JournalRepository, SessionRepository } from '../../domain/ports/stores.js';
import { transition as allowedTransition, type Session, type SessionEvent } from '../../domain/session.js';
import { CodedError, ErrorCode, asCodedError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { BOT, summaryOf, type FactRecorder } from '../facts.js';
import type { Actor, FinishOptions, PlanStep, SessionOperations, SessionRef } from '../session-operations.js';
import { bindingOf, planOf } from './binding.js';
import { Executor, type Window } from './executor.js';
import { Recovery, type RecoveryOutcome } from './recovery.js';
import { ReportedErrors, isCode, stepFailed, transitionLatest } from './common.js';
import { FrozenWrites, attribution } from './frozen.js';
import { StepRunner } from './runner.js';
import { budgetExceeded, unrecordedOwnMigration, type StepContext } from './steps.js';

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
  readonly #frozen: FrozenWrites;
  /** Errors whose fact was already recorded (the caller must not record another). */
  readonly #reported = new ReportedErrors();

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
    this.#frozen = new FrozenWrites({
      sessions: deps.sessions,
      journal: deps.journal,
      approvals: deps.approvals,
      executor: this.#executor,
      runner: this.#runner,
      facts: deps.facts,
      reported: this.#reported,
      clock: this.#clock,
      log: this.#log,
      targetDatabase: (session) => this.#withMachines(session, async (m) => m.settings.targetDatabase),
    });
    this.#recovery = new Recovery({
      sessions: deps.sessions,
      journal: deps.journal,
      approvals: deps.approvals,
      executor: this.#executor,
      runner: this.#runner,
      clock: this.#clock,
      log: this.#log,
      undo: (w, session, options) => this.#frozen.undo(w, session, options),
      recordSwitch: (session, attempt, actor, parameters) => this.#frozen.recordSwitched(session, attempt, actor, parameters, true),
      afterResume: (w, session, attempt, steps, reverseFrom) => this.#frozen.afterResume(w, session, attempt, steps, reverseFrom),
      finishFact: (session, actor) => this.#finishFact(session, actor),
      mark: (error) => this.#reported.mark(error),
      facts: deps.facts,
      look: (session, work) => this.#withMachines(session, work),
    });
  }

  // ── Operations ────────────────────────────────────────────────────────────────────────────────

  async startMigration(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.#operation(ref.sessionId, 'start', actor, async (w) => {
      const session = await this.#checked(ref, 'migration_started');
      // A start cut short after its PUT left our migration running: adopt it rather than start a second.
      const adopted = await unrecordedOwnMigration(w.machines, session);
      const migrationId = adopted ? adopted.id : (await w.machines.startMigration()).migrationId;
      const updated = await transitionLatest(this.#d.sessions, session.id, 'migration_started', { doMigrationId: migrationId });
      await this.#d.facts.record(updated, { type: 'migration_started', actor: actor.userId, migrationId });
      return updated;
    });
  }

  async plan(session: Session): Promise<PlanStep[]> {
    return this.#withMachines(session, async (m) => planOf(m).map((s) => ({ name: s.name, description: s.description })));
  }

  async preflight(session: Session): Promise<PreflightItem[]> {
    return this.#withMachines(session, (m) => m.preflight());
  }

  async binding(session: Session): Promise<ApprovalBinding> {
    return this.#withMachines(session, (m) => bindingOf(m, session.strategy)).catch((error: unknown) => ({
      planHash: 'unknown',
      lagBytes: null,
      sourceLsn: null,
      predictedFreezeMs: null,
      unknown: asCodedError(error).message,
    }));
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
      // A switch approved ahead of time is read before writes stop: bound to this run, checked with the freeze's.
      const ahead = await this.#frozen.validSwitchApproval(session.id);
      let predicted: number | null;
      try {
        await this.#runner.run(ctx, [pre!]);
        predicted = await this.#checkBound(w.machines, session, [gate, ahead]);
      } catch (error) {
        await journal.update(session.id, attempt, { outcome: 'refused', endedAt: this.#clock.now() });
        await this.#frozen.closeGate(gate, 'failed');
        await this.#d.facts.record(session, { type: 'freeze_refused', actor: actor.userId, reason: asCodedError(error).message });
        throw this.#reported.mark(error);
      }
      await journal.update(session.id, attempt, {
        ...(predicted !== null ? { predictedFreezeMs: predicted } : {}),
        ...(ahead ? { approvals: { freeze: freezeBy, switch: { ...attribution(ahead, actor), aheadOfTime: true } } } : {}),
      });
      const frozenBy = { actor: actor.userId, requestedBy: freezeBy.requestedBy ?? actor.userId, approvedBy: freezeBy.approvedBy ?? actor.userId };
      // Both gates passed before anything froze: one run, nothing slow while writes wait.
      if (ahead && session.strategy === 'proxy') return this.#frozen.runThrough(w, session, attempt, { ...(gate ? { freeze: gate } : {}), switch: ahead }, frozenBy);
      let frozenAt: Date;
      try {
        frozenAt = (await this.#runner.run(ctx, [freeze!])).frozenAt ?? this.#clock.now();
      } catch (error) {
        await this.#frozen.closeGate(gate, 'failed');
        // The freeze may have partly taken effect: put it back.
        await this.#frozen.undo(w, session, { repointToSource: false, reason: `the freeze failed: ${asCodedError(error).message}`, level: 'error' });
        throw this.#reported.mark(stepFailed('freeze', error));
      }
      this.#executor.hold(w, frozenAt, w.machines.settings.freezeBudgetSeconds, () => this.#frozen.budgetExpired(w));
      // The version read at the click is almost always still current: one round trip, not three.
      session = await this.#d.sessions.transition(session.id, session.version, 'freeze').catch(() => transitionLatest(this.#d.sessions, session.id, 'freeze'));
      // The gate closes while the fence runs; the fact's audit row is written first (one round trip;
      // its thread line is posted later and never holds the freeze).
      const closing = this.#frozen.closeGate(gate, 'executed');
      await this.#d.facts.record(session, { type: 'frozen', ...frozenBy, attempt, budgetSeconds: w.machines.settings.freezeBudgetSeconds });
      const fenced = { session, attempt, frozenAt };
      try {
        await Promise.all([this.#runner.run(ctx, afterFreeze), closing]);
      } catch (error) {
        // A fence or copy cut short by the budget is the budget running out, whatever the step says.
        const budget = isCode(error, ErrorCode.FreezeBudgetExceeded) || this.#executor.remaining(w) <= 0;
        await this.#frozen.undo(w, session, {
          repointToSource: false,
          reason: budget ? this.#frozen.budgetReason(w, 'before the switch') : `a step after the freeze failed: ${asCodedError(error).message}`,
          level: budget ? 'warning' : 'error',
        });
        throw this.#reported.mark(budget ? budgetExceeded(w.machines.settings.freezeBudgetSeconds) : stepFailed('freeze', error));
      }
      // Gate 2 ahead of time: switch at once, so the freeze lasts only as long as the machines need.
      if (ahead) return this.#frozen.switch(w, ahead, fenced);
      const approvedMeanwhile = await this.#frozen.validSwitchApproval(session.id);
      if (approvedMeanwhile) return this.#frozen.switch(w, approvedMeanwhile);
      const secondsLeft = Math.max(0, Math.round(this.#executor.remaining(w) / 1000));
      await this.#d.facts.record(session, { type: 'awaiting_switch', actor: BOT, attempt, secondsLeft });
      this.#executor.poll(
        w,
        this.#d.approvalPollMs ?? 200,
        async () => (await this.#frozen.validSwitchApproval(session.id)) !== undefined,
        async () => {
          const valid = await this.#frozen.validSwitchApproval(session.id);
          if (valid) await this.#frozen.switch(w, valid).catch((err: unknown) => this.#log.warn({ err, session: session.id }, 'switch after approval failed'));
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
          const approval = await this.#frozen.validSwitchApproval(ref.sessionId);
          if (!approval) throw new CodedError(ErrorCode.GateRefused, 'The switch has not been approved (or the approval expired).');
          return this.#frozen.switch(w, approval);
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
      return this.#frozen.undo(w, session, {
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

  async finish(ref: SessionRef, actor: Actor, options: FinishOptions = {}): Promise<Session> {
    return this.#operation(ref.sessionId, 'finish', actor, async (w) => {
      const session = await this.#checked(ref, 'finish');
      await this.#checkVerified(session, actor, options);
      const attempt = await this.#begin(w, session, 'finish', actor);
      await this.#runner.run(this.#context(w, session, attempt), ['stop_migration']);
      const updated = await transitionLatest(this.#d.sessions, session.id, 'finish');
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

  /** Default every second: a dead holder's freeze must be undone well within any freeze budget. */
  startWatchdog(intervalMs = 1000): void {
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
      if (!this.#reported.has(error) && !nothingHappened) {
        const session = await this.#d.sessions.get(sessionId);
        if (session) await this.#d.facts.record(session, { type: 'failed', actor: actor.userId, action, message: coded.message, code: coded.code });
        this.#reported.mark(error);
      }
      throw error;
    }
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
        throw this.#reported.mark(new CodedError(ErrorCode.CutoverStepFailed, 'The replica holding the freeze did not switch; writes went back to the source. Look at the status message.'));
      }
      if (!(await this.#frozen.validSwitchApproval(sessionId)) || this.#clock.now().getTime() > deadline + 5000) throw busy;
      await new Promise<void>((resolve) => this.#clock.setTimer(this.#d.approvalPollMs ?? 200, resolve));
    }
  }

  /**
   * Just before freezing: the plan must be the one each approval was given on, and the predicted
   * freeze must fit in the budget. Resolves to the predicted freeze (ms), null when it cannot be told.
   */
  async #checkBound(machines: SessionMachines, session: Session, approvals: (GateRequest | undefined)[]): Promise<number | null> {
    const now = await bindingOf(machines, session.strategy);
    for (const approval of approvals) {
      const given = approval?.binding;
      if (approval && given && given.planHash !== 'unknown' && given.planHash !== now.planHash) {
        throw new CodedError(
          ErrorCode.GateRefused,
          `The plan changed since <@${approval.approvedBy ?? approval.requestedBy}> approved the ${approval.gate} (the profile or the proxy is not what it was): look at the plan (\`/migrate start ${session.profile} --dry-run\`), then request and approve it again.`,
          { details: { gate: approval.gate, approvedOn: given.planHash, now: now.planHash } },
        );
      }
    }
    const budgetMs = machines.settings.freezeBudgetSeconds * 1000;
    if (now.predictedFreezeMs !== null && now.predictedFreezeMs > budgetMs) {
      throw new CodedError(
        ErrorCode.GateRefused,
        `The predicted freeze is ${Math.round(now.predictedFreezeMs)} ms, more than the budget of ${machines.settings.freezeBudgetSeconds} s (a long write transaction on the source, or a slow replication): nothing was frozen.`,
        { details: { predictedFreezeMs: now.predictedFreezeMs, budgetMs } },
      );
    }
    return now.predictedFreezeMs;
  }

  /** Finish only when the switch point's data matched, or someone acknowledged the differences (recorded). */
  async #checkVerified(session: Session, actor: Actor, options: FinishOptions): Promise<void> {
    const cutover = await this.#d.journal.latestCutover(session.id);
    const v = cutover?.verification;
    if (!cutover || v?.outcome !== 'different' || v.acknowledgedBy) return;
    const tables = v.differing.map((d) => d.table).join(', ');
    if (!options.acknowledgeDifferences) {
      throw new CodedError(
        ErrorCode.GateRefused,
        `The verification at the switch point found differences in ${tables}: Finish would stop DigitalOcean's migration on data that does not match. Look at those tables; \`/migrate finish --acknowledge-differences\` finishes anyway.`,
        { details: { differing: tables } },
      );
    }
    await this.#d.journal.update(session.id, cutover.attempt, { verification: { ...v, acknowledgedBy: actor.userId } });
  }

  /** The gate request a click approved (still open), if any. */
  async #openApproval(sessionId: string, gate: Gate): Promise<GateRequest | undefined> {
    return (await this.#d.approvals.open(sessionId))[gate];
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
  async #withMachines<T>(session: Session, work: (m: SessionMachines) => Promise<T>): Promise<T> {
    const m = await this.#d.machines(session);
    try {
      return await work(m);
    } finally {
      await m.close().catch(() => undefined);
    }
  }
}
