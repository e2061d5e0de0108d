/**
 * What a person does to a running session, from a button, the modal or a command: request, approve or
 * withdraw a gate; freeze and switch (through the engine); resume, roll back, finish, abort. People and
 * state are checked once (People), the click counts once (an idempotency key per session version and
 * action), each fact is recorded once; the engine records the outcome of what it runs.
 */
import { approvalRuns, type Gate, type GateRequest, type UserAction } from '../domain/gates.js';
import type { ApprovalBinding } from '../domain/freeze-prediction.js';
import type { ApprovalRepository, IdempotencyKeys, SessionRepository } from '../domain/ports/stores.js';
import type { Session } from '../domain/session.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { Fact, FactRecorder } from './facts.js';
import type { Checked, People, SessionRefSeen, StatusBoard } from './people.js';
import type { FinishOptions, SessionOperations } from './session-operations.js';

export interface SessionActionsDeps {
  people: People;
  sessions: SessionRepository;
  idempotency: IdempotencyKeys;
  operations: SessionOperations;
  facts: FactRecorder;
  status: StatusBoard;
  now: () => Date;
}

/** The actions a session button or command can ask for (start and report have their own use cases). */
export type SessionAction = Exclude<UserAction, 'start' | 'report'>;

export class SessionActions {
  readonly #d: SessionActionsDeps;

  constructor(deps: SessionActionsDeps) {
    this.#d = deps;
  }

  /**
   * Performs `action` for `userId` on the session at `ref.version`: checks people and state, claims the
   * idempotency key (session, version, action), then acts. `retry`: a Slack retry of a click already
   * handled returns silently. Resolves to the session as it stands afterwards.
   */
  async perform(action: SessionAction, ref: SessionRefSeen, userId: string, options: { retry?: boolean } & FinishOptions = {}): Promise<Session | undefined> {
    const key = `action:${ref.sessionId}:${ref.version}:${action}`;
    if (options.retry && (await this.#d.idempotency.exists(key))) return undefined;
    const checked = await this.#d.people.check(action, ref, userId);
    if (!(await this.#d.idempotency.claim(key, this.#d.now()))) {
      if (options.retry) return undefined;
      throw new CodedError(ErrorCode.SessionConflict, 'That is already being handled (someone clicked it a moment ago); watch the status message.');
    }
    try {
      return await this.#execute(action, checked, userId, options);
    } catch (error) {
      // Give the key back when nothing moved, so the same button may be tried again.
      const now = await this.#d.sessions.get(ref.sessionId);
      if (now?.version === ref.version) await this.#d.idempotency.release(key);
      throw error;
    } finally {
      this.#d.status.refresh(ref.sessionId);
    }
  }

  async #execute(action: SessionAction, checked: Checked, userId: string, options: FinishOptions): Promise<Session> {
    const { session, profile, requests } = checked;
    const { operations } = this.#d;
    const actor = { userId };
    const ref = (s: Session) => ({ sessionId: s.id, expectedVersion: s.version });
    const expiryMinutes = profile.gates.approvalExpiryMinutes;
    const now = this.#d.now();
    switch (action) {
      case 'freeze_request':
      case 'switch_request': {
        const gate: Gate = action === 'freeze_request' ? 'freeze' : 'switch';
        const binding = await operations.binding(session);
        const { session: bumped, result } = await this.#d.sessions.gateStep(session.id, session.version, (approvals) =>
          approvals.request({ sessionId: session.id, gate, requestedBy: userId, now, expiryMinutes, binding }),
        );
        await this.#record(bumped, { type: 'gate_requested', actor: userId, action, gate, expiresAt: result.requestExpiresAt, approverHint: approverHint(gate, profile.gates.twoPersonRule) });
        return bumped;
      }
      case 'freeze_withdraw':
      case 'switch_withdraw': {
        const gate: Gate = action === 'freeze_withdraw' ? 'freeze' : 'switch';
        const open = requests[gate];
        if (!open) throw new CodedError(ErrorCode.GateRefused, `There is no open ${gate} request.`);
        const { session: bumped } = await this.#d.sessions.gateStep(session.id, session.version, (approvals) => approvals.close(open.id, 'withdrawn', now));
        await this.#record(bumped, { type: 'gate_withdrawn', actor: userId, action, gate, requestedBy: open.requestedBy });
        return bumped;
      }
      case 'freeze_approve':
      case 'freeze_now':
      case 'switch_approve':
      case 'switch_now': {
        const gate: Gate = action === 'freeze_approve' || action === 'freeze_now' ? 'freeze' : 'switch';
        const direct = action === 'freeze_now' || action === 'switch_now';
        const binding = await operations.binding(session);
        const approved = await this.#approve(session, gate, direct ? undefined : requests[gate], userId, { expiryMinutes, binding });
        const runs = approvalRuns(gate, profile.gates.flow, approved.session.state, requests, now);
        await this.#record(approved.session, {
          type: 'gate_approved',
          actor: userId,
          action,
          gate,
          requestedBy: approved.request.requestedBy,
          validUntil: approved.request.approvalExpiresAt,
          runs,
          typedConfirmation: gate === 'switch',
        });
        if (runs === 'cutover' || (runs === 'now' && gate === 'freeze')) return operations.freeze(ref(approved.session), actor);
        return runs === 'now' ? operations.switchover(ref(approved.session), actor) : approved.session;
      }
      case 'switch_run':
        if (!requests.switch) throw new CodedError(ErrorCode.GateRefused, 'The switch has not been approved.');
        return operations.switchover(ref(session), actor);
      case 'resume':
        return operations.resume(ref(session), actor);
      case 'abort':
        return operations.abort(ref(session), actor);
      case 'rollback':
        return operations.rollback(ref(session), actor);
      case 'finish':
        return operations.finish(ref(session), actor, { acknowledgeDifferences: options.acknowledgeDifferences === true });
    }
  }

  /** Approves the open request of `gate`, or (rule off) requests and approves it at once: one version step. */
  async #approve(
    session: Session,
    gate: Gate,
    open: GateRequest | undefined,
    userId: string,
    given: { expiryMinutes: number; binding: ApprovalBinding },
  ): Promise<{ session: Session; request: GateRequest }> {
    const now = this.#d.now();
    const { expiryMinutes, binding } = given;
    const step = async (approvals: ApprovalRepository) => {
      const request = open ?? (await approvals.request({ sessionId: session.id, gate, requestedBy: userId, now, expiryMinutes, binding }));
      return approvals.approve(request.id, { approvedBy: userId, now, expiryMinutes, binding });
    };
    const { session: bumped, result } = await this.#d.sessions.gateStep(session.id, session.version, step);
    return { session: bumped, request: result };
  }

  #record(session: Session, fact: Fact): Promise<void> {
    return this.#d.facts.record(session, fact);
  }
}

function approverHint(gate: Gate, twoPersonRule: boolean): string {
  if (gate === 'freeze') return twoPersonRule ? 'another operator or approver' : 'an operator or approver';
  return twoPersonRule ? 'an approver other than the requester' : 'an approver';
}
