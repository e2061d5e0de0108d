/**
 * Recovery after a crash or restart, and the attempts that complete the same way whether a person
 * asked for them or recovery found them half done (rollback, abort, finish): `recoveryDecision` reads
 * the journal, and the runner runs the attempt's remaining steps from the same plan.
 */
import {
  attemptSteps,
  gateSteps,
  latestAttempt,
  recoveryDecision,
  remainingSteps,
  reverseSwitchPoint,
  splitAtResume,
  type CutoverStep,
  type RecoveryDecision,
  type JournalEntry,
  type SettledState,
} from '../../domain/cutover-plan.js';
import type { Clock } from '../../domain/ports/clock.js';
import type { SessionMachines, TargetParameters } from '../../domain/ports/machines.js';
import type { ApprovalRepository, JournalRepository, SessionRepository } from '../../domain/ports/stores.js';
import type { Session, SessionEvent } from '../../domain/session.js';
import { asCodedError, CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import { BOT, type FactRecorder } from '../facts.js';
import type { Actor } from '../session-operations.js';
import type { Executor, Window } from './executor.js';
import { observeProxy, transitionLatest } from './common.js';
import type { StepRunner } from './runner.js';
import { retry, unrecordedOwnMigration, type StepContext } from './steps.js';

/** A `created` session whose start died after its PUT: DigitalOcean's migration runs, so the session adopts it. */
export interface StartRecovery {
  action: 'adopt-migration';
  /** Set once adopted. */
  migrationId?: string;
  settle: 'syncing';
  reason: string;
}

export interface RecoveryOutcome {
  sessionId: string;
  decision: RecoveryDecision | StartRecovery;
  result: 'applied' | 'busy' | 'failed';
  error?: string;
}

/** How often a `created` session without a migration id is looked up at DigitalOcean for adoption. */
const ADOPT_LOOK_MS = 30_000;
/** How long past its budget a freeze held by a live process may last before it is reported. */
const OVERDUE_GRACE_MS = 10_000;

export interface RecoveryDeps {
  sessions: SessionRepository;
  journal: JournalRepository;
  approvals: ApprovalRepository;
  executor: Executor;
  runner: StepRunner;
  facts: FactRecorder;
  clock: Clock;
  log: Logger;
  undo(w: Window, session: Session, options: { repointToSource: boolean; reason: string; level: 'warning'; actor?: Actor }): Promise<Session>;
  recordSwitch(session: Session, attempt: number, actor: string, parameters: TargetParameters | undefined): Promise<void>;
  /** The cutover's steps after the resume (replicating back): told, never undoing the switch. */
  afterResume(w: Window, session: Session, attempt: number, steps: readonly CutoverStep[], reverseFrom: string | undefined): Promise<void>;
  finishFact(session: Session, actor: string): Promise<void>;
  /** Marks an error whose fact is recorded, so the caller records no second one. */
  mark<E>(error: E): E;
  /** Runs `work` on the session's machines outside any window (a look that changes nothing). */
  look<T>(session: Session, work: (machines: SessionMachines) => Promise<T>): Promise<T>;
}

/** The cutover attempt whose executor died during its preconditions (nothing was frozen), if any. */
function interruptedBeforeFreeze(journal: readonly JournalEntry[]): number | undefined {
  const latest = latestAttempt(journal);
  if (latest?.kind !== 'cutover' || latest.status('freeze') !== 'pending') return undefined;
  const pre = latest.status('preconditions');
  return pre === 'started' || pre === 'done' ? latest.attempt : undefined;
}

/** Whether the journal shows work left: a step to complete, a state to settle, or a cutover interrupted before its freeze. */
function needsWork(session: Session, decision: RecoveryDecision, journal: readonly JournalEntry[]): boolean {
  if (decision.action !== 'none') return true;
  if (settlingEvent(session, decision.settle)) return true;
  return interruptedBeforeFreeze(journal) !== undefined;
}

/** The transition that brings a session in line with what the journal proves, if it is not yet. */
function settlingEvent(session: Session, settle: SettledState): SessionEvent | undefined {
  if (settle === 'syncing' && session.state === 'frozen') return 'resume';
  if (settle === 'switched' && session.state === 'frozen') return 'switch';
  if (settle === 'rolled_back' && session.state === 'switched') return 'rollback';
  if (settle === 'finished' && session.state === 'switched') return 'finish';
  if (settle === 'aborted' && session.state !== 'switched') return 'abort';
  return undefined;
}

export class Recovery {
  readonly #d: RecoveryDeps;
  #watchdog: NodeJS.Timeout | undefined;
  /** When each `created` session was last looked up at DigitalOcean (the look is a DO call: rationed). */
  readonly #adoptLooks = new Map<string, number>();
  /** Freezes already reported as outliving their budget (`session:attempt`), so each is reported once. */
  readonly #overdueReported = new Set<string>();

  constructor(deps: RecoveryDeps) {
    this.#d = deps;
  }

  /**
   * Reads the journal of every active session and applies `recoveryDecision`. Sessions another live
   * replica holds (lock busy) and sessions this replica holds are left alone. Safe on every replica.
   */
  async recoverAll(): Promise<RecoveryOutcome[]> {
    const outcomes: RecoveryOutcome[] = [];
    const active = await this.#d.sessions.listActive();
    this.#forgetEnded(active);
    // One read for every session's latest attempt: a pass over settled sessions costs two queries.
    const latest = await this.#d.journal.latestAttemptEntries(active.map((s) => s.id));
    for (const session of active) {
      if (this.#d.executor.isOpen(session.id)) continue;
      const adopted = await this.#adoptStarted(session);
      if (adopted) outcomes.push(adopted);
      const entries = latest.get(session.id) ?? [];
      let decision = recoveryDecision(entries);
      if (!needsWork(session, decision, entries)) continue;
      try {
        // Decided again under the lock: another replica may have recovered it since the first read.
        const applied = await this.#d.executor.exclusive(session.id, async (w) => {
          const current = await this.#d.sessions.require(session.id);
          const now = await this.#d.journal.entries(session.id);
          decision = recoveryDecision(now);
          if (!needsWork(current, decision, now)) return false;
          if (decision.action === 'undo-freeze') decision = recoveryDecision(now, await observeProxy(w.machines));
          await this.#apply(w, current, decision);
          return true;
        });
        if (applied) outcomes.push({ sessionId: session.id, decision, result: 'applied' });
      } catch (error) {
        const coded = asCodedError(error);
        const busy = coded.code === ErrorCode.ExecutorBusy;
        if (!busy) this.#d.log.error({ err: error, session: session.id, decision: decision.action }, 'recovery failed');
        else if (session.state === 'frozen') await this.#reportOverdue(session.id);
        outcomes.push({ sessionId: session.id, decision, result: busy ? 'busy' : 'failed', error: coded.message });
      }
    }
    return outcomes;
  }

  /** Drops what is remembered about sessions no longer `created` (looks) or `frozen` (reports). */
  #forgetEnded(active: readonly Session[]): void {
    const created = new Set(active.filter((s) => s.state === 'created').map((s) => s.id));
    const frozen = new Set(active.filter((s) => s.state === 'frozen').map((s) => s.id));
    for (const id of this.#adoptLooks.keys()) if (!created.has(id)) this.#adoptLooks.delete(id);
    for (const key of this.#overdueReported) if (!frozen.has(key.split(':')[0]!)) this.#overdueReported.delete(key);
  }

  /**
   * A live process holds the freeze (its lock is taken) past the budget and a grace: its own budget
   * timer should have resumed writes by now, so it is stuck. Logged as an error once per freeze.
   */
  async #reportOverdue(sessionId: string): Promise<void> {
    const attempt = await this.#d.journal.latestCutover(sessionId);
    if (!attempt?.frozenAt || attempt.freezeBudgetSeconds === null || attempt.resumedAt) return;
    const deadline = attempt.frozenAt.getTime() + attempt.freezeBudgetSeconds * 1000 + OVERDUE_GRACE_MS;
    const key = `${sessionId}:${attempt.attempt}`;
    if (this.#d.clock.now().getTime() <= deadline || this.#overdueReported.has(key)) return;
    this.#overdueReported.add(key);
    this.#d.log.error(
      { session: sessionId, attempt: attempt.attempt, frozenAt: attempt.frozenAt, budgetSeconds: attempt.freezeBudgetSeconds },
      'writes are frozen past their budget and the process holding the freeze is alive but has not resumed them: check it',
    );
  }

  /**
   * A `created` session without a migration id whose start died after the PUT: adopts DigitalOcean's
   * migration if this session started it (see `unrecordedOwnMigration`). Looked at without the lock
   * first, so a start under way elsewhere is never blocked: it sends its PUT only under the lock. A
   * session with nothing to adopt stays `created`, and a retried `/migrate start` continues it.
   */
  async #adoptStarted(session: Session): Promise<RecoveryOutcome | undefined> {
    if (session.state !== 'created' || session.doMigrationId !== null) return undefined;
    const now = this.#d.clock.now().getTime();
    if (now - (this.#adoptLooks.get(session.id) ?? Number.NEGATIVE_INFINITY) < ADOPT_LOOK_MS) return undefined;
    this.#adoptLooks.set(session.id, now);
    const reason = "the bot stopped while starting DigitalOcean's migration, which runs: this session adopts it";
    try {
      if (!(await this.#d.look(session, (m) => unrecordedOwnMigration(m, session)))) return undefined;
      const migrationId = await this.#d.executor.exclusive(session.id, async (w) => {
        const current = await this.#d.sessions.require(session.id);
        const migration = await unrecordedOwnMigration(w.machines, current);
        if (!migration) return undefined;
        await this.#d.facts.record(current, { type: 'recovered', actor: BOT, decision: 'adopt-migration', reason });
        const updated = await transitionLatest(this.#d.sessions, current.id, 'migration_started', { doMigrationId: migration.id });
        await this.#d.facts.record(updated, { type: 'migration_started', actor: BOT, migrationId: migration.id });
        return migration.id;
      });
      if (migrationId === undefined) return undefined;
      return { sessionId: session.id, decision: { action: 'adopt-migration', migrationId, settle: 'syncing', reason }, result: 'applied' };
    } catch (error) {
      const coded = asCodedError(error);
      const busy = coded.code === ErrorCode.ExecutorBusy;
      if (!busy) this.#d.log.error({ err: error, session: session.id }, 'adopting the started migration failed');
      return { sessionId: session.id, decision: { action: 'adopt-migration', settle: 'syncing', reason }, result: busy ? 'busy' : 'failed', error: coded.message };
    }
  }

  /**
   * Runs `recoverAll()` every `intervalMs`, so a replica picks up a freeze whose holder died: the
   * holder's lock goes with its store connection, and the next pass undoes the freeze. Writes resume
   * within the budget when the holder dies more than `intervalMs` (plus the undo) before it ends.
   */
  startWatchdog(intervalMs: number): void {
    if (this.#watchdog) return;
    let running = false;
    this.#watchdog = setInterval(() => {
      if (running) return;
      running = true;
      this.recoverAll()
        .catch((err: unknown) => this.#d.log.error({ err }, 'watchdog recovery failed'))
        .finally(() => (running = false));
    }, intervalMs);
    this.#watchdog.unref();
  }

  stopWatchdog(): void {
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  /**
   * Freeze the target, prove the reverse fence, copy the sequences back, repoint to the source, resume
   * there (or lift the source freeze); put back on a failure before the resume. Then, with writes on
   * the source, stop the replication both ways (a failure there is told; ending the session retries it).
   */
  async rollback(w: Window, session: Session, attempt: number, actor: string): Promise<Session> {
    const ctx = this.#context(w, session, attempt);
    const switched = await this.#d.journal.latestCutover(session.id);
    const { frozen: steps, after } = splitAtResume('rollback', session.strategy, remainingSteps(await this.#d.journal.entries(session.id), attempt, 'rollback', session.strategy));
    try {
      // A whole rollback is one run, like the cutover: nothing stored while writes wait on the target.
      const whole = steps.length > 1 && steps[0] === attemptSteps('rollback', session.strategy)[0];
      await (whole ? this.#d.runner.runThrough(ctx, steps) : this.#d.runner.run(ctx, steps));
    } catch (error) {
      const routing = w.machines.routing;
      if (routing) {
        // Put the rollback back: the router may already point to the source (a repoint that took
        // effect and then failed its check), so point it to the target again, then let writes continue there.
        await retry(() => routing.router.repoint(routing.target)).catch((err: unknown) =>
          this.#d.log.error({ err, session: session.id }, 'putting the router back on the target failed'),
        );
        await retry(() => w.machines.freeze.resume()).catch(() => undefined);
        await this.#d.journal.record(session.id, attempt, 'rollback_freeze_target', 'undone');
      }
      await this.#d.facts.record(session, { type: 'failed', actor, action: 'rollback', message: asCodedError(error).message, code: asCodedError(error).code });
      throw this.#d.mark(new CodedError(ErrorCode.CutoverStepFailed, `The rollback failed and was put back: ${asCodedError(error).message}`, { cause: error }));
    }
    const already = session.state === 'rolled_back';
    const updated = await this.#settle(session, 'rolled_back');
    if (!already) {
      const fence = (await this.#d.journal.entries(session.id)).find((e) => e.attempt === attempt && e.step === 'rollback_fence' && e.event === 'done');
      const carriedBack = fence !== undefined && fence.detail?.replicateBack !== 'off';
      await this.#d.facts.record(updated, { type: 'rolled_back', actor, strategy: session.strategy, switchedAt: switched?.switchedAt ?? null, carriedBack });
    }
    await this.#d.runner.run(ctx, after).catch(async (error: unknown) => {
      this.#d.log.error({ err: error, session: session.id }, 'stopping the replication after the rollback failed');
      await this.#d.facts.record(updated, { type: 'failed', actor, action: 'stopping the replication after the rollback', message: `${asCodedError(error).message}; End session tries again`, code: asCodedError(error).code });
    });
    return updated;
  }

  /** Resume on the source if frozen, stop the migration, end the session. */
  async abort(w: Window, session: Session, attempt: number, actor: string): Promise<Session> {
    const entries = await this.#d.journal.entries(session.id);
    const frozen = session.state === 'frozen';
    const decision = recoveryDecision(entries);
    const steps = remainingSteps(entries, attempt, 'abort', session.strategy).filter((s) => frozen || s !== 'unfreeze_source');
    await this.#d.runner.run(
      { ...this.#context(w, session, attempt), repointToSource: decision.action === 'undo-freeze' && decision.repointToSource },
      steps,
    );
    if (frozen) this.#d.executor.release(w);
    const updated = await this.#settle(session, 'aborted');
    await this.#d.facts.record(updated, { type: 'aborted', actor, ...(session.doMigrationId === null ? { noMigrationId: true as const } : {}) });
    return updated;
  }

  async #apply(w: Window, session: Session, decision: RecoveryDecision): Promise<void> {
    this.#d.log.warn({ session: session.id, decision }, 'recovering an interrupted cutover');
    if (decision.action === 'none') {
      await this.#settleRecorded(w, session, decision);
      return;
    }
    w.attempt = decision.attempt;
    await this.#d.facts.record(session, { type: 'recovered', actor: BOT, decision: decision.action, reason: decision.reason });
    switch (decision.action) {
      case 'undo-freeze':
        await this.#d.undo(w, session, { repointToSource: decision.repointToSource, reason: `after a restart I found writes frozen without a completed switch (${decision.reason})`, level: 'warning' });
        break;
      case 'complete-switch': {
        // Seen, not journaled (a run journals after its resume): recorded, so the repoint is not sent twice.
        if (decision.repointSeen) await this.#d.journal.record(session.id, decision.attempt, 'repoint', 'done', { seen: 'the proxy points to the target' });
        const entries = await this.#d.journal.entries(session.id);
        const { frozen: steps, after } = splitAtResume(
          'cutover',
          session.strategy,
          remainingSteps(entries, decision.attempt, 'cutover', session.strategy).filter((s) => gateSteps(session.strategy, 'switch').includes(s)),
        );
        let updated = session;
        let reverseFrom = reverseSwitchPoint(entries, decision.attempt);
        if (steps.length > 0 || session.state !== 'switched') {
          const ran = await this.#d.runner.run(this.#context(w, session, decision.attempt), steps);
          reverseFrom ??= ran.reverseFrom;
          await this.#d.journal.update(session.id, decision.attempt, { outcome: 'switched (recovered)' });
          updated = await this.#settle(session, 'switched');
          await this.#d.recordSwitch(updated, decision.attempt, BOT, ran.parameters);
        }
        await this.#d.afterResume(w, updated, decision.attempt, after, reverseFrom);
        break;
      }
      case 'complete-rollback':
        await this.rollback(w, session, decision.attempt, BOT);
        break;
      case 'complete-finish': {
        await this.#d.runner.run(this.#context(w, session, decision.attempt), ['stop_migration']);
        await this.#d.finishFact(await this.#settle(session, 'finished'), BOT);
        break;
      }
      case 'complete-abort':
        await this.abort(w, session, decision.attempt, BOT);
        break;
    }
    await this.#closeGates(session.id, decision.settle);
  }

  /**
   * The journal proves an outcome the session does not show yet (the process died between the last
   * step and its transition): settle the state and record the outcome once. A cutover that died
   * before its freeze is closed as interrupted, so its approval does not block the next request.
   */
  async #settleRecorded(w: Window, session: Session, decision: Extract<RecoveryDecision, { action: 'none' }>): Promise<void> {
    const interrupted = interruptedBeforeFreeze(await this.#d.journal.entries(session.id));
    if (interrupted !== undefined) {
      await this.#d.journal.record(session.id, interrupted, 'preconditions', 'failed', { code: 'interrupted', message: 'the bot stopped before the freeze' });
      await this.#closeGates(session.id, 'syncing');
      await this.#d.facts.record(session, { type: 'freeze_refused', actor: BOT, reason: 'the bot stopped before writes were frozen; nothing was frozen. Request the freeze again.' });
      return;
    }
    const event = settlingEvent(session, decision.settle);
    if (!event) return;
    await this.#d.facts.record(session, { type: 'recovered', actor: BOT, decision: decision.action, reason: decision.reason });
    const updated = await this.#settle(session, decision.settle);
    const latest = await this.#d.journal.latestCutover(session.id);
    switch (event) {
      case 'resume':
        await this.#d.facts.record(updated, { type: 'resumed', actor: BOT, reason: `after a restart: ${decision.reason}`, problems: [], level: 'warning' });
        break;
      case 'switch': {
        const parameters = session.strategy === 'connection-parameters' ? await w.machines.targetParameters() : undefined;
        await this.#d.recordSwitch(updated, latest?.attempt ?? 0, BOT, parameters);
        break;
      }
      case 'rollback':
        await this.#d.facts.record(updated, { type: 'rolled_back', actor: BOT, strategy: session.strategy, switchedAt: latest?.switchedAt ?? null });
        break;
      case 'finish':
        await this.#d.finishFact(updated, BOT);
        break;
      case 'abort':
        await this.#d.facts.record(updated, { type: 'aborted', actor: BOT });
        break;
    }
    await this.#closeGates(session.id, decision.settle);
  }

  /** The executor that died never closed the gate requests of its click: close them so the buttons work again. */
  async #closeGates(sessionId: string, settle: SettledState): Promise<void> {
    const open = await this.#d.approvals.open(sessionId);
    const now = this.#d.clock.now();
    const switched = settle === 'switched';
    if (open.freeze?.status === 'approved') await this.#d.approvals.close(open.freeze.id, switched ? 'executed' : 'failed', now);
    if (switched && open.switch?.status === 'approved') await this.#d.approvals.close(open.switch.id, 'executed', now);
  }

  async #settle(session: Session, settle: SettledState): Promise<Session> {
    for (let tries = 0; ; tries += 1) {
      const current = await this.#d.sessions.require(session.id);
      const event = settlingEvent(current, settle);
      if (!event) return current;
      try {
        return await this.#d.sessions.transition(session.id, current.version, event);
      } catch (error) {
        if (asCodedError(error).code !== ErrorCode.SessionConflict || tries >= 5) throw error;
      }
    }
  }

  #context(w: Window, session: Session, attempt: number): StepContext {
    return { session, attempt, machines: w.machines, remainingMs: () => Number.POSITIVE_INFINITY };
  }
}
