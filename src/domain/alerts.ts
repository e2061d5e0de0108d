/**
 * Alert episodes, as pure data. Each kind keeps a small state (is an episode open, how many samples
 * in a row met its condition); a new observation yields, per kind, the next state and at most one
 * notice: `fire` when an episode opens, `clear` when it ends. An episode fires once and clears once,
 * however many samples it spans.
 *
 * Unknown is never evidence: a lag sample that could not be taken neither raises nor clears the
 * lag-high episode (it feeds the lag-unknown kind instead), and an unknown DigitalOcean status leaves
 * the DigitalOcean kinds as they were.
 */
import type { DoView, Observation } from './report.js';
import { formatBytes, formatDuration } from './report.js';

export const ALERT_KINDS = ['lag_high', 'lag_unknown', 'slot_inactive', 'do_failed', 'two_week_limit'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export interface AlertState {
  kind: AlertKind;
  /** An episode is open (it fired and has not cleared). */
  active: boolean;
  /** Consecutive observations that met the condition (reset when one does not). */
  streak: number;
  /** When the current episode opened. */
  since: Date | null;
  /** The newest observation applied; older ones are ignored (a late replica cannot rewind). */
  lastAt: Date | null;
}

export interface AlertPolicy {
  /** reports.alerts.lagBytes */
  lagBytes: number;
  /** reports.alerts.consecutiveSamples: lag-high, lag-unknown and slot-inactive need this many in a row. */
  consecutiveSamples: number;
  /** reports.alerts.twoWeekLimitWarningHours */
  twoWeekLimitWarningHours: number;
}

/** DigitalOcean stops an online migration after two weeks. */
export const DO_MIGRATION_LIMIT_MS = 14 * 24 * 3600 * 1000;

/**
 * What a notice is about: an episode kind above, a finding of the split-brain watch (each is new writes:
 * no episode), schema drift between source and target (announced per new difference), or replicating
 * back after the switch: the WAL its slot keeps, its stream, the end of the rollback window.
 */
export type NoticeKind = AlertKind | 'split_brain' | 'schema_drift' | 'reverse_wal' | 'reverse_stream' | 'rollback_window';

export interface AlertNotice {
  kind: NoticeKind;
  action: 'fire' | 'clear';
  /** What the notice is about, in a few words; it never contradicts `text`. */
  title: string;
  text: string;
}

/** A notice's title by kind, unless its verdict names a more precise one. */
const TITLES: Record<AlertKind, string> = {
  lag_high: 'replication lag is high',
  lag_unknown: 'replication lag is unknown',
  slot_inactive: 'replication slot inactive',
  do_failed: 'DigitalOcean migration failed',
  two_week_limit: 'two-week limit',
};

export interface AlertEvaluation {
  states: AlertState[];
  notices: AlertNotice[];
}

export function initialAlertState(kind: AlertKind): AlertState {
  return { kind, active: false, streak: 0, since: null, lastAt: null };
}

/** What one observation says about one kind: met, not met, or no evidence either way (state unchanged). */
type Verdict = { met: true; detail: string; title?: string } | { met: false; detail: string } | { met: null };

function verdict(kind: AlertKind, obs: Observation, doView: DoView, policy: AlertPolicy): Verdict {
  switch (kind) {
    case 'lag_high':
      if (!obs.known) return { met: null };
      return obs.bytes > policy.lagBytes
        ? { met: true, detail: `lag is ${formatBytes(obs.bytes)}, above ${formatBytes(policy.lagBytes)}` }
        : { met: false, detail: `lag is back to ${formatBytes(obs.bytes)}, below ${formatBytes(policy.lagBytes)}` };
    case 'lag_unknown':
      return obs.known
        ? { met: false, detail: `lag is measurable again (${formatBytes(obs.bytes)})` }
        : { met: true, detail: `lag cannot be measured: ${obs.reason}` };
    case 'slot_inactive':
      if (!obs.known) return { met: null };
      return obs.slotActive
        ? { met: false, detail: `replication slot "${obs.slot}" is active again` }
        : { met: true, detail: `replication slot "${obs.slot}" is inactive: nothing is consuming it` };
    case 'do_failed':
      if (!doView.known) return { met: null };
      return doView.status === 'error' || doView.status === 'canceled'
        ? { met: true, detail: `DigitalOcean reports the online migration as ${doView.status}` }
        : { met: false, detail: `DigitalOcean reports the online migration as ${doView.status}` };
    case 'two_week_limit': {
      if (!doView.known) return { met: null };
      if (doView.status !== 'running' && doView.status !== 'syncing') {
        return { met: false, detail: 'the online migration is no longer running' };
      }
      const left = doView.createdAt.getTime() + DO_MIGRATION_LIMIT_MS - obs.at.getTime();
      return left <= policy.twoWeekLimitWarningHours * 3600_000
        ? left > 0
          ? {
              met: true,
              title: 'two-week limit approaching',
              detail: `DigitalOcean stops this online migration in ${formatDuration(left / 1000)} (two-week limit): cut over or plan a restart`,
            }
          : { met: true, title: 'two-week limit passed', detail: 'the two-week limit of this online migration has passed' }
        : { met: false, detail: 'the online migration was restarted: the two-week limit is far away again' };
    }
  }
}

/** The kinds that need `consecutiveSamples` in a row; the others open on the first observation. */
const NEEDS_STREAK: ReadonlySet<AlertKind> = new Set(['lag_high', 'lag_unknown', 'slot_inactive']);

export function evaluateAlerts(
  previous: readonly AlertState[],
  obs: Observation,
  doView: DoView,
  policy: AlertPolicy,
): AlertEvaluation {
  const byKind = new Map(previous.map((s) => [s.kind, s]));
  const states: AlertState[] = [];
  const notices: AlertNotice[] = [];
  for (const kind of ALERT_KINDS) {
    const before = byKind.get(kind) ?? initialAlertState(kind);
    if (before.lastAt !== null && obs.at.getTime() <= before.lastAt.getTime()) {
      states.push(before);
      continue;
    }
    const v = verdict(kind, obs, doView, policy);
    if (v.met === null) {
      states.push({ ...before, lastAt: obs.at });
      continue;
    }
    if (v.met) {
      const streak = before.streak + 1;
      const needed = NEEDS_STREAK.has(kind) ? policy.consecutiveSamples : 1;
      if (!before.active && streak >= needed) {
        states.push({ kind, active: true, streak, since: obs.at, lastAt: obs.at });
        const suffix = NEEDS_STREAK.has(kind) && needed > 1 ? ` (${streak} samples in a row)` : '';
        notices.push({ kind, action: 'fire', title: v.title ?? TITLES[kind], text: `${capitalise(v.detail)}${suffix}.` });
      } else {
        states.push({ ...before, streak, lastAt: obs.at });
      }
      continue;
    }
    if (before.active) {
      const lasted = before.since ? ` after ${formatDuration((obs.at.getTime() - before.since.getTime()) / 1000)}` : '';
      notices.push({ kind, action: 'clear', title: TITLES[kind], text: `Cleared${lasted}: ${v.detail}.` });
    }
    states.push({ kind, active: false, streak: 0, since: null, lastAt: obs.at });
  }
  return { states, notices };
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
