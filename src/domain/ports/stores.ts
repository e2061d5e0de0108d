/**
 * The bot's own state, as the use cases and the cutover engine need it. The store adapters
 * (src/adapters/store/) implement these on PostgreSQL or embedded PGlite; tests use in-memory ones.
 */
import type { ApprovalsSummary, AttemptPatch, AttemptRecord } from '../attempt.js';
import type { AttemptKind, CutoverStep, JournalEntry, JournalEvent } from '../cutover-plan.js';
import type { Gate, GateRequest, GateRequestStatus } from '../gates.js';
import type { ApprovalBinding } from '../freeze-prediction.js';
import type { ReportSchedule } from '../report-schedule.js';
import type { Session, SessionEvent, Strategy } from '../session.js';

export interface NewSession {
  channelId: string;
  profile: string;
  strategy: Strategy;
  startedBy: string;
}

/** Fields a transition may change alongside the state. */
export interface SessionPatch {
  doMigrationId?: string | null;
}

export interface SessionRepository {
  create(input: NewSession): Promise<Session>;
  get(id: string): Promise<Session | undefined>;
  /** The session, or SessionNotFound. */
  require(id: string): Promise<Session>;
  activeInChannel(channelId: string): Promise<Session | undefined>;
  listActive(): Promise<Session[]>;
  listForChannel(channelId: string, limit?: number): Promise<Session[]>;
  /**
   * Applies `event` if the session is still at `expectedVersion` (compare-and-set): of two callers
   * based on the same version exactly one wins; the other gets SessionConflict.
   */
  transition(id: string, expectedVersion: number, event: SessionEvent, patch?: SessionPatch): Promise<Session>;
  /**
   * A gate step: bumps the version (compare-and-set on `expectedVersion`) and runs `work` on the gate
   * requests in the same transaction, so a stale click changes nothing.
   */
  gateStep<T>(id: string, expectedVersion: number, work: (approvals: ApprovalRepository) => Promise<T>): Promise<{ session: Session; result: T }>;
  /** Where the session's live status message is; not versioned (posting it invalidates no button). */
  setStatusMessage(id: string, ts: string): Promise<Session>;
  /**
   * Removes a session that never showed anywhere (still `created`, no status message, no DigitalOcean
   * migration): its start failed before anything happened, and it must not block the next one.
   */
  discard(id: string): Promise<void>;
}

export interface NewGateRequest {
  sessionId: string;
  gate: Gate;
  requestedBy: string;
  now: Date;
  expiryMinutes: number;
  binding?: ApprovalBinding | null;
}

export interface ApprovalRepository {
  /** The open (pending or approved) request per gate; expired ones included, the domain judges expiry. */
  open(sessionId: string): Promise<Partial<Record<Gate, GateRequest>>>;
  /** Records a request; a still-valid open one of the same gate makes this fail with GateRefused. */
  request(input: NewGateRequest): Promise<GateRequest>;
  /** Approves a pending, unexpired request; GateRefused if someone else approved or closed it first. */
  approve(requestId: string, input: { approvedBy: string; now: Date; expiryMinutes: number; binding?: ApprovalBinding | null }): Promise<GateRequest>;
  close(requestId: string, status: Exclude<GateRequestStatus, 'pending' | 'approved'>, now: Date): Promise<GateRequest | undefined>;
  /** A valid (approved, unexpired at `now`) approval of `gate`, if any. */
  validApproval(sessionId: string, gate: Gate, now: Date): Promise<GateRequest | undefined>;
  /** The most recent request of a gate in any status. */
  latest(sessionId: string, gate: Gate): Promise<GateRequest | undefined>;
}

/** One journaled step event, for `recordAll`. */
export interface StepEvent {
  step: CutoverStep;
  event: JournalEvent;
  detail?: Record<string, unknown>;
}

export interface JournalRepository {
  /** Opens the next attempt of the session and returns its number. */
  begin(sessionId: string, kind: AttemptKind, startedBy: string, patch?: AttemptPatch): Promise<number>;
  /** Journals a step event; `patch` changes the attempt's fields atomically with it. */
  record(sessionId: string, attempt: number, step: CutoverStep, event: JournalEvent, detail?: Record<string, unknown>, patch?: AttemptPatch): Promise<void>;
  /** Journals several step events in order, and `patch`, atomically (one statement). */
  recordAll(sessionId: string, attempt: number, events: readonly StepEvent[], patch?: AttemptPatch): Promise<void>;
  /** Every journaled event of the session, oldest first. */
  entries(sessionId: string): Promise<JournalEntry[]>;
  /**
   * The events of each session's latest attempt, oldest first, in one read: what `recoveryDecision`
   * needs to tell whether a session has work left (the watchdog asks for every active session).
   */
  latestAttemptEntries(sessionIds: readonly string[]): Promise<Map<string, JournalEntry[]>>;
  update(sessionId: string, attempt: number, patch: AttemptPatch): Promise<void>;
  attempt(sessionId: string, attempt: number): Promise<AttemptRecord | undefined>;
  /** The latest cutover attempt (the one with the freeze). */
  latestCutover(sessionId: string): Promise<AttemptRecord | undefined>;
}

export type AuditOutcome = 'requested' | 'approved' | 'refused' | 'succeeded' | 'failed' | 'info';

export interface AuditEntry {
  sessionId: string | null;
  channelId: string;
  /** The Slack user id, or `bot` for what the bot did by itself (budget expiry, recovery). */
  actor: string;
  action: string;
  outcome: AuditOutcome;
  details?: Record<string, unknown>;
}

export interface AuditRecord extends Required<AuditEntry> {
  id: number;
  at: Date;
}

export interface AuditLog {
  append(entry: AuditEntry): Promise<AuditRecord>;
  forSession(sessionId: string, limit?: number): Promise<AuditRecord[]>;
  forChannel(channelId: string, limit?: number): Promise<AuditRecord[]>;
}

/** One executor per session across replicas: a lock held while `work` runs, or undefined when another holds it. */
export interface ExecutorLock {
  withTryLock<T>(key: string, work: () => Promise<T>): Promise<T | undefined>;
}

/** Keys that make Slack retries, double clicks and concurrent replicas act once. */
export interface IdempotencyKeys {
  /** False when `key` is already claimed (and, with `windowMs`, the claim is younger than it). */
  claim(key: string, now: Date, windowMs?: number): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  release(key: string): Promise<void>;
}

export interface ReportSchedules {
  set(sessionId: string, schedule: ReportSchedule, setBy: string, at: Date): Promise<void>;
  /** The schedule's text, or null when the profile's default applies. */
  get(sessionId: string): Promise<string | null>;
}

export type { ApprovalsSummary };
