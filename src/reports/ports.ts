/** What the report scheduler needs from the outside world, as small ports. */
import type { Profile } from '../config/profiles.js';
import type { AlertNotice } from '../domain/alerts.js';
import type { DoView, LagReport, Observation } from '../domain/report.js';
import type { Session } from '../domain/session.js';

/** The parts of a profile the scheduler reads. */
export type ReportProfile = Pick<Profile, 'reports'> & { gates: Pick<Profile['gates'], 'operators' | 'maxLagBytesToFreeze'> };

/** One measurement of a session: its lag (and WAL position) on the source, and DigitalOcean's status. */
export interface SessionObserver {
  observe(session: Session, profile: ReportProfile): Promise<{ observation: Observation; doView: DoView }>;
  /** Drops what it keeps for sessions no longer observed (ended ones). */
  retainOnly?(sessionIds: ReadonlySet<string>): void;
  /** Releases pooled connections. */
  close?(): Promise<void>;
}

/** An alert as the scheduler hands it to Slack: who to mention comes from the profile. */
export interface ChannelAlert extends AlertNotice {
  /** Slack user (U…/W…) or user-group (S…) ids to mention when the alert fires. */
  operators: readonly string[];
}

/**
 * Where reports and alerts go. The Slack adapter (`slack-report-poster.ts`) implements it; tests use a
 * recording one. A method that throws leaves the tick unfinished, so another attempt may follow.
 */
export interface ReportPoster {
  /** A reply in the session's thread (under the live status message). */
  postInThread(session: Session, report: LagReport): Promise<void>;
  /** A message the whole channel sees, mentioning the operators when it fires. */
  alertChannel(session: Session, alert: ChannelAlert): Promise<void>;
  /** Refreshes the live status message with the newest figures. */
  refreshStatus(session: Session, report: LagReport): Promise<void>;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
