import { describe, expect, it } from 'vitest';
import {
  availableActions,
  decide,
  expiryFrom,
  gateStatus,
  groupsOf,
  rolesOf,
  validApproval,
  type DecisionInput,
  type GatePolicy,
  type GateRequest,
} from '../../src/domain/gates.js';

const policy: GatePolicy = { operators: ['UALICE', 'SOPS'], approvers: ['UCAROL'], twoPersonRule: true, flow: 'approve-first', approvalExpiryMinutes: 15 };
const groups = new Map([['SOPS', ['UBOB']]]);
const t0 = new Date('2026-01-01T10:00:00Z');
const minutes = (n: number) => new Date(t0.getTime() + n * 60_000);

function request(gate: 'freeze' | 'switch', by: string, extra: Partial<GateRequest> = {}): GateRequest {
  return {
    id: `${gate}-1`,
    sessionId: 's1',
    gate,
    status: 'pending',
    requestedBy: by,
    requestedAt: t0,
    requestExpiresAt: minutes(15),
    approvedBy: null,
    approvedAt: null,
    approvalExpiresAt: null,
    closedAt: null,
    ...extra,
  };
}

const input = (over: Partial<DecisionInput> & Pick<DecisionInput, 'action' | 'actor'>): DecisionInput => ({
  roles: rolesOf(over.actor, over.policy ?? policy, groups),
  policy,
  state: 'syncing',
  requests: {},
  now: t0,
  ...over,
});

describe('roles', () => {
  it('expands user groups and lists the groups to expand', () => {
    expect(groupsOf(policy)).toEqual(['SOPS']);
    expect(rolesOf('UBOB', policy, groups)).toEqual({ operator: true, approver: false });
    expect(rolesOf('UCAROL', policy, groups)).toEqual({ operator: false, approver: true });
    expect(rolesOf('UMALLORY', policy, groups)).toEqual({ operator: false, approver: false });
    expect(rolesOf('UBOB', policy, new Map())).toEqual({ operator: false, approver: false });
  });
});

describe('decide', () => {
  it('lets operators start, request a freeze and resume; refuses others', () => {
    expect(decide(input({ action: 'start', actor: 'UALICE', state: undefined }))).toEqual({ ok: true });
    expect(decide(input({ action: 'start', actor: 'UCAROL', state: undefined }))).toMatchObject({ ok: false, code: 'not_authorized' });
    expect(decide(input({ action: 'freeze_request', actor: 'UBOB' }))).toEqual({ ok: true });
    expect(decide(input({ action: 'freeze_request', actor: 'UMALLORY' }))).toMatchObject({ ok: false, code: 'not_authorized' });
    expect(decide(input({ action: 'resume', actor: 'UALICE', state: 'frozen' }))).toEqual({ ok: true });
    expect(decide(input({ action: 'resume', actor: 'UALICE', state: 'syncing' }))).toMatchObject({ ok: false, code: 'invalid_state' });
  });

  it('applies the two-person rule to freeze and switch approvals', () => {
    const freeze = request('freeze', 'UALICE');
    expect(decide(input({ action: 'freeze_approve', actor: 'UALICE', requests: { freeze } }))).toMatchObject({
      ok: false,
      code: 'gate_refused',
      reason: expect.stringContaining('two-person rule'),
    });
    expect(decide(input({ action: 'freeze_approve', actor: 'UBOB', requests: { freeze } }))).toEqual({ ok: true });
    expect(decide(input({ action: 'freeze_approve', actor: 'UCAROL', requests: { freeze } }))).toEqual({ ok: true });
    const sw = request('switch', 'UCAROL');
    const both = { ...policy, operators: [...policy.operators, 'UCAROL'] };
    expect(decide(input({ action: 'switch_approve', actor: 'UCAROL', policy: both, requests: { switch: sw } }))).toMatchObject({ code: 'gate_refused' });
    expect(decide(input({ action: 'switch_approve', actor: 'UBOB', requests: { switch: sw } }))).toMatchObject({ code: 'not_authorized' });
    const off = { ...policy, twoPersonRule: false };
    expect(decide(input({ action: 'freeze_approve', actor: 'UALICE', policy: off, requests: { freeze } }))).toEqual({ ok: true });
    expect(decide(input({ action: 'freeze_now', actor: 'UALICE', policy: off }))).toEqual({ ok: true });
    expect(decide(input({ action: 'freeze_now', actor: 'UALICE' }))).toMatchObject({ code: 'gate_refused' });
  });

  it('refuses expired requests and approvals by the clock', () => {
    const freeze = request('freeze', 'UALICE');
    expect(decide(input({ action: 'freeze_approve', actor: 'UBOB', requests: { freeze }, now: minutes(14) }))).toEqual({ ok: true });
    expect(decide(input({ action: 'freeze_approve', actor: 'UBOB', requests: { freeze }, now: minutes(15) }))).toMatchObject({
      ok: false,
      code: 'approval_expired',
    });
    // An expired request does not block a new one.
    expect(decide(input({ action: 'freeze_request', actor: 'UBOB', requests: { freeze }, now: minutes(16) }))).toEqual({ ok: true });
    expect(decide(input({ action: 'freeze_request', actor: 'UBOB', requests: { freeze }, now: minutes(1) }))).toMatchObject({ code: 'gate_refused' });

    const approved = request('switch', 'UALICE', { status: 'approved', approvedBy: 'UCAROL', approvedAt: minutes(1), approvalExpiresAt: expiryFrom(minutes(1), 15) });
    const run = (now: Date) => decide(input({ action: 'switch_run', actor: 'UBOB', state: 'frozen', requests: { switch: approved }, now }));
    expect(run(minutes(10))).toEqual({ ok: true });
    expect(run(minutes(16))).toMatchObject({ ok: false, code: 'approval_expired', reason: expect.stringContaining('expired at 10:16 UTC') });
    expect(gateStatus(approved, minutes(16))).toBe('approval_expired');
    expect(validApproval([approved], 'switch', minutes(10))).toBe(approved);
    expect(validApproval([approved], 'switch', minutes(16))).toBeUndefined();
    expect(decide(input({ action: 'switch_run', actor: 'UBOB', state: 'syncing', requests: { switch: approved }, now: minutes(2) }))).toMatchObject({ code: 'invalid_state' });
  });

  it('allows approving the switch ahead of time while syncing', () => {
    const sw = request('switch', 'UALICE');
    expect(decide(input({ action: 'switch_approve', actor: 'UCAROL', requests: { switch: sw } }))).toEqual({ ok: true });
    expect(decide(input({ action: 'switch_approve', actor: 'UCAROL', state: 'switched', requests: { switch: sw } }))).toMatchObject({ code: 'invalid_state' });
  });

  it('abort, rollback and finish follow the lifecycle', () => {
    expect(decide(input({ action: 'abort', actor: 'UALICE', state: 'switched' }))).toMatchObject({ reason: expect.stringContaining('roll back or finish') });
    expect(decide(input({ action: 'rollback', actor: 'UALICE', state: 'switched' }))).toEqual({ ok: true });
    expect(decide(input({ action: 'finish', actor: 'UCAROL', state: 'switched' }))).toMatchObject({ code: 'not_authorized' });
  });
});

describe('availableActions', () => {
  it('offers only the buttons valid in each state', () => {
    expect(availableActions('created', policy, {}, t0)).toEqual(['abort']);
    expect(availableActions('syncing', policy, {}, t0)).toEqual(['freeze_request', 'switch_request', 'abort']);
    expect(availableActions('syncing', policy, { freeze: request('freeze', 'UALICE') }, t0)).toEqual([
      'freeze_approve',
      'freeze_withdraw',
      'switch_request',
      'abort',
    ]);
    expect(availableActions('syncing', policy, { freeze: request('freeze', 'UALICE') }, minutes(20))).toEqual(['freeze_request', 'switch_request', 'abort']);
    expect(availableActions('syncing', { twoPersonRule: false }, {}, t0)).toEqual(['freeze_now', 'switch_request', 'abort']);
    const approved = request('switch', 'UALICE', { status: 'approved', approvedBy: 'UCAROL', approvalExpiresAt: minutes(15) });
    expect(availableActions('frozen', policy, { switch: approved }, t0)).toEqual(['switch_run', 'switch_withdraw', 'resume', 'abort']);
    expect(availableActions('frozen', policy, { switch: approved }, minutes(15))).toEqual(['switch_request', 'resume', 'abort']);
    expect(availableActions('frozen', { twoPersonRule: false }, {}, t0)).toEqual(['switch_now', 'resume', 'abort']);
    expect(availableActions('switched', policy, {}, t0)).toEqual(['finish', 'rollback']);
    expect(availableActions('finished', policy, {}, t0)).toEqual([]);
  });
});
