/**
 * The cutover plan and its journal, as pure data and functions.
 *
 * A cutover runs as numbered *attempts* per session. Each attempt has a kind and runs an ordered list of
 * steps; every step is journaled `started` before it runs and `done` / `failed` after, and a step that
 * was put back is journaled `undone`. After a crash the journal alone says what to do
 * (`recoveryDecision`): finish a step that cannot be taken back, or undo the freeze and resume writes on
 * the source. It never says "switch" unless the journal proves the switch already happened, so a
 * restart can never switch twice.
 */
import { assertNever } from '../errors.js';
import type { Strategy } from './session.js';

export const CUTOVER_STEPS = [
  'preconditions',
  'freeze',
  'fence',
  'sequences',
  'repoint',
  'resume_target',
  'replicate_back',
  'stop_migration',
  'publish_parameters',
  'unfreeze_source',
  'rollback_freeze_target',
  'rollback_fence',
  'rollback_sequences',
  'rollback_repoint',
  'rollback_resume_source',
] as const;
export type CutoverStep = (typeof CUTOVER_STEPS)[number];

export const ATTEMPT_KINDS = ['cutover', 'rollback', 'finish', 'abort'] as const;
export type AttemptKind = (typeof ATTEMPT_KINDS)[number];

export const JOURNAL_EVENTS = ['started', 'done', 'failed', 'undone'] as const;
export type JournalEvent = (typeof JOURNAL_EVENTS)[number];

/** A step's status in an attempt: the last event journaled for it, or pending when none. */
export type StepStatus = 'pending' | JournalEvent;

export interface JournalEntry {
  attempt: number;
  kind: AttemptKind;
  step: CutoverStep;
  event: JournalEvent;
  at: Date;
  detail?: Readonly<Record<string, unknown>>;
}

export type FreezeMethod = 'proxy-pause' | 'read-only-roles' | 'read-only-database';

/** The profile facts the plan's wording depends on. */
export interface PlanSettings {
  strategy: Strategy;
  freezeMethod: FreezeMethod;
  freezeBudgetSeconds: number;
  maxLagBytesToFreeze: number;
  fenceTimeoutSeconds: number;
  sequenceMargin: number;
  /** e.g. "pgbouncer database orders"; where the switch happens. */
  proxyLabel?: string;
}

export interface PlannedStep {
  step: CutoverStep;
  /** Which button runs it: gate 1 (freeze), gate 2 (switch) or the separate Finish button. */
  gate: 'freeze' | 'switch' | 'finish';
  name: string;
  description: string;
}

/** The steps of each attempt kind, in order, per strategy. */
export function attemptSteps(kind: AttemptKind, strategy: Strategy): readonly CutoverStep[] {
  switch (kind) {
    case 'cutover':
      return strategy === 'proxy'
        ? ['preconditions', 'freeze', 'fence', 'sequences', 'repoint', 'resume_target', 'replicate_back']
        : ['preconditions', 'freeze', 'fence', 'sequences', 'stop_migration', 'publish_parameters'];
    case 'rollback':
      return strategy === 'proxy'
        ? ['rollback_freeze_target', 'rollback_fence', 'rollback_sequences', 'rollback_repoint', 'rollback_resume_source', 'stop_migration']
        : ['rollback_resume_source'];
    case 'finish':
      return ['stop_migration'];
    case 'abort':
      return ['unfreeze_source', 'stop_migration'];
    default:
      return assertNever(kind, 'attempt kind');
  }
}

/** The cutover steps gate 1 runs (writes frozen, fence proven, sequences copied); gate 2 runs the rest. */
const FREEZE_GATE_STEPS: readonly CutoverStep[] = ['preconditions', 'freeze', 'fence', 'sequences'];

/** The cutover steps one gate runs, in order. */
export function gateSteps(strategy: Strategy, gate: 'freeze' | 'switch'): CutoverStep[] {
  return attemptSteps('cutover', strategy).filter((step) => FREEZE_GATE_STEPS.includes(step) === (gate === 'freeze'));
}

/** The steps that put writes back where they flow (after a freeze): a run goes through to one of them. */
const RESUMING_STEPS: ReadonlySet<CutoverStep> = new Set<CutoverStep>(['resume_target', 'rollback_resume_source', 'unfreeze_source']);

/**
 * `steps` (some of an attempt's, in order) split at the attempt's resume: what runs while writes wait
 * (through the resume) and what runs after it, with writes flowing again (a failure there never puts
 * writes back). An attempt without a resume (connection parameters) runs all of it as before.
 */
export function splitAtResume(kind: AttemptKind, strategy: Strategy, steps: readonly CutoverStep[]): { frozen: CutoverStep[]; after: CutoverStep[] } {
  const plan = attemptSteps(kind, strategy);
  const at = plan.findIndex((step) => RESUMING_STEPS.has(step));
  const isAfter = (step: CutoverStep) => at >= 0 && plan.indexOf(step) > at;
  return { frozen: steps.filter((step) => !isAfter(step)), after: steps.filter(isAfter) };
}

/** Where the reverse stream starts (the target's LSN at the switch point), as the attempt's resume journaled it. */
export function reverseSwitchPoint(journal: readonly JournalEntry[], attempt: number): string | undefined {
  const entry = journal.find((e) => e.attempt === attempt && e.step === 'resume_target' && e.event === 'done');
  const lsn = entry?.detail?.reverseFrom;
  return typeof lsn === 'string' ? lsn : undefined;
}

/** The steps of `attempt` not journaled done yet, in order: what recovery completes. */
export function remainingSteps(journal: readonly JournalEntry[], attempt: number, kind: AttemptKind, strategy: Strategy): CutoverStep[] {
  const statuses = stepStatuses(journal, attempt);
  return attemptSteps(kind, strategy).filter((step) => statuses.get(step) !== 'done');
}

function freezeWording(method: FreezeMethod): string {
  switch (method) {
    case 'proxy-pause':
      return 'pause the database in the proxy (clients wait, no errors)';
    case 'read-only-roles':
      return 'make the source read-only for the application roles by locking them out (NOLOGIN) and ending their sessions (clients see errors, reads too)';
    case 'read-only-database':
      return 'make the source database read-only by locking out every role that can write there (NOLOGIN) and ending their sessions (clients see errors, reads too)';
    default:
      return assertNever(method, 'freeze method');
  }
}

/** What `--dry-run` shows: the cutover steps in order, with the profile's numbers filled in. */
export function planSteps(settings: PlanSettings): PlannedStep[] {
  const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(bytes % (1024 * 1024) === 0 ? 0 : 1)} MiB`;
  const where = settings.proxyLabel ?? 'the proxy';
  const common: PlannedStep[] = [
    {
      step: 'preconditions',
      gate: 'freeze',
      name: 'Check preconditions',
      description:
        `session syncing, replication lag known and below ${mib(settings.maxLagBytesToFreeze)}, preflight green` +
        (settings.strategy === 'proxy' ? `, target reachable through ${where}` : ''),
    },
    {
      step: 'freeze',
      gate: 'freeze',
      name: 'Freeze writes',
      description: `${freezeWording(settings.freezeMethod)}; the freeze budget of ${settings.freezeBudgetSeconds} s starts: when it runs out before the switch, writes resume on the source by themselves`,
    },
    {
      step: 'fence',
      gate: 'freeze',
      name: 'Prove the fence',
      description: `prove the target applied every transaction committed on the source before the freeze (at most ${settings.fenceTimeoutSeconds} s, and within the budget)`,
    },
    {
      step: 'sequences',
      gate: 'freeze',
      name: 'Copy sequences',
      description: `set every sequence on the target to its source value plus a margin of ${settings.sequenceMargin}`,
    },
  ];
  if (settings.strategy === 'proxy') {
    return [
      ...common,
      {
        step: 'repoint',
        gate: 'switch',
        name: 'Repoint the proxy',
        description: `send ${where} to the target and verify it points there (runs at once if the switch was approved ahead of time)`,
      },
      {
        step: 'resume_target',
        gate: 'switch',
        name: 'Resume writes on the target',
        description: 'lift the freeze; the waiting clients continue on the target',
      },
      {
        step: 'replicate_back',
        gate: 'switch',
        name: 'Replicate back',
        description:
          "when the target can publish: stop DigitalOcean's online migration and subscribe the source to the target from the switch point, so a rollback loses no write made on the target",
      },
      {
        step: 'stop_migration',
        gate: 'finish',
        name: 'Finish',
        description: "stop DigitalOcean's online migration, remove the reverse replication, and close the session with a summary",
      },
    ];
  }
  return [
    ...common,
    {
      step: 'stop_migration',
      gate: 'switch',
      name: 'Stop the migration',
      description: "stop DigitalOcean's online migration; the target becomes writable on its own",
    },
    {
      step: 'publish_parameters',
      gate: 'switch',
      name: 'Hand out the target',
      description:
        "post the target's connection parameters (password masked) and track who confirmed their application moved; the source stays frozen",
    },
  ];
}

/** Status of every step of one attempt (the last event wins). */
export function stepStatuses(journal: readonly JournalEntry[], attempt: number): Map<CutoverStep, StepStatus> {
  const statuses = new Map<CutoverStep, StepStatus>(CUTOVER_STEPS.map((s) => [s, 'pending']));
  for (const entry of journal) if (entry.attempt === attempt) statuses.set(entry.step, entry.event);
  return statuses;
}

export interface LatestAttempt {
  attempt: number;
  kind: AttemptKind;
  status: (step: CutoverStep) => StepStatus;
}

export function latestAttempt(journal: readonly JournalEntry[]): LatestAttempt | undefined {
  let latest: JournalEntry | undefined;
  for (const entry of journal) if (!latest || entry.attempt >= latest.attempt) latest = entry;
  if (!latest) return undefined;
  const statuses = stepStatuses(journal, latest.attempt);
  return { attempt: latest.attempt, kind: latest.kind, status: (step) => statuses.get(step) ?? 'pending' };
}

/** True once any attempt moved traffic to the target (a repoint or a hand-out of parameters completed). */
export function hasSwitched(journal: readonly JournalEntry[]): boolean {
  return journal.some(
    (e) =>
      e.kind === 'cutover' &&
      e.event === 'done' &&
      (e.step === 'repoint' || e.step === 'stop_migration' || e.step === 'publish_parameters'),
  );
}

/** Where the session should stand once recovery is done. */
export type SettledState = 'syncing' | 'switched' | 'finished' | 'rolled_back' | 'aborted' | 'unchanged';

export type RecoveryDecision =
  /** Nothing left half-done; the session should be in `settle` (or stays as it is). */
  | { action: 'none'; settle: SettledState; reason: string }
  /** Writes are (or may be) frozen and the switch did not happen: put everything back on the source. */
  | { action: 'undo-freeze'; attempt: number; repointToSource: boolean; settle: 'syncing'; reason: string }
  /** The switch already happened (the repoint completed, or the migration was stopped): resume writes on the target. */
  | { action: 'complete-switch'; attempt: number; settle: 'switched'; reason: string; repointSeen?: true }
  /** A rollback was under way: freeze the target, repoint to the source, resume (all idempotent). */
  | { action: 'complete-rollback'; attempt: number; settle: 'rolled_back'; reason: string }
  /** Stopping the DO migration was under way: stop it again (idempotent) and end the session. */
  | { action: 'complete-finish'; attempt: number; settle: 'finished'; reason: string }
  /** An abort was under way: resume on the source, stop the migration, end the session. */
  | { action: 'complete-abort'; attempt: number; settle: 'aborted'; reason: string };

const touched = (status: StepStatus) => status !== 'pending';

/** Whether the attempt's freeze began a run through to the resume (`runThrough`: its `started` says how far). */
const isRun = (journal: readonly JournalEntry[], attempt: number) =>
  journal.some((e) => e.attempt === attempt && e.step === 'freeze' && e.event === 'started' && e.detail?.through !== undefined);

/** What recovery saw of the proxy (strategy proxy only): where it points now. */
export interface ObservedProxy {
  pointsTo: 'source' | 'target' | 'elsewhere';
}

/**
 * What to do after a crash or restart, from the journal (and, for a freeze the journal leaves open,
 * where the proxy points). Decided on the latest attempt:
 * - cutover: a completed resume on the target, or a completed hand-out → settled (switched);
 *   a completed undo → settled (syncing); a completed repoint (or, with connection parameters, a
 *   started stop of the migration) → complete the switch; otherwise, once the freeze was started
 *   (it may have taken effect), undo: repoint to the source if a repoint was ever started, then resume
 *   writes on the source. Only `preconditions` journaled → nothing was frozen.
 *   A run journals nothing between its freeze and its resume (`runThrough`): when it dies there, the
 *   proxy says how far it got. It repoints only once the fence is proven and the sequences are copied,
 *   so a proxy found pointing to the target (and no undo begun) means: complete the switch.
 * - rollback: settled when the source resumed; put back when the target freeze was undone;
 *   otherwise complete it.
 * - finish / abort: settled when the migration stop completed; otherwise complete it.
 */
export function recoveryDecision(journal: readonly JournalEntry[], proxy?: ObservedProxy): RecoveryDecision {
  const latest = latestAttempt(journal);
  if (!latest) return { action: 'none', settle: 'unchanged', reason: 'no cutover was ever started' };
  const { attempt, kind, status } = latest;
  switch (kind) {
    case 'cutover': {
      if (status('unfreeze_source') === 'done') {
        return { action: 'none', settle: 'syncing', reason: 'writes were already resumed on the source' };
      }
      // Replicating back runs after the resume; one that failed is told and never retried by recovery.
      if (status('resume_target') === 'done' && (status('replicate_back') === 'pending' || status('replicate_back') === 'started')) {
        return { action: 'complete-switch', attempt, settle: 'switched', reason: 'writes go to the target; replicating back to the source did not complete' };
      }
      if (status('resume_target') === 'done' || status('publish_parameters') === 'done') {
        return { action: 'none', settle: 'switched', reason: 'the switch completed' };
      }
      if (status('repoint') === 'done' && status('unfreeze_source') === 'pending') {
        return {
          action: 'complete-switch',
          attempt,
          settle: 'switched',
          reason: 'the proxy already points to the target: resume writes there',
        };
      }
      if (touched(status('stop_migration'))) {
        return {
          action: 'complete-switch',
          attempt,
          settle: 'switched',
          reason: 'the migration was being stopped: the target is the database now; finish handing it out',
        };
      }
      if (touched(status('freeze')) && status('unfreeze_source') === 'pending' && proxy?.pointsTo === 'target') {
        return {
          action: 'complete-switch',
          attempt,
          settle: 'switched',
          reason: 'the proxy already points to the target (it is repointed only after the fence is proven): resume writes there',
          repointSeen: true,
        };
      }
      if (touched(status('freeze'))) {
        // A run journals no repoint before its resume: its databases file may say target though the proxy
        // never reloaded it. Putting writes back after a run always repoints to the source (idempotent).
        const repointToSource = touched(status('repoint')) || isRun(journal, attempt);
        return {
          action: 'undo-freeze',
          attempt,
          repointToSource,
          settle: 'syncing',
          reason: repointToSource
            ? 'the switch did not complete: repoint to the source and resume writes there'
            : 'writes were frozen and the switch did not happen: resume writes on the source',
        };
      }
      return { action: 'none', settle: 'unchanged', reason: 'the cutover stopped before the freeze' };
    }
    case 'rollback': {
      // A rollback through the proxy (it froze the target) then stops the replication both ways, writes already on the source.
      const stopsAfter = touched(status('rollback_freeze_target'));
      if (status('rollback_resume_source') === 'done' && (!stopsAfter || (status('stop_migration') !== 'pending' && status('stop_migration') !== 'started'))) {
        return { action: 'none', settle: 'rolled_back', reason: 'the rollback completed' };
      }
      if (status('rollback_resume_source') === 'done') {
        return { action: 'complete-rollback', attempt, settle: 'rolled_back', reason: 'writes went back to the source; stopping the replication did not complete' };
      }
      if (status('rollback_freeze_target') === 'undone') {
        return { action: 'none', settle: 'unchanged', reason: 'the rollback was put back; writes go to the target' };
      }
      return {
        action: 'complete-rollback',
        attempt,
        settle: 'rolled_back',
        reason: 'a rollback was under way: finish it and resume writes on the source',
      };
    }
    case 'finish':
      return status('stop_migration') === 'done'
        ? { action: 'none', settle: 'finished', reason: 'the migration was stopped' }
        : { action: 'complete-finish', attempt, settle: 'finished', reason: 'stopping the migration did not complete' };
    case 'abort':
      return status('stop_migration') === 'done'
        ? { action: 'none', settle: 'aborted', reason: 'the abort completed' }
        : { action: 'complete-abort', attempt, settle: 'aborted', reason: 'the abort did not complete' };
    default:
      return assertNever(kind, 'attempt kind');
  }
}
