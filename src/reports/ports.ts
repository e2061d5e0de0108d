/** What the report scheduler needs from the outside world, as small ports. */
import type { Profile } from '../config/profiles.js';
import type { AlertNotice, AlertState } from '../domain/alerts.js';
import type { LagSample } from '../domain/ports/replication.js';
import type { DoView, LagReport, Observation, TrendDirection } from '../domain/report.js';
import type { ReportSchedule } from '../domain/report-schedule.js';
import type { ReplicatingBack, RollbackWindowState } from '../domain/rollback-window.js';
import type { ReverseDropResult, ReverseStatus } from '../domain/ports/reverse-replication.js';
import type { Session } from '../domain/session.js';
import type { SplitBrainFinding } from '../domain/split-brain.js';
import type { SessionRepository } from '../domain/ports/stores.js';

/** The sessions the scheduler reads. */
export type ReportedSessions = Pick<SessionRepository, 'listActive' | 'require'>;

export type TickPurpose = 'report' | 'sample';

export interface TickClaim {
  sessionId: string;
  purpose: TickPurpose;
  tick: Date;
  attempts: number;
}

export interface TickRow {
  sessionId: string;
  purpose: TickPurpose;
  lastTick: Date;
  claimedBy: string;
  claimedAt: Date;
  leaseUntil: Date;
  doneAt: Date | null;
  attempts: number;
}

/** Tick claims in the store: across replicas exactly one claims a (session, purpose, tick). */
export interface ReportTicks {
  /** Claims `tick` for `replica`, or undefined when another replica already has it (or a newer one). */
  claim(sessionId: string, purpose: TickPurpose, tick: Date, replica: string, now: Date, leaseMs: number): Promise<TickClaim | undefined>;
  /** Takes over the newest tick when its claim is unfinished and its lease ran out, at most `maxAttempts` in all. */
  retake(sessionId: string, purpose: TickPurpose, replica: string, now: Date, leaseMs: number, maxAttempts: number): Promise<TickClaim | undefined>;
  complete(claim: TickClaim, replica: string, now: Date): Promise<boolean>;
  /** The newest tick row of each of `sessionIds`. */
  lastTicks(purpose: TickPurpose, sessionIds: readonly string[]): Promise<Map<string, TickRow>>;
}

export interface StoredSchedule {
  sessionId: string;
  schedule: ReportSchedule;
  setBy: string;
  setAt: Date;
}

/** What the scheduler keeps per session: schedules, alert episodes, recent observations, announced schema drift, the rollback window. */
export interface ReportState {
  setSchedule(sessionId: string, schedule: ReportSchedule, setBy: string, at: Date): Promise<StoredSchedule>;
  /** The schedules of `sessionIds` that have their own (others use their profile's). */
  schedules(sessionIds: readonly string[]): Promise<Map<string, StoredSchedule>>;
  schedule(sessionId: string): Promise<StoredSchedule | undefined>;
  /** Applies `decide` to the session's alert states atomically (replicas serialise here). */
  updateAlerts<T extends { states: AlertState[] }>(sessionId: string, decide: (previous: AlertState[]) => T): Promise<T>;
  appendObservation(sessionId: string, observation: Observation): Promise<void>;
  window(sessionId: string): Promise<{ observations: Observation[]; lastReportAt: Date | null }>;
  markReported(sessionId: string, at: Date): Promise<void>;
  /** Applies `decide` to the schema differences already announced for the session, atomically (replicas serialise here). */
  updateSchemaDrift<T extends { announced: string[] }>(sessionId: string, decide: (announced: string[]) => T): Promise<T>;
  /** The rollback window of a session that replicates back, as its sample ticks last saw it. */
  rollbackWindow(sessionId: string): Promise<RollbackWindowState | undefined>;
  /** Applies `decide` to the session's rollback window atomically (replicas serialise here). */
  updateRollbackWindow<T extends { state: RollbackWindowState }>(sessionId: string, decide: (previous: RollbackWindowState | undefined) => T): Promise<T>;
}

/** The shared lag-sample history (every sample tick is recorded there too). */
export interface LagSampleHistory {
  record(sessionId: string, sample: LagSample): Promise<void>;
  pruneBefore(sessionId: string, before: Date): Promise<number>;
}

/** The parts of a profile the scheduler reads; without `rollback`, the rollback window has the profile defaults. */
export type ReportProfile = Pick<Profile, 'reports'> & {
  gates: Pick<Profile['gates'], 'operators' | 'maxLagBytesToFreeze'>;
  rollback?: Pick<Profile['rollback'], 'windowHours' | 'maxRetainedWalMb'>;
};

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
  /**
   * Refreshes the live status message with the report's own figures; without them (a switched session's
   * rollback window) it is drawn again from the store.
   */
  refreshStatus(session: Session, report?: LagReport, figures?: StatusFigures): Promise<void>;
}

/** What one look at a switched session's source found. */
export type SplitBrainCheck = { watching: true; finding: SplitBrainFinding | null } | { watching: false; reason: string };

/**
 * The split-brain watch of switched sessions, on their sources (`adapters/replication/split-brain-watches.ts`):
 * writes committed on the source after the switch, not through replication.
 */
export interface SplitBrainWatches {
  /** Starts the session's watch unless it runs (idempotent), then takes what was written since the last look. */
  check(session: Session): Promise<SplitBrainCheck>;
  /** Removes the session's watch (idempotent). */
  stop(session: Session): Promise<void>;
  /** Removes the watches of every session no longer switched (ended, rolled back, or ended while the bot was down). */
  sweep(): Promise<number>;
}

/**
 * The schema guard of syncing sessions (`adapters/replication/schema-drift-checks.ts`): the catalogs of
 * source and target compared in every migrated database, one catalog query per side and database.
 */
export interface SchemaDriftChecks {
  /**
   * The differences, one line each (with several migrated databases each names its database); empty when
   * the schemas match; null when this session's previous check has not answered yet (skipped, not piled up).
   */
  check(session: Session): Promise<string[] | null>;
}

/**
 * The replication back of switched sessions (`adapters/replication/reverse-replications.ts`), over every
 * migrated database: whether the latest cutover replicates back, the state of its slots, their removal at
 * the end of the rollback window, and the sweep of what sessions no longer active left behind (a crash).
 */
export interface ReverseReplications {
  /** The cutover attempt that replicates back and when it switched; undefined when the session does not replicate back. */
  replicatingBack(session: Session): Promise<ReplicatingBack | undefined>;
  status(session: Session): Promise<ReverseStatus>;
  /** Removes the session's slots, subscriptions and publications on both sides (idempotent). */
  drop(session: Session): Promise<ReverseDropResult>;
  /** Removes the reverse objects of every session no longer active, on each profile's source and target; how many went. */
  sweep(): Promise<number>;
}

/** Deletes rows no one reads any more (the store's housekeeping); run by the scheduler now and then. */
export interface Housekeeping {
  prune(now: Date): Promise<Record<string, number>>;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
