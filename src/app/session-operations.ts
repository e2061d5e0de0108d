/**
 * What the use cases ask of the cutover engine. The use cases check people (permissions, the
 * two-person rule, approvals and their expiry) and record what people did; the engine checks the
 * machines (lag, preflight, fence, proxy) again at execution time, performs the steps and records
 * their outcome as facts. Every call names the session version it was based on, so a stale click or
 * a second replica cannot act twice.
 */
import type { ApprovalBinding } from '../domain/freeze-prediction.js';
import type { Session } from '../domain/session.js';
import type { LagSample } from '../domain/ports/replication.js';

/** Who asked: a Slack user id, or `bot` for what the bot does by itself (budget expiry, recovery). */
export interface Actor {
  userId: string;
}

export interface SessionRef {
  sessionId: string;
  expectedVersion: number;
}

export type { PreflightItem } from '../domain/ports/machines.js';
import type { PreflightItem } from '../domain/ports/machines.js';

/** One step of the cutover plan, as shown by `--dry-run` and in the status message. */
export interface PlanStep {
  name: string;
  description: string;
}

export interface FinishOptions {
  /** Finish although the verification at the switch point found differences (the person looked). */
  acknowledgeDifferences?: boolean;
}

export interface SessionOperations {
  /** Installs the fence table, starts DigitalOcean's online migration, and moves the session to syncing. */
  startMigration(ref: SessionRef, actor: Actor): Promise<Session>;
  /**
   * The steps a cutover of this session would run, touching nothing. The session may be a draft
   * that was never stored (`--dry-run`): only its profile and strategy matter.
   */
  plan(session: Session): Promise<PlanStep[]>;
  /** The preflight checks for the session's profile (stored or draft), touching nothing. */
  preflight(session: Session): Promise<PreflightItem[]>;
  lag(sessionId: string): Promise<LagSample>;
  /**
   * What an approval given now is bound to: the plan's fingerprint, the lag, the source's WAL position
   * and the predicted freeze. Never fails: a figure that cannot be measured is null, with the reason.
   */
  binding(session: Session): Promise<ApprovalBinding>;
  /** Gate 1 passed: freeze writes, start the freeze budget, prove the fence, copy sequences. */
  freeze(ref: SessionRef, actor: Actor): Promise<Session>;
  /** Gate 2 passed: repoint (or hand out parameters), verify, resume writes on the target. */
  switchover(ref: SessionRef, actor: Actor): Promise<Session>;
  /** Resume writes on the source without switching. */
  resume(ref: SessionRef, actor: Actor): Promise<Session>;
  /** After a switch: freeze on the target, repoint to the source, resume. */
  rollback(ref: SessionRef, actor: Actor): Promise<Session>;
  /** Stop DigitalOcean's online migration and end the session with a summary. */
  finish(ref: SessionRef, actor: Actor, options?: FinishOptions): Promise<Session>;
  /** End the session without switching (resumes writes first if frozen, stops the DO migration). */
  abort(ref: SessionRef, actor: Actor): Promise<Session>;
}
