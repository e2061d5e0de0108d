/**
 * Checks people once per request: the session at the version the person saw, their roles (user groups
 * expanded through the directory), and the pure gate decision. A refusal is recorded once, as a fact,
 * and thrown as a CodedError for the person.
 */
import type { LoadedConfig, Profile } from '../config/profiles.js';
import { decide, groupsOf, rolesOf, type Gate, type GateRequest, type GroupMembers, type RefusalCode, type Roles, type UserAction } from '../domain/gates.js';
import type { ApprovalRepository, SessionRepository } from '../domain/ports/stores.js';
import type { Session } from '../domain/session.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { FactRecorder } from './facts.js';

/** Expands user groups (S…) into their members; a group that cannot be read counts as empty. */
export interface GroupDirectory {
  members(groupIds: readonly string[]): Promise<GroupMembers>;
}

/** Where the session's live status message is drawn (the Slack adapter). */
export interface StatusBoard {
  /** Posts the session's message and records where it is. */
  post(session: Session): Promise<Session>;
  /** Redraws it from the stored state (coalesced; never throws). */
  refresh(sessionId: string): void;
}

export interface Checked {
  session: Session;
  profile: Profile;
  requests: Partial<Record<Gate, GateRequest>>;
}

export interface SessionRefSeen {
  sessionId: string;
  version: number;
}

const REFUSAL: Record<RefusalCode, ErrorCode> = {
  not_authorized: ErrorCode.NotAuthorized,
  gate_refused: ErrorCode.GateRefused,
  approval_expired: ErrorCode.ApprovalExpired,
  invalid_state: ErrorCode.InvalidTransition,
};

/** What each action is called in refusals ("You cannot …"). */
export const ACTION_LABEL: Record<UserAction, string> = {
  start: 'start the migration',
  freeze_request: 'request a write freeze',
  freeze_approve: 'approve the freeze',
  freeze_now: 'freeze writes',
  freeze_withdraw: 'withdraw the freeze request',
  switch_request: 'request the switch',
  switch_approve: 'approve the switch',
  switch_now: 'switch to the target',
  switch_run: 'switch to the target',
  switch_withdraw: 'withdraw the switch request',
  resume: 'resume writes',
  abort: 'abort the migration',
  rollback: 'roll back',
  finish: 'finish the migration',
  report: 'change the report schedule',
};

export interface PeopleDeps {
  config: LoadedConfig;
  sessions: SessionRepository;
  approvals: ApprovalRepository;
  groups: GroupDirectory;
  facts: FactRecorder;
  status: StatusBoard;
  now: () => Date;
}

export class People {
  readonly #d: PeopleDeps;

  constructor(deps: PeopleDeps) {
    this.#d = deps;
  }

  profile(name: string): Profile {
    const profile = this.#d.config.profiles.get(name);
    if (!profile) throw new CodedError(ErrorCode.ProfileNotFound, `The profile \`${name}\` is not configured any more.`);
    return profile;
  }

  async roles(userId: string, profile: Profile): Promise<Roles> {
    return rolesOf(userId, profile.gates, await this.#d.groups.members(groupsOf(profile.gates)));
  }

  /**
   * Loads the session at the version the person acted on and checks they may do `action` now. A stale
   * version, a missing permission or a closed gate is refused: one fact, and a CodedError for the person.
   */
  async check(action: UserAction, ref: SessionRefSeen, userId: string): Promise<Checked> {
    const { sessions, approvals, facts } = this.#d;
    const session = await sessions.get(ref.sessionId);
    if (!session) throw new CodedError(ErrorCode.SessionNotFound, 'That migration session no longer exists.');
    if (session.version !== ref.version) {
      await facts.record(session, { type: 'refused', actor: userId, action, reason: 'stale', quiet: true, details: { seenVersion: ref.version, version: session.version } });
      this.#d.status.refresh(session.id);
      throw new CodedError(
        ErrorCode.SessionConflict,
        `That button is from an older status message (v${ref.version}; the session is now at v${session.version}). Nothing was done; use the current status message.`,
        { details: { sessionId: session.id, seen: ref.version, current: session.version } },
      );
    }
    const profile = this.profile(session.profile);
    const requests = await approvals.open(session.id);
    const decision = decide({ action, actor: userId, roles: await this.roles(userId, profile), policy: profile.gates, state: session.state, requests, now: this.#d.now() });
    if (!decision.ok) {
      await facts.record(session, { type: 'refused', actor: userId, action, reason: decision.reason, details: { code: decision.code } });
      // The message may show a gate that has expired since it was drawn: redraw it.
      this.#d.status.refresh(session.id);
      throw new CodedError(REFUSAL[decision.code], `You cannot ${ACTION_LABEL[action]}: ${decision.reason}.`);
    }
    return { session, profile, requests };
  }
}
