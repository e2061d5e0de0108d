/** What the report scheduler needs from the outside world, as small ports. */
import type { Profile } from '../config/profiles.js';
import type { AlertNotice } from '../domain/alerts.js';
import type { LagSample } from '../domain/ports/replication.js';
import type { DoView, LagReport, Observation, TrendDirection } from '../domain/report.js';
import type { Session } from '../domain/session.js';

/** The parts of a profile the scheduler reads. */
export type ReportProfile = Pick<Profile, 'reports'> & { gates: Pick<Profile['gates'], 'operators' | 'maxLagBytesToFreeze'> };

/** One measurement of a session: its lag (and WAL position) on the source, and DigitalOcean's status. */
export interface SessionObserver {
  observe(session: Session, profile: ReportProfile): Promise<{ observation: Observation; doView: DoView }>;
}

/** What a report measured, handed to the status refresh so it measures nothing again. */
export interface StatusFigures {
  lag: LagSample;
  lagTrend: TrendDirection;
  doView: DoView;
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
  /** Refreshes the live status message with the report's own figures. */
  refreshStatus(session: Session, report: LagReport, figures: StatusFigures): Promise<void>;
}

/** Deletes rows no one reads any more (the store's housekeeping); run by the scheduler now and then. */
export interface Housekeeping {
  prune(now: Date): Promise<Record<string, number>>;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
