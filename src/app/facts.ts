/**
 * What happened to a session, as data: each fact is recorded once, by the one use case (or engine step)
 * that made it happen: one audit row, then one event for the channel, in the order they happened.
 * The Slack adapter turns events into text (src/adapters/slack/texts.ts); nothing here is Slack text.
 */
import type { ApprovalsSummary, AttemptRecord, LagAtFreeze, Verification } from '../domain/attempt.js';
import type { RecoveryDecision } from '../domain/cutover-plan.js';
import type { ApprovalRuns, Gate, UserAction } from '../domain/gates.js';
import type { AuditLog, AuditOutcome } from '../domain/ports/stores.js';
import type { FenceResult } from '../domain/ports/replication.js';
import type { Session, Strategy } from '../domain/session.js';
import type { Logger } from '../log.js';

/** Who did it: a Slack user id, or `bot` for what the bot does by itself (budget expiry, recovery). */
export const BOT = 'bot';

/** The target's connection parameters as handed out, password masked. */
export interface HandedOutParameters {
  host: string;
  port: number;
  database: string;
  user: string;
  maskedPassword: string;
  sslmode: string;
}

/** What the finish summary shows. */
export interface CutoverSummary {
  ran: boolean;
  frozenMs: number | null;
  /** The freeze predicted just before the run, beside the actual one. */
  predictedFreezeMs: number | null;
  writesHeld: number | null;
  lagAtFreeze: LagAtFreeze | null;
  fence: FenceResult | null;
  sequencesCopied: number | null;
  approvals: ApprovalsSummary | null;
}

export type Fact =
  | { type: 'session_started'; actor: string; profile: string }
  | { type: 'migration_started'; actor: string; migrationId: string }
  /** `quiet`: audited, but not worth a line in the thread (a stale button, a mistyped name). */
  | { type: 'refused'; actor: string; action: UserAction; reason: string; quiet?: boolean; details?: Record<string, unknown> }
  | { type: 'gate_requested'; actor: string; action: UserAction; gate: Gate; expiresAt: Date; approverHint: string }
  | { type: 'gate_withdrawn'; actor: string; action: UserAction; gate: Gate; requestedBy: string }
  | {
      type: 'gate_approved';
      actor: string;
      action: UserAction;
      gate: Gate;
      requestedBy: string;
      validUntil: Date | null;
      /** What the approval started (see `approvalRuns`). */
      runs: ApprovalRuns;
      /** The person typed the target database name. */
      typedConfirmation: boolean;
    }
  | { type: 'freeze_refused'; actor: string; reason: string }
  | { type: 'frozen'; actor: string; attempt: number; budgetSeconds: number; requestedBy: string; approvedBy: string }
  | { type: 'awaiting_switch'; actor: string; attempt: number; secondsLeft: number }
  /** Source and target compared as of the switch point, after the resume. */
  | { type: 'verified'; actor: string; attempt: number; verification: Verification }
  | {
      type: 'switched';
      actor: string;
      attempt: number;
      strategy: Strategy;
      frozenMs: number | null;
      predictedFreezeMs?: number | null;
      aheadOfTime: boolean;
      targetDatabase: string;
      recovered: boolean;
      parameters?: HandedOutParameters;
    }
  /** After the switch: whether the target's writes flow back to the source (a rollback that loses nothing). */
  | { type: 'replicated_back'; actor: string; attempt: number; outcome: 'on' | 'off' | 'failed'; reason?: string }
  | { type: 'resumed'; actor: string; reason: string; problems: string[]; level: 'info' | 'warning' | 'error' }
  | { type: 'resume_failed'; actor: string; reason: string; problems: string[] }
  /** `carriedBack`: the reverse fence proved every target write on the source before writes went back. */
  | { type: 'rolled_back'; actor: string; strategy: Strategy; switchedAt: Date | null; carriedBack?: boolean }
  | { type: 'finished'; actor: string; summary: CutoverSummary }
  /** `noMigrationId`: the session never recorded a DigitalOcean migration, so none was stopped. */
  | { type: 'aborted'; actor: string; noMigrationId?: true }
  | { type: 'failed'; actor: string; action: string; message: string; code: string }
  | { type: 'recovered'; actor: string; decision: RecoveryDecision['action'] | 'adopt-migration'; reason: string }
  | { type: 'report_schedule_set'; actor: string; schedule: string };

/** A recorded fact, with the session it belongs to (as it stood after the fact). */
export interface SessionEvent {
  session: Session;
  fact: Fact;
}

/** Where events go once recorded (the Slack adapter: a thread line, then a status refresh). Must not throw. */
export interface EventListener {
  published(event: SessionEvent): void;
}

/**
 * Holds the events recorded before their listener exists (recovery runs before Slack is reached, so
 * that writes resume first) and hands them on, in order, once it is attached.
 */
export class DeferredListener implements EventListener {
  #listener: EventListener | undefined;
  readonly #held: SessionEvent[] = [];

  published(event: SessionEvent): void {
    if (this.#listener) this.#listener.published(event);
    else this.#held.push(event);
  }

  attach(listener: EventListener): void {
    this.#listener = listener;
    for (const event of this.#held.splice(0)) listener.published(event);
  }
}

/** The audit row of a fact: action and outcome as `/migrate history` lists them. */
export function auditOf(fact: Fact): { action: string; outcome: AuditOutcome; details: Record<string, unknown> } {
  const { type: _type, actor: _actor, ...details } = fact;
  switch (fact.type) {
    case 'session_started':
      return { action: 'start', outcome: 'requested', details };
    case 'migration_started':
      return { action: 'start', outcome: 'succeeded', details };
    case 'refused':
      return { action: fact.action, outcome: 'refused', details: { reason: fact.reason, ...fact.details } };
    case 'gate_requested':
      return { action: fact.action, outcome: 'requested', details };
    case 'gate_withdrawn':
      return { action: fact.action, outcome: 'succeeded', details };
    case 'gate_approved':
      return { action: fact.action, outcome: 'approved', details };
    case 'freeze_refused':
      return { action: 'freeze', outcome: 'refused', details };
    case 'frozen':
      return { action: 'freeze', outcome: 'succeeded', details };
    case 'awaiting_switch':
      return { action: 'switch', outcome: 'info', details };
    case 'switched':
      return { action: 'switch', outcome: 'succeeded', details };
    case 'verified':
      return { action: 'verify', outcome: fact.verification.outcome === 'different' ? 'failed' : 'info', details };
    case 'replicated_back':
      return { action: 'replicate_back', outcome: fact.outcome === 'on' ? 'succeeded' : fact.outcome === 'failed' ? 'failed' : 'info', details };
    case 'resumed':
      return { action: 'resume', outcome: 'succeeded', details };
    case 'resume_failed':
      return { action: 'resume', outcome: 'failed', details };
    case 'rolled_back':
      return { action: 'rollback', outcome: 'succeeded', details };
    case 'finished':
      return { action: 'finish', outcome: 'succeeded', details };
    case 'aborted':
      return { action: 'abort', outcome: 'succeeded', details };
    case 'failed':
      return { action: fact.action, outcome: 'failed', details: { message: fact.message, code: fact.code } };
    case 'recovered':
      return { action: 'recovery', outcome: 'succeeded', details };
    case 'report_schedule_set':
      return { action: 'report', outcome: 'succeeded', details };
  }
}

/** The summary of a cutover attempt, for the finish fact. */
export function summaryOf(attempt: AttemptRecord | undefined): CutoverSummary {
  if (!attempt) return { ran: false, frozenMs: null, predictedFreezeMs: null, writesHeld: null, lagAtFreeze: null, fence: null, sequencesCopied: null, approvals: null };
  return {
    ran: true,
    frozenMs: attempt.frozenAt && attempt.resumedAt ? attempt.resumedAt.getTime() - attempt.frozenAt.getTime() : null,
    predictedFreezeMs: attempt.predictedFreezeMs,
    writesHeld: attempt.writesHeld,
    lagAtFreeze: attempt.lagAtFreeze,
    fence: attempt.fence,
    sequencesCopied: attempt.sequencesCopied,
    approvals: attempt.approvals,
  };
}

/**
 * Records facts: the audit row first (the record of truth), then the event to the listener. One
 * instance per process; calls for one session are serialised so events leave in the order they happened.
 */
export class FactRecorder {
  readonly #audit: Pick<AuditLog, 'append'>;
  readonly #listener: EventListener;
  readonly #log: Logger;
  readonly #tails = new Map<string, Promise<void>>();

  constructor(audit: Pick<AuditLog, 'append'>, listener: EventListener, log: Logger) {
    this.#audit = audit;
    this.#listener = listener;
    this.#log = log.child({ name: 'facts' });
  }

  /** Records `fact` of `session`; resolves once its audit row is written. Never throws. */
  record(session: Session, fact: Fact): Promise<void> {
    const previous = this.#tails.get(session.id) ?? Promise.resolve();
    const done = previous.then(async () => {
      const { action, outcome, details } = auditOf(fact);
      try {
        await this.#audit.append({
          sessionId: session.id,
          channelId: session.channelId,
          actor: fact.actor,
          action,
          outcome,
          details: { version: session.version, ...details },
        });
      } catch (err) {
        this.#log.error({ err, session: session.id, fact: fact.type }, 'audit append failed');
      }
      // A listener that throws must not reject this tail: the session's later facts would never be recorded.
      try {
        this.#listener.published({ session, fact });
      } catch (err) {
        this.#log.error({ err, session: session.id, fact: fact.type }, 'publishing a fact failed');
      }
    });
    this.#tails.set(session.id, done);
    void done.then(() => {
      if (this.#tails.get(session.id) === done) this.#tails.delete(session.id);
    });
    return done;
  }
}
