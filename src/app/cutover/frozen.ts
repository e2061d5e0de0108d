/**
 * What the holder of a freeze does: run the approved switch (the switch gate's steps), put everything
 * back on the source (the undo), and react to the freeze budget running out. Each outcome is recorded
 * once, as a fact.
 */
import { frozenMs, type GateAttribution, type Verification } from '../../domain/attempt.js';
import { attemptSteps, gateSteps, hasSwitched, latestAttempt, recoveryDecision, splitAtResume, type CutoverStep } from '../../domain/cutover-plan.js';
import type { GateRequest } from '../../domain/gates.js';
import type { Clock } from '../../domain/ports/clock.js';
import type { SessionMachines } from '../../domain/ports/machines.js';
import type { ApprovalRepository, JournalRepository, SessionRepository } from '../../domain/ports/stores.js';
import type { Session } from '../../domain/session.js';
import { CodedError, ErrorCode, asCodedError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { maskSecret } from '../../secret.js';
import { BOT, type FactRecorder } from '../facts.js';
import type { Actor } from '../session-operations.js';
import { isCode, stepFailed, transitionLatest, type ReportedErrors } from './common.js';
import type { Executor, Window } from './executor.js';
import type { StepRunner } from './runner.js';
import { budgetExceeded } from './steps.js';

export interface FrozenWritesDeps {
  sessions: SessionRepository;
  journal: JournalRepository;
  approvals: ApprovalRepository;
  executor: Executor;
  runner: StepRunner;
  facts: FactRecorder;
  reported: ReportedErrors;
  clock: Clock;
  log: Logger;
  /** The target database applications move to (for the switch fact, when no parameters were handed out). */
  targetDatabase(session: Session): Promise<string>;
}

/** The approval's people, as journaled and summarised. */
export function attribution(request: GateRequest | undefined, actor: Actor): GateAttribution {
  if (!request) return { requestedBy: actor.userId, approvedBy: actor.userId };
  return {
    requestedBy: request.requestedBy,
    ...(request.approvedBy ? { approvedBy: request.approvedBy } : {}),
    ...(request.approvedAt ? { at: request.approvedAt.toISOString() } : {}),
  };
}

export class FrozenWrites {
  readonly #d: FrozenWritesDeps;

  constructor(deps: FrozenWritesDeps) {
    this.#d = deps;
  }

  /**
   * Runs the approved switch in a held freeze. `fenced`: the run that just froze and fenced this very
   * attempt (its approvals journaled before the freeze), so nothing is read back inside the freeze.
   */
  async switch(w: Window, approval: GateRequest, fenced?: { session: Session; attempt: number; frozenAt: Date }): Promise<Session> {
    const { session, attempt } = fenced ?? (await this.#checkFenced(w, approval));
    w.attempt = attempt;
    const actor = approval.approvedBy ?? BOT;
    if (this.#d.executor.remaining(w) <= 0) {
      await this.undo(w, session, { repointToSource: false, reason: this.budgetReason(w, 'before the switch'), level: 'warning' });
      throw this.#d.reported.mark(budgetExceeded(w.machines.settings.freezeBudgetSeconds));
    }
    const { frozen: steps, after } = splitAtResume('cutover', session.strategy, gateSteps(session.strategy, 'switch'));
    let parameters;
    let reverseFrom: string | undefined;
    try {
      ({ parameters, reverseFrom } = await this.#d.runner.run({ session, attempt, machines: w.machines, remainingMs: () => this.#d.executor.remaining(w) }, steps));
    } catch (error) {
      const budget = isCode(error, ErrorCode.FreezeBudgetExceeded) || this.#d.executor.remaining(w) <= 0;
      const repointStarted = (latestAttempt(await this.#d.journal.entries(session.id))?.status('repoint') ?? 'pending') !== 'pending';
      await this.closeGate(approval, 'failed');
      await this.undo(w, session, {
        repointToSource: repointStarted,
        reason: budget ? this.budgetReason(w, 'before the switch completed') : `the switch failed: ${asCodedError(error).message}`,
        level: budget ? 'warning' : 'error',
      });
      throw this.#d.reported.mark(budget ? budgetExceeded(w.machines.settings.freezeBudgetSeconds) : stepFailed('switch', error));
    }
    this.#d.executor.release(w);
    const switched = await transitionLatest(this.#d.sessions, session.id, 'switch');
    await this.closeGate(approval, 'executed');
    await this.recordSwitched(switched, attempt, actor, parameters, false);
    await this.#verifyAtSwitch(w, switched, attempt);
    await this.afterResume(w, switched, attempt, after, reverseFrom);
    return switched;
  }

  /**
   * Both gates approved before anything froze, proxy strategy: freeze → fence with sequences →
   * repoint → resume in one run (`runThrough`), nothing stored, no person and no Slack call while
   * writes wait; the session is `frozen` from just before the freeze. The channel hears the freeze and
   * the switch afterwards. Any failure before the resume on the target puts everything back on the source.
   */
  async runThrough(w: Window, session: Session, attempt: number, gates: { freeze?: GateRequest; switch: GateRequest }, frozenBy: { actor: string; requestedBy: string; approvedBy: string }): Promise<Session> {
    const machines = w.machines;
    const budgetSeconds = machines.settings.freezeBudgetSeconds;
    let frozen = session;
    const ctx = { session, attempt, machines, remainingMs: () => this.#d.executor.remaining(w) };
    const { frozen: steps, after } = splitAtResume('cutover', 'proxy', attemptSteps('cutover', 'proxy').filter((step) => step !== 'preconditions'));
    let reverseFrom: string | undefined;
    try {
      ({ reverseFrom } = await this.#d.runner.runThrough(ctx, steps, async () => {
        // Journaled first, then the state: a session never shows frozen without a freeze in its journal.
        frozen = await this.#d.sessions.transition(session.id, session.version, 'freeze').catch(() => transitionLatest(this.#d.sessions, session.id, 'freeze'));
        this.#d.executor.hold(w, this.#d.clock.now(), budgetSeconds, () => this.budgetExpired(w));
      }));
    } catch (error) {
      if (asCodedError(error).details?.switched === true) {
        this.#d.executor.release(w);
        throw error;
      }
      const budget = isCode(error, ErrorCode.FreezeBudgetExceeded) || this.#d.executor.remaining(w) <= 0;
      const latest = latestAttempt(await this.#d.journal.entries(session.id));
      const failed = attemptSteps('cutover', 'proxy').find((step) => latest?.status(step) === 'failed') ?? 'freeze';
      // The same words as step by step: the freeze, a step after it, or the switch failed.
      const what = failed === 'freeze' ? 'the freeze' : gateSteps('proxy', 'switch').includes(failed) ? 'the switch' : 'a step after the freeze';
      await Promise.all([this.closeGate(gates.freeze, 'failed'), this.closeGate(gates.switch, 'failed')]);
      if (failed !== 'freeze') await this.#d.facts.record(frozen, { type: 'frozen', ...frozenBy, attempt, budgetSeconds });
      await this.undo(w, frozen, {
        // A repoint that was sent may have rewritten the proxy's file even if it failed: put it back.
        repointToSource: (latest?.status('repoint') ?? 'pending') !== 'pending',
        reason: budget ? this.budgetReason(w, 'before the switch completed') : `${what} failed: ${asCodedError(error).message}`,
        level: budget ? 'warning' : 'error',
      });
      throw this.#d.reported.mark(budget ? budgetExceeded(budgetSeconds) : stepFailed(what.replace(/^(the|a) /, ''), error));
    }
    this.#d.executor.release(w);
    const switched = await transitionLatest(this.#d.sessions, session.id, 'switch');
    await Promise.all([this.closeGate(gates.freeze, 'executed'), this.closeGate(gates.switch, 'executed')]);
    await this.#d.facts.record(frozen, { type: 'frozen', ...frozenBy, attempt, budgetSeconds });
    await this.recordSwitched(switched, attempt, gates.switch.approvedBy ?? BOT, undefined, false);
    await this.#verifyAtSwitch(w, switched, attempt);
    await this.afterResume(w, switched, attempt, after, reverseFrom);
    return switched;
  }

  /**
   * The cutover's steps after the resume (replicating back, from `reverseFrom`, the switch point the
   * resume journaled), with writes flowing on the target: a failure is told, never undoes the switch.
   */
  async afterResume(w: Window, session: Session, attempt: number, steps: readonly CutoverStep[], reverseFrom: string | undefined): Promise<void> {
    if (steps.length === 0) return;
    const ctx = { session, attempt, machines: w.machines, remainingMs: () => Number.POSITIVE_INFINITY, ...(reverseFrom ? { reverseFrom } : {}) };
    let back: Readonly<Record<string, unknown>> | undefined;
    try {
      back = (await this.#d.runner.run(ctx, steps)).done.get('replicate_back');
    } catch (error) {
      this.#d.log.error({ err: error, session: session.id }, 'replicating back failed');
      await this.#d.facts.record(session, { type: 'replicated_back', actor: BOT, attempt, outcome: 'failed', reason: asCodedError(error).message });
      return;
    }
    if (back?.replicateBack === 'on') {
      await this.#d.facts.record(session, { type: 'replicated_back', actor: BOT, attempt, outcome: 'on' });
    } else if (back?.replicateBack === 'off') {
      await this.#d.facts.record(session, { type: 'replicated_back', actor: BOT, attempt, outcome: 'off', reason: String(back.reason) });
    }
  }

  /**
   * After the resume: source and target compared as of the snapshots the run exported at the switch
   * point (the source takes no more application writes, the target's new ones are after the snapshot).
   * Recorded on the attempt (Finish looks at it) and told to the channel; a failure to compare is told,
   * never turned into a failed switch.
   */
  async #verifyAtSwitch(w: Window, session: Session, attempt: number): Promise<void> {
    const verifier = w.machines.verifier;
    if (!verifier) return;
    let verification: Verification;
    try {
      const report = await verifier.verify();
      verification = { outcome: report.ok ? 'same' : 'different', tables: report.tables, differing: report.differing };
    } catch (error) {
      verification = { outcome: 'not_run', tables: 0, differing: [], reason: asCodedError(error).message };
    }
    await this.#d.journal.update(session.id, attempt, { verification });
    await this.#d.facts.record(session, { type: 'verified', actor: BOT, attempt, verification });
  }

  /** A switch on its own (a click, the holder's poll, a restart): check the journal proves this freeze's fence, and journal who approved. */
  async #checkFenced(w: Window, approval: GateRequest): Promise<{ session: Session; attempt: number }> {
    const journal = this.#d.journal;
    const session = await this.#d.sessions.require(w.sessionId);
    const entries = await journal.entries(session.id);
    const latest = latestAttempt(entries);
    if (session.state !== 'frozen' || !latest || latest.kind !== 'cutover') {
      throw new CodedError(ErrorCode.InvalidTransition, 'Cannot switch: writes are not frozen.');
    }
    const attempt = latest.attempt;
    // Never switch without the fence (and the sequences) of this very freeze.
    if (latest.status('fence') !== 'done' || latest.status('sequences') !== 'done') {
      throw new CodedError(ErrorCode.GateRefused, 'Cannot switch: the fence is not proven for this freeze yet.');
    }
    if (hasSwitched(entries)) throw new CodedError(ErrorCode.InvalidTransition, 'This session already switched.');
    const record = await journal.attempt(session.id, attempt);
    if (!this.#d.executor.isHeld(w) && record?.frozenAt && record.freezeBudgetSeconds !== null) {
      // A switch on a window opened after a restart: the freeze's budget still counts from the freeze.
      this.#d.executor.hold(w, record.frozenAt, record.freezeBudgetSeconds, () => this.budgetExpired(w));
    }
    const switchBy: GateAttribution = {
      ...attribution(approval, { userId: approval.approvedBy ?? BOT }),
      // Ahead of time means approved before the freeze began, whoever's poll ran it.
      aheadOfTime: !!(approval.approvedAt && record?.frozenAt && approval.approvedAt < record.frozenAt),
    };
    await journal.update(session.id, attempt, { approvals: { ...record?.approvals, switch: switchBy } });
    return { session, attempt };
  }

  async recordSwitched(session: Session, attempt: number, actor: string, parameters: Awaited<ReturnType<SessionMachines['targetParameters']>> | undefined, recovered: boolean): Promise<void> {
    const record = await this.#d.journal.attempt(session.id, attempt);
    const ms = record ? frozenMs(record) : null;
    this.#d.log.info({ session: session.id, attempt, frozenMs: ms, recovered }, 'switched');
    await this.#d.facts.record(session, {
      type: 'switched',
      actor,
      attempt,
      strategy: session.strategy,
      frozenMs: ms,
      predictedFreezeMs: record?.predictedFreezeMs ?? null,
      aheadOfTime: record?.approvals?.switch?.aheadOfTime === true,
      targetDatabase: parameters?.database ?? (await this.#d.targetDatabase(session).catch(() => 'the target')),
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

  /** Puts everything back on the source and resumes writes there, recording what happened. */
  async undo(
    w: Window,
    session: Session,
    options: { repointToSource: boolean; reason: string; level: 'info' | 'warning' | 'error'; actor?: Actor },
  ): Promise<Session> {
    const actor = options.actor?.userId ?? BOT;
    const attempt = w.attempt ?? ((w.attempt = await this.#d.journal.begin(session.id, 'cutover', actor)));
    const { resumed, problems } = await this.#d.runner.undoFreeze({ ...{ session, attempt, machines: w.machines, remainingMs: () => this.#d.executor.remaining(w) }, repointToSource: options.repointToSource }, options.reason);
    this.#d.executor.release(w);
    if (!resumed) {
      this.#d.log.error({ session: session.id, problems }, 'undo failed: writes may still be frozen');
      await this.#d.facts.record(session, { type: 'resume_failed', actor, reason: options.reason, problems });
      throw this.#d.reported.mark(new CodedError(ErrorCode.FreezeFailed, `Writes could not be resumed: ${problems.join('; ')}`));
    }
    const current = await this.#d.sessions.require(session.id);
    const updated = current.state === 'frozen' ? await transitionLatest(this.#d.sessions, session.id, 'resume') : current;
    this.#d.log.warn({ session: session.id, reason: options.reason, problems }, 'writes resumed on the source');
    await this.#d.facts.record(updated, { type: 'resumed', actor, reason: options.reason, problems, level: problems.length ? 'error' : options.level });
    return updated;
  }

  async budgetExpired(w: Window): Promise<void> {
    const session = await this.#d.sessions.require(w.sessionId);
    if (session.state !== 'frozen') return;
    const decision = recoveryDecision(await this.#d.journal.entries(session.id));
    if (decision.action !== 'undo-freeze') return;
    w.attempt = decision.attempt;
    await this.undo(w, session, { repointToSource: decision.repointToSource, reason: this.budgetReason(w, 'before the switch'), level: 'warning' });
  }

  budgetReason(w: Window, when: string): string {
    return `the freeze budget of ${w.machines.settings.freezeBudgetSeconds} s ran out ${when}`;
  }

  async validSwitchApproval(sessionId: string): Promise<GateRequest | undefined> {
    return this.#d.approvals.validApproval(sessionId, 'switch', this.#d.clock.now()).catch((err: unknown) => {
      this.#d.log.warn({ err, session: sessionId }, 'approval check failed');
      return undefined;
    });
  }

  async closeGate(request: GateRequest | undefined, status: 'executed' | 'failed'): Promise<void> {
    if (request) await this.#d.approvals.close(request.id, status, this.#d.clock.now());
  }
}
