/**
 * Runs the plan's steps (steps.ts) on the machines, journaled: `started` before each step, `done`
 * (with its detail) or `failed` after; or a whole run through a freeze with nothing stored while
 * writes wait (`runThrough`).
 */
import type { AttemptPatch } from '../../domain/attempt.js';
import type { CutoverStep } from '../../domain/cutover-plan.js';
import type { Clock } from '../../domain/ports/clock.js';
import type { TargetParameters } from '../../domain/ports/machines.js';
import type { JournalRepository, StepEvent } from '../../domain/ports/stores.js';
import { CodedError, ErrorCode, asCodedError } from '../../errors.js';
import { STEPS, mustRepointToSource, repointWithResume, retry, type StepContext, type StepOutcome } from './steps.js';

export interface UndoResult {
  resumed: boolean;
  problems: string[];
}

/**
 * Steps whose effect nothing depends on for recovery (the preconditions look, the fence proves, the
 * sequences are set absolutely and again by any later attempt): their journal entries need not be
 * durable before the work runs, so inside the freeze they are written while the machines work.
 */
const DEFERRABLE: ReadonlySet<CutoverStep> = new Set<CutoverStep>(['preconditions', 'fence', 'sequences']);

/** In a run, steps that start with the fence (once the freeze holds) and are noted in their turn. */
const BESIDE_THE_FENCE: ReadonlySet<CutoverStep> = new Set<CutoverStep>(['sequences']);

/** A step's work, ended: its outcome and how long it took, or its error. */
type Settled = { step: CutoverStep; outcome: StepOutcome; ms: number } | { step: CutoverStep; error: unknown };

/** What run() did: each step's journaled detail, what was handed out, when writes froze, where the reverse stream starts. */
export interface RunResult {
  done: Map<CutoverStep, Readonly<Record<string, unknown>>>;
  parameters?: TargetParameters;
  frozenAt?: Date;
  reverseFrom?: string;
}

export class StepRunner {
  readonly #journal: JournalRepository;
  readonly #clock: Clock;
  /** Per session: journal writes in flight, in order (a later write never lands before an earlier one). */
  readonly #pending = new Map<string, Promise<void>>();

  constructor(journal: JournalRepository, clock: Clock) {
    this.#journal = journal;
    this.#clock = clock;
  }

  /** Runs `steps` in order, each journaled; rethrows the first failure (journaled `failed`). */
  async run(ctx: StepContext, steps: readonly CutoverStep[]): Promise<RunResult> {
    const result: RunResult = { done: new Map() };
    let context = ctx;
    try {
      for (const step of steps) {
        const outcome = await this.step(context, step);
        result.done.set(step, outcome.detail ?? {});
        const reverseFrom = outcome.detail?.reverseFrom;
        if (typeof reverseFrom === 'string') {
          context = { ...context, reverseFrom };
          result.reverseFrom = reverseFrom;
        }
        if (outcome.parameters) result.parameters = outcome.parameters;
        if (outcome.patch?.frozenAt) result.frozenAt = outcome.patch.frozenAt;
      }
    } finally {
      // Whatever happened, the caller reads a complete journal afterwards.
      await this.flush(ctx.session.id).catch(() => undefined);
    }
    await this.flush(ctx.session.id);
    return result;
  }

  /**
   * A run through a freeze: `steps` (a freeze first, a resume last: a cutover or a rollback) with nothing stored while
   * writes wait, so the store adds no round trip to the freeze. The first step's `started` is stored
   * before it runs (recovery then knows writes may be frozen, and asks the proxy how far the run got:
   * see `recoveryDecision`); every other event lands in one statement after the last step, or, on a
   * failure, the events so far (the failed step's too) before the error is rethrown. The held writes
   * are counted on the proxy's warm connection, and the sequences copied, while the fence runs.
   */
  async runThrough(ctx: StepContext, steps: readonly CutoverStep[], afterStartJournaled?: () => Promise<void>): Promise<{ frozenAt?: Date; reverseFrom?: string }> {
    const { session, attempt } = ctx;
    const [first, ...rest] = steps;
    if (!first) return {};
    await this.flush(session.id);
    await this.#journal.record(session.id, attempt, first, 'started', { through: steps.at(-1) });
    await afterStartJournaled?.();
    const events: StepEvent[] = [];
    let patch: AttemptPatch = {};
    let failure: { error: unknown } | undefined;
    /** One step's work, timed; its events are noted in plan order (`note`), whenever it ran. */
    const work = async (context: StepContext, step: CutoverStep): Promise<Settled> => {
      const started = performance.now();
      try {
        const outcome = await STEPS[step](context, this.#clock);
        // How long each step held writes: where a freeze's time went, for the summary and the benchmark.
        return { step, outcome, ms: Math.round((performance.now() - started) * 10) / 10 };
      } catch (error) {
        return { step, error };
      }
    };
    const note = (settled: Settled, startJournaled = false): StepOutcome | undefined => {
      const { step } = settled;
      if (!startJournaled) events.push({ step, event: 'started' });
      if ('outcome' in settled) {
        events.push({ step, event: 'done', detail: { ...settled.outcome.detail, ms: settled.ms } });
        patch = { ...patch, ...settled.outcome.patch };
        return settled.outcome;
      }
      const { error } = settled;
      failure ??= { error };
      events.push({ step, event: 'failed', detail: { code: asCodedError(error).code, message: error instanceof Error ? error.message : String(error) } });
      // The freeze may have partly taken effect even though it failed: its start time still counts.
      if (step === 'freeze') patch = { ...patch, frozenAt: this.#clock.now(), frozenWhat: ctx.machines.frozenWhat };
      return undefined;
    };
    const frozen = note(await work({ ...ctx, confirmLater: true }, first), true);
    const countsHeld = !failure && rest.includes('resume_target');
    // Each repoint leaves with its resume when the router is the freeze: writes resume as it reloads.
    const repointAndResume = repointWithResume(ctx.machines);
    const run: StepContext = {
      ...ctx,
      ...(repointAndResume ? { repointAndResume } : {}),
      ...(countsHeld ? { writesHeld: ctx.machines.writesHeld?.().catch(() => null) } : {}),
      ...(frozen?.confirmed ? { freezeConfirmed: frozen.confirmed } : {}),
    };
    const beside = new Map<CutoverStep, Promise<Settled>>();
    for (const step of rest) {
      if (failure) break;
      const running = beside.get(step) ?? work(run, step);
      // The sequences are read once the freeze holds (every write through the proxy is in): nothing about
      // them waits on the fence, so they are copied while it runs (started right after it).
      if (step === 'fence') for (const next of rest.filter((s) => BESIDE_THE_FENCE.has(s))) beside.set(next, work(run, next));
      const settled = await running;
      note(settled);
      if (step === 'fence' && 'outcome' in settled) {
        run.snapshots = run.machines.verifier?.exportSnapshots().catch(() => undefined);
        const proven = settled.outcome.detail?.targetLsn;
        run.switchPoint = run.machines.reverse?.establish(typeof proven === 'string' ? proven : undefined).catch(() => null);
      }
    }
    // Nothing still running once the run answers (a failure elsewhere may have cut the loop short).
    await Promise.all(beside.values());
    if (failure) {
      await this.#journal.recordAll(session.id, attempt, events, patch).catch(() => undefined);
      throw failure.error;
    }
    try {
      await retry(() => this.#journal.recordAll(session.id, attempt, events, patch), 5);
    } catch (error) {
      // Writes go to the target now: nothing may put them back. Recovery finds the proxy there.
      throw new CodedError(ErrorCode.DatabaseUnavailable, 'Writes now go to the target, but the store could not journal the switch; recovery completes it once the store answers.', {
        cause: error,
        details: { switched: true },
      });
    }
    const reverseFrom = events.find((e) => e.step === 'resume_target' && e.event === 'done')?.detail?.reverseFrom;
    return { ...(patch.frozenAt ? { frozenAt: patch.frozenAt } : {}), ...(typeof reverseFrom === 'string' ? { reverseFrom } : {}) };
  }

  /**
   * One step: `started` journaled, the work, then `done` with its results in one statement. A step
   * that changes where writes go waits for its entries (and every earlier one) to be stored; the
   * fence's and the sequences' are written behind the work, so after a crash the journal never shows
   * less than recovery needs.
   */
  async step(ctx: StepContext, step: CutoverStep): Promise<StepOutcome> {
    const { session, attempt } = ctx;
    const deferrable = DEFERRABLE.has(step);
    this.#write(session.id, () => this.#journal.record(session.id, attempt, step, 'started'));
    if (!deferrable) await this.flush(session.id);
    let outcome: StepOutcome;
    try {
      outcome = await STEPS[step](ctx, this.#clock);
    } catch (error) {
      const coded = asCodedError(error);
      // The freeze may have partly taken effect even though it failed: its start time still counts.
      const patch: AttemptPatch = step === 'freeze' ? { frozenAt: this.#clock.now(), frozenWhat: ctx.machines.frozenWhat } : {};
      this.#write(session.id, () =>
        this.#journal.record(session.id, attempt, step, 'failed', { code: coded.code, message: error instanceof Error ? error.message : String(error) }, patch),
      );
      await this.flush(session.id).catch(() => undefined);
      throw error;
    }
    // The step's results land with its `done`: a crash between them could lose what the summary needs.
    this.#write(session.id, () => this.#journal.record(session.id, attempt, step, 'done', outcome.detail ?? {}, outcome.patch));
    if (!deferrable) await this.flush(session.id);
    return outcome;
  }

  /** Resolves once every journal write of the session so far is stored; rejects if one failed. */
  async flush(sessionId: string): Promise<void> {
    const pending = this.#pending.get(sessionId);
    try {
      await pending;
    } catch (error) {
      // Reported once: the next operation on the session starts with a clean chain.
      if (this.#pending.get(sessionId) === pending) this.#pending.delete(sessionId);
      throw error;
    }
  }

  #write(sessionId: string, write: () => Promise<void>): void {
    const next = (this.#pending.get(sessionId) ?? Promise.resolve()).then(write);
    this.#pending.set(sessionId, next);
    // A failed write stays in the chain (later writes are skipped) until a flush reports it.
    next.then(
      () => {
        if (this.#pending.get(sessionId) === next) this.#pending.delete(sessionId);
      },
      () => undefined,
    );
  }

  /**
   * Puts writes back on the source (repointing first when a repoint was started) and journals it:
   * `unfreeze_source` done and the freeze `undone`, or `unfreeze_source` failed with the problems.
   */
  async undoFreeze(ctx: StepContext & { repointToSource: boolean }, reason: string): Promise<UndoResult> {
    const { session, attempt } = ctx;
    await this.#journal.record(session.id, attempt, 'unfreeze_source', 'started', { reason });
    const problems: string[] = [];
    const routing = ctx.machines.routing;
    if (routing && (await mustRepointToSource(ctx))) {
      await retry(() => routing.router.repoint(routing.source)).catch((error: unknown) =>
        problems.push(`repointing to the source failed: ${asCodedError(error).message}`),
      );
    }
    const resumed = await retry(() => ctx.machines.freeze.resume()).then(
      () => true,
      (error: unknown) => {
        problems.push(`resuming writes failed: ${asCodedError(error).message}`);
        return false;
      },
    );
    if (!resumed) {
      await this.#journal.record(session.id, attempt, 'unfreeze_source', 'failed', { problems });
      return { resumed, problems };
    }
    // Writes are back on the source: the reverse slot prepared for this attempt would only hold the target's WAL.
    await ctx.machines.reverse?.drop().catch((error: unknown) => problems.push(`removing the reverse replication slot failed: ${asCodedError(error).message}`));
    const now = this.#clock.now();
    await this.#journal.record(session.id, attempt, 'unfreeze_source', 'done', problems.length ? { problems } : {}, {
      resumedAt: now,
      resumedOn: 'source',
      outcome: 'resumed on source',
      endedAt: now,
    });
    await this.#journal.record(session.id, attempt, 'freeze', 'undone');
    return { resumed, problems };
  }
}
