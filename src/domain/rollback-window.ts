/**
 * The rollback window of a switched session whose cutover replicates back, as pure data: for
 * `rollback.windowHours` after the switch the target's writes flow back and a rollback loses nothing;
 * then the reverse replication is removed (its slot would keep the target's WAL for ever) and a
 * rollback leaves the target's writes on the target. While the window runs, each reading of the reverse
 * slot may open or end two episodes, each announced once when it starts and once when it ends: WAL kept
 * over the budget (`rollback.maxRetainedWalMb`), and the stream not streaming (after
 * `consecutiveSamples` readings in a row: a reconnecting walsender is no episode). Unknown is no evidence.
 */
import type { AlertNotice } from './alerts.js';
import type { JournalEntry } from './cutover-plan.js';
import { formatBytes } from './report.js';

/** The cutover attempt that replicates back, and when it switched. */
export interface ReplicatingBack {
  attempt: number;
  switchedAt: Date;
}

/** One look at the reverse slot on the target (every migrated database's, summed). */
export interface ReverseReading {
  at: Date;
  slot: boolean;
  streaming: boolean;
  retainedWalBytes: number | null;
}

export interface RollbackWindowState {
  /** The cutover attempt this is about. */
  attempt: number;
  endsAt: Date;
  /** The over-budget episode was announced and has not ended. */
  walOverBudget: boolean;
  /** Readings in a row that were not streaming, and whether that was announced. */
  notStreaming: { streak: number; announced: boolean };
  /** The latest reading (the status message shows it). */
  reading: ReverseReading | null;
  /** When the reverse replication was removed at the end of the window. */
  endedAt: Date | null;
}

/** The profile's `rollback` settings when it names none. */
export const ROLLBACK_DEFAULTS = { windowHours: 24, maxRetainedWalMb: 1024 } as const;

export interface RollbackPolicy {
  windowHours: number;
  maxRetainedWalBytes: number;
  /** Readings in a row not streaming before it is announced. */
  consecutiveSamples: number;
}

export function rollbackPolicy(settings: { windowHours: number; maxRetainedWalMb: number } | undefined, consecutiveSamples: number): RollbackPolicy {
  const { windowHours, maxRetainedWalMb } = settings ?? ROLLBACK_DEFAULTS;
  return { windowHours, maxRetainedWalBytes: maxRetainedWalMb * 1024 * 1024, consecutiveSamples };
}

/** What a reading or the window's end changes: the next state, the notices, and whether the status message shows something new. */
export interface RollbackWindowStep {
  state: RollbackWindowState;
  notices: AlertNotice[];
  redraw: boolean;
}

/**
 * Whether a switched session replicates back: its latest cutover attempt switched and journaled
 * `replicate_back` done with replication on. A later attempt that failed (a rollback, a finish) leaves
 * the session switched and the reverse replication in place: the window still ends it.
 */
export function replicatingBack(entries: readonly JournalEntry[], cutover: { attempt: number; switchedAt: Date | null }): ReplicatingBack | undefined {
  if (!cutover.switchedAt) return undefined;
  const on = entries.some((e) => e.attempt === cutover.attempt && e.step === 'replicate_back' && e.event === 'done' && e.detail?.replicateBack === 'on');
  return on ? { attempt: cutover.attempt, switchedAt: cutover.switchedAt } : undefined;
}

export function windowEnd(back: ReplicatingBack, policy: Pick<RollbackPolicy, 'windowHours'>): Date {
  return new Date(back.switchedAt.getTime() + policy.windowHours * 3_600_000);
}

/** Whole hours left (at least): the status message's countdown changes when this does. */
export function hoursLeft(endsAt: Date, at: Date): number {
  return Math.max(0, Math.floor((endsAt.getTime() - at.getTime()) / 3_600_000));
}

/** The state of this attempt's window: the stored one, or a fresh one (a later cutover starts afresh). */
function current(previous: RollbackWindowState | undefined, back: ReplicatingBack, policy: RollbackPolicy): RollbackWindowState {
  if (previous?.attempt === back.attempt) return previous;
  return { attempt: back.attempt, endsAt: windowEnd(back, policy), walOverBudget: false, notStreaming: { streak: 0, announced: false }, reading: null, endedAt: null };
}

const WAL_TITLE = 'replicating back keeps too much WAL on the target';
const STREAM_TITLE = 'replicating back is not streaming';

/** A reading of the reverse slot while the window runs. A reading not newer than the stored one changes nothing. */
export function observeReverse(previous: RollbackWindowState | undefined, back: ReplicatingBack, reading: ReverseReading, policy: RollbackPolicy): RollbackWindowStep {
  const before = current(previous, back, policy);
  if (before.endedAt || (before.reading && reading.at.getTime() <= before.reading.at.getTime())) return { state: before, notices: [], redraw: false };
  const notices: AlertNotice[] = [];
  const budget = formatBytes(policy.maxRetainedWalBytes);

  let walOverBudget = before.walOverBudget;
  const retained = reading.retainedWalBytes;
  if (retained !== null && retained > policy.maxRetainedWalBytes && !walOverBudget) {
    walOverBudget = true;
    notices.push({
      kind: 'reverse_wal',
      action: 'fire',
      title: WAL_TITLE,
      text:
        `The target keeps ${formatBytes(retained)} of WAL for the reverse replication slot, over the budget of ${budget} (rollback.maxRetainedWalMb): ` +
        "the source is not applying the target's writes as fast as they come. The WAL stays until it catches up, or until Finish, " +
        'a rollback or the end of the rollback window removes the reverse replication.',
    });
  } else if (retained !== null && retained <= policy.maxRetainedWalBytes && walOverBudget) {
    walOverBudget = false;
    notices.push({ kind: 'reverse_wal', action: 'clear', title: WAL_TITLE, text: `Back under the budget: ${formatBytes(retained)} of WAL kept for replicating back (budget ${budget}).` });
  }

  const streak = reading.streaming ? 0 : before.notStreaming.streak + 1;
  let announced = before.notStreaming.announced;
  if (!announced && streak >= policy.consecutiveSamples) {
    announced = true;
    const samples = policy.consecutiveSamples > 1 ? ` (${streak} samples in a row)` : '';
    notices.push({
      kind: 'reverse_stream',
      action: 'fire',
      title: STREAM_TITLE,
      text: reading.slot
        ? `The source is not receiving the target's writes${samples}: the reverse replication slot on the target has no reader. The writes wait in the slot (the target keeps their WAL) and a rollback waits for them.`
        : `The reverse replication slot is gone from the target${samples}: the target's writes are no longer carried back, and a rollback would leave them on the target.`,
    });
  } else if (announced && reading.streaming) {
    announced = false;
    notices.push({ kind: 'reverse_stream', action: 'clear', title: STREAM_TITLE, text: "Streaming again: the source applies the target's writes." });
  }

  const state = { ...before, walOverBudget, notStreaming: { streak, announced }, reading };
  const redraw = notices.length > 0 || before.reading === null || hoursLeft(state.endsAt, before.reading.at) !== hoursLeft(state.endsAt, reading.at);
  return { state, notices, redraw };
}

/** The window has ended and the reverse replication was removed: announced once. */
export function endWindow(previous: RollbackWindowState | undefined, back: ReplicatingBack, at: Date, policy: RollbackPolicy): RollbackWindowStep {
  const before = current(previous, back, policy);
  if (before.endedAt) return { state: before, notices: [], redraw: false };
  return {
    state: { ...before, endedAt: at },
    notices: [
      {
        kind: 'rollback_window',
        action: 'fire',
        title: 'rollback window ended',
        text:
          `${policy.windowHours} h after the switch, replicating back has stopped: its slot, subscription and publication are removed. ` +
          "A rollback from now on leaves the writes made on the target on the target; they are not carried back to the source.",
      },
    ],
    redraw: true,
  };
}
