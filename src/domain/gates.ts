/**
 * Who may do what to a migration session, as pure functions of the profile's gates, the person, the
 * open gate requests and the clock. No Slack, no database: the Slack layer expands user groups
 * (usergroups.users.list) into `GroupMembers` and reads the requests before calling in here.
 *
 * The two dangerous steps are gated:
 *   freeze: an operator requests → (two-person rule) a different operator or approver approves → freeze
 *   switch: an operator requests → an approver (not the requester under the rule) approves with the typed
 *           database name → switch now if frozen, or later while the approval is valid ("approve ahead")
 * Requests and approvals each expire `approvalExpiryMinutes` after they were made.
 * The flow says when an approval acts (`approvalRuns`): approve-first (the default) collects both
 * approvals before anything freezes, and the one that completes the pair runs the whole cutover;
 * step-by-step freezes on the freeze approval and holds writes while people decide on the switch.
 */
import type { ApprovalBinding } from './freeze-prediction.js';
import type { SessionState } from './session.js';

export const GATES = ['freeze', 'switch'] as const;
export type Gate = (typeof GATES)[number];

export type GateRequestStatus = 'pending' | 'approved' | 'executed' | 'withdrawn' | 'failed' | 'expired';

export interface GateRequest {
  id: string;
  sessionId: string;
  gate: Gate;
  status: GateRequestStatus;
  requestedBy: string;
  requestedAt: Date;
  requestExpiresAt: Date;
  approvedBy: string | null;
  approvedAt: Date | null;
  approvalExpiresAt: Date | null;
  closedAt: Date | null;
  /** What the person saw when requesting or (then) approving: the plan, the lag, the predicted freeze. */
  binding?: ApprovalBinding | null;
}

/** approve-first: both gates approved before the freeze, then one run; step-by-step: freeze, look, switch. */
export type CutoverFlow = 'approve-first' | 'step-by-step';

export interface GatePolicy {
  /** User ids (U…/W…) or user group ids (S…). */
  operators: readonly string[];
  approvers: readonly string[];
  twoPersonRule: boolean;
  flow: CutoverFlow;
  approvalExpiryMinutes: number;
}

/** Members of the user groups named in the policy, as resolved by the Slack layer. */
export type GroupMembers = ReadonlyMap<string, readonly string[]>;

export interface Roles {
  operator: boolean;
  approver: boolean;
}

const isGroup = (principal: string) => principal.startsWith('S');

/** The user group ids a policy mentions (to be expanded before deciding). */
export function groupsOf(policy: Pick<GatePolicy, 'operators' | 'approvers'>): string[] {
  return [...new Set([...policy.operators, ...policy.approvers].filter(isGroup))];
}

export function isMember(userId: string, principals: readonly string[], groups: GroupMembers): boolean {
  return principals.some((p) => (isGroup(p) ? (groups.get(p) ?? []).includes(userId) : p === userId));
}

export function rolesOf(userId: string, policy: GatePolicy, groups: GroupMembers): Roles {
  return { operator: isMember(userId, policy.operators, groups), approver: isMember(userId, policy.approvers, groups) };
}

export function expiryFrom(now: Date, minutes: number): Date {
  return new Date(now.getTime() + minutes * 60_000);
}

/** Where an open request stands at `now`. */
export type GateStatus = 'none' | 'pending' | 'approved' | 'request_expired' | 'approval_expired';

export function gateStatus(request: GateRequest | undefined, now: Date): GateStatus {
  if (!request) return 'none';
  if (request.status === 'pending') return request.requestExpiresAt > now ? 'pending' : 'request_expired';
  if (request.status === 'approved') {
    return request.approvalExpiresAt && request.approvalExpiresAt > now ? 'approved' : 'approval_expired';
  }
  return 'none';
}

/** A valid (approved, unexpired) approval for `gate` among the open requests, if any. */
export function validApproval(requests: readonly GateRequest[], gate: Gate, now: Date): GateRequest | undefined {
  return requests.find((r) => r.gate === gate && gateStatus(r, now) === 'approved');
}

/**
 * What an approval of `gate` starts now: `now` (the freeze, or the switch while frozen), `cutover`
 * (the switch approval completed the pair: the whole cutover runs), or nothing yet: `ahead` (a switch
 * approved before the freeze) or `with_switch` (approve-first: the freeze waits for the switch approval).
 */
export type ApprovalRuns = 'now' | 'cutover' | 'ahead' | 'with_switch';

export function approvalRuns(gate: Gate, flow: CutoverFlow, state: SessionState, requests: Partial<Record<Gate, GateRequest>>, now: Date): ApprovalRuns {
  if (gate === 'freeze') return flow === 'step-by-step' || gateStatus(requests.switch, now) === 'approved' ? 'now' : 'with_switch';
  if (state === 'frozen') return 'now';
  return flow === 'approve-first' && gateStatus(requests.freeze, now) === 'approved' ? 'cutover' : 'ahead';
}

/** What a person can ask for, from a button or a command. */
export const USER_ACTIONS = [
  'start',
  'freeze_request',
  'freeze_approve',
  'freeze_now',
  'freeze_withdraw',
  'switch_request',
  'switch_approve',
  'switch_now',
  'switch_run',
  'switch_withdraw',
  'resume',
  'abort',
  'rollback',
  'finish',
  'report',
] as const;
export type UserAction = (typeof USER_ACTIONS)[number];

export type RefusalCode = 'not_authorized' | 'gate_refused' | 'approval_expired' | 'invalid_state';
export type Decision = { ok: true } | { ok: false; code: RefusalCode; reason: string };

export interface DecisionInput {
  action: UserAction;
  actor: string;
  roles: Roles;
  policy: GatePolicy;
  /** Absent for `start` (no session yet). */
  state?: SessionState;
  /** The open (pending or approved) request per gate, if any. */
  requests: Partial<Record<Gate, GateRequest>>;
  now: Date;
}

const ok: Decision = { ok: true };
const refuse = (code: RefusalCode, reason: string): Decision => ({ ok: false, code, reason });

const ROLE_TEXT = {
  operator: 'an operator of this profile',
  approver: 'an approver of this profile',
  either: 'an operator or approver of this profile',
} as const;

function needs(role: keyof typeof ROLE_TEXT, roles: Roles): Decision {
  const has = role === 'either' ? roles.operator || roles.approver : roles[role];
  return has ? ok : refuse('not_authorized', `only ${ROLE_TEXT[role]} can do that`);
}

function inState(state: SessionState | undefined, allowed: readonly SessionState[], what: string): Decision {
  return state !== undefined && allowed.includes(state) ? ok : refuse('invalid_state', what);
}

const at = (d: Date | null) => (d ? d.toISOString().slice(11, 16) + ' UTC' : 'unknown');

/** Whether `actor` may perform `action` now. People only: the engine checks the machines itself. */
export function decide(input: DecisionInput): Decision {
  const { action, actor, roles, policy, state, requests, now } = input;
  const freeze = requests.freeze;
  const sw = requests.switch;
  const freezeStatus = gateStatus(freeze, now);
  const switchStatus = gateStatus(sw, now);
  const all = (...decisions: (() => Decision)[]): Decision => {
    for (const d of decisions) {
      const result = d();
      if (!result.ok) return result;
    }
    return ok;
  };
  const notSelf = (request: GateRequest | undefined, what: string) => (): Decision =>
    policy.twoPersonRule && request?.requestedBy === actor
      ? refuse('gate_refused', `two-person rule: you requested the ${what}, so someone else has to approve it`)
      : ok;
  const ruleOff = (what: string) => (): Decision =>
    policy.twoPersonRule ? refuse('gate_refused', `two-person rule: the ${what} needs a request and a second person's approval`) : ok;

  switch (action) {
    case 'start':
      return needs('operator', roles);
    case 'freeze_request':
      return all(
        () => needs('operator', roles),
        () => inState(state, ['syncing'], 'writes can only be frozen while the session is syncing'),
        () =>
          freezeStatus === 'pending' || freezeStatus === 'approved'
            ? refuse('gate_refused', `a freeze was already requested by <@${freeze?.requestedBy}>`)
            : ok,
      );
    case 'freeze_now':
      return all(
        ruleOff('freeze'),
        () => needs('operator', roles),
        () => inState(state, ['syncing'], 'writes can only be frozen while the session is syncing'),
      );
    case 'freeze_approve':
      return all(
        () => needs('either', roles),
        () => inState(state, ['syncing'], 'writes can only be frozen while the session is syncing'),
        () => pendingCheck(freezeStatus, freeze, 'freeze'),
        notSelf(freeze, 'freeze'),
      );
    case 'freeze_withdraw':
      return all(
        () => (freeze && (freeze.requestedBy === actor || roles.operator) ? ok : needs('operator', roles)),
        () => (freezeStatus === 'none' ? refuse('invalid_state', 'there is no open freeze request') : ok),
      );
    case 'switch_request':
      return all(
        () => needs('operator', roles),
        () => inState(state, ['syncing', 'frozen'], 'a switch can only be requested while syncing or frozen'),
        () =>
          switchStatus === 'pending' || switchStatus === 'approved'
            ? refuse('gate_refused', `a switch was already requested by <@${sw?.requestedBy}>`)
            : ok,
      );
    case 'switch_approve':
      return all(
        () => needs('approver', roles),
        () => inState(state, ['syncing', 'frozen'], 'a switch can only be approved while syncing or frozen'),
        () => pendingCheck(switchStatus, sw, 'switch'),
        notSelf(sw, 'switch'),
      );
    case 'switch_now':
      return all(
        ruleOff('switch'),
        () => needs('approver', roles),
        () => inState(state, ['frozen'], 'the switch needs writes frozen first'),
      );
    case 'switch_run':
      return all(
        () => needs('either', roles),
        () => inState(state, ['frozen'], 'the switch needs writes frozen first'),
        () => {
          if (switchStatus === 'approved') return ok;
          if (switchStatus === 'approval_expired') {
            return refuse(
              'approval_expired',
              `the switch approval by <@${sw?.approvedBy}> expired at ${at(sw?.approvalExpiresAt ?? null)}; request and approve it again`,
            );
          }
          return refuse('gate_refused', 'the switch has not been approved');
        },
      );
    case 'switch_withdraw':
      return all(
        () => (sw && (sw.requestedBy === actor || roles.operator) ? ok : needs('operator', roles)),
        () => (switchStatus === 'none' ? refuse('invalid_state', 'there is no open switch request') : ok),
      );
    case 'resume':
      return all(() => needs('operator', roles), () => inState(state, ['frozen'], 'writes are not frozen'));
    case 'abort':
      return all(
        () => needs('operator', roles),
        () =>
          inState(
            state,
            ['created', 'syncing', 'frozen', 'rolled_back'],
            state === 'switched' ? 'traffic already goes to the target: roll back or finish instead' : 'the session has ended',
          ),
      );
    case 'rollback':
      return all(() => needs('operator', roles), () => inState(state, ['switched'], 'only a switched session can roll back'));
    case 'finish':
      return all(() => needs('operator', roles), () => inState(state, ['switched'], 'finish comes after the switch'));
    case 'report':
      return all(
        () => needs('operator', roles),
        () => inState(state, ['created', 'syncing', 'frozen', 'switched'], 'the session has ended'),
      );
  }
}

function pendingCheck(status: GateStatus, request: GateRequest | undefined, what: string): Decision {
  switch (status) {
    case 'pending':
      return ok;
    case 'request_expired':
      return refuse(
        'approval_expired',
        `the ${what} request by <@${request?.requestedBy}> expired at ${at(request?.requestExpiresAt ?? null)}; request it again`,
      );
    case 'approved':
      return refuse('gate_refused', `the ${what} is already approved by <@${request?.approvedBy}>`);
    default:
      return refuse('gate_refused', `nobody has requested the ${what}`);
  }
}

/**
 * The actions the status message offers in a state (buttons). Permission is checked again at click
 * time for the person who clicks; this only decides what is worth showing.
 */
export function availableActions(
  state: SessionState,
  policy: Pick<GatePolicy, 'twoPersonRule'>,
  requests: Partial<Record<Gate, GateRequest>>,
  now: Date,
): UserAction[] {
  const freeze = gateStatus(requests.freeze, now);
  const sw = gateStatus(requests.switch, now);
  const switchButtons = (frozen: boolean): UserAction[] => {
    if (sw === 'approved') return frozen ? ['switch_run', 'switch_withdraw'] : ['switch_withdraw'];
    if (sw === 'pending') return ['switch_approve', 'switch_withdraw'];
    return frozen && !policy.twoPersonRule ? ['switch_now'] : ['switch_request'];
  };
  switch (state) {
    case 'created':
      return ['abort'];
    case 'syncing': {
      // An approved freeze still open while syncing waits for the switch approval (approve-first).
      const freezeButtons: UserAction[] =
        freeze === 'pending'
          ? ['freeze_approve', 'freeze_withdraw']
          : freeze === 'approved'
            ? ['freeze_withdraw']
            : policy.twoPersonRule
              ? ['freeze_request']
              : ['freeze_now'];
      return [...freezeButtons, ...switchButtons(false), 'abort'];
    }
    case 'frozen':
      return [...switchButtons(true), 'resume', 'abort'];
    case 'switched':
      return ['finish', 'rollback'];
    case 'rolled_back':
      return ['abort'];
    default:
      return [];
  }
}
