/**
 * The use cases on in-memory ports: people are checked once and a refusal is one fact (a stale button
 * a quiet one); gate requests, withdrawals and approvals are one fact each and one version step; a
 * start posts the status message without a version step; a dry run stores nothing.
 */
import { describe, expect, it } from 'vitest';
import { parseReportSchedule } from '../../src/domain/report-schedule.js';
import { ErrorCode } from '../../src/errors.js';
import { CHANNEL, House, U } from '../support/memory/house.js';

async function started(profile: 'orders' | 'catalog' | 'solo' = 'orders') {
  const house = new House();
  const a = house.replica('A');
  const s = await a.startSession(profile);
  return { house, a, s };
}

describe('People.check: refusals are recorded once', () => {
  it('a stale button: SessionConflict, one quiet refusal, the status message redrawn, nothing done', async () => {
    const { house, a, s } = await started();
    const seen = (await house.session(s.id)).version;
    await a.perform('freeze_request', s.id, U.OPS);
    const before = house.events.length;
    await expect(a.actions.perform('freeze_request', { sessionId: s.id, version: seen }, U.DAN)).rejects.toMatchObject({ code: ErrorCode.SessionConflict });
    expect(house.events.slice(before).map((e) => e.fact)).toEqual([
      { type: 'refused', actor: U.DAN, action: 'freeze_request', reason: 'stale', quiet: true, details: { seenVersion: seen, version: seen + 1 } },
    ]);
    expect(a.status.refreshed.at(-1)).toBe(s.id);
    expect((await house.store.approvals.forSession(s.id)).length).toBe(1);
  });

  it.each([
    ['someone with no role requests the freeze', 'freeze_request', U.EVE, ErrorCode.NotAuthorized, /only an operator/],
    ['an operator (not an approver) approves the switch', 'switch_approve', U.DAN, ErrorCode.NotAuthorized, /only an approver/],
    ['the requester approves their own freeze (two-person rule)', 'freeze_approve', U.OPS, ErrorCode.GateRefused, /two-person rule/],
    ['a switch is run without being approved', 'switch_run', U.OPS, ErrorCode.InvalidTransition, /frozen first/],
    ['a rollback before any switch', 'rollback', U.OPS, ErrorCode.InvalidTransition, /only a switched session/],
  ] as const)('%s: one refusal fact, one audit row, an error for the person', async (_what, action, who, code, reason) => {
    const { house, a, s } = await started();
    await a.perform('freeze_request', s.id, U.OPS);
    if (action === 'switch_approve') await a.perform('switch_request', s.id, U.OPS);
    const before = house.events.length;
    const version = (await house.session(s.id)).version;
    await expect(a.perform(action, s.id, who)).rejects.toMatchObject({ code });
    const recorded = house.events.slice(before).map((e) => e.fact);
    expect(recorded).toEqual([{ type: 'refused', actor: who, action, reason: expect.stringMatching(reason), details: { code: expect.any(String) } }]);
    expect((await house.session(s.id)).version).toBe(version);
    expect(house.world.count('freeze')).toBe(0);
    const rows = await house.store.audit.forSession(s.id);
    expect(rows.at(-1)).toMatchObject({ actor: who, action, outcome: 'refused' });
    const { rows: audit, facts } = await house.auditMatchesFacts(s.id);
    expect(audit).toEqual(facts);
  });

  it('an expired freeze request cannot be approved: ApprovalExpired, and it can be requested again', async () => {
    const { house, a, s } = await started();
    await a.perform('freeze_request', s.id, U.OPS);
    await house.clock.advance(16 * 60_000);
    await expect(a.perform('freeze_approve', s.id, U.APP)).rejects.toMatchObject({ code: ErrorCode.ApprovalExpired });
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'refused', action: 'freeze_approve', details: { code: 'approval_expired' } });
    await a.perform('freeze_request', s.id, U.DAN);
    expect((await house.store.approvals.forSession(s.id)).map((r) => `${r.requestedBy}:${r.status}`)).toEqual([`${U.OPS}:expired`, `${U.DAN}:pending`]);
  });

  it('a member of an operator user group may act as an operator', async () => {
    const { house, a, s } = await started();
    await a.perform('freeze_request', s.id, U.DAN);
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'gate_requested', actor: U.DAN });
  });
});

describe('gate requests, withdrawals and approvals', () => {
  it('each is one fact and one version step', async () => {
    const { house, a, s } = await started();
    const v0 = (await house.session(s.id)).version;
    const requested = await a.perform('freeze_request', s.id, U.OPS);
    expect(requested?.version).toBe(v0 + 1);
    expect(house.facts(s.id).at(-1)).toEqual({
      type: 'gate_requested',
      actor: U.OPS,
      action: 'freeze_request',
      gate: 'freeze',
      expiresAt: new Date(house.clock.now().getTime() + 15 * 60_000),
      approverHint: 'another operator or approver',
    });
    const withdrawn = await a.perform('freeze_withdraw', s.id, U.OPS);
    expect(withdrawn?.version).toBe(v0 + 2);
    expect(house.facts(s.id).at(-1)).toEqual({ type: 'gate_withdrawn', actor: U.OPS, action: 'freeze_withdraw', gate: 'freeze', requestedBy: U.OPS });
    expect(await house.store.approvals.open(s.id)).toEqual({});

    await a.perform('switch_request', s.id, U.OPS);
    const approved = await a.perform('switch_approve', s.id, U.APP);
    expect(approved).toMatchObject({ state: 'syncing', version: v0 + 4 });
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'gate_approved', actor: U.APP, gate: 'switch', requestedBy: U.OPS, runs: 'ahead', validUntil: expect.any(Date) });
    expect(house.factTypes(s.id).slice(2)).toEqual(['gate_requested', 'gate_withdrawn', 'gate_requested', 'gate_approved']);
    const { rows, facts } = await house.auditMatchesFacts(s.id);
    expect(rows).toEqual(facts);
  });

  it('without the two-person rule, "freeze now" requests and approves in one step and freezes', async () => {
    const { house, a, s } = await started('solo');
    const frozen = await a.perform('freeze_now', s.id, U.OPS);
    expect(frozen?.state).toBe('frozen');
    expect(house.facts(s.id).find((f) => f.type === 'gate_approved')).toMatchObject({ actor: U.OPS, requestedBy: U.OPS, runs: 'now' });
    expect(house.facts(s.id).find((f) => f.type === 'frozen')).toMatchObject({ requestedBy: U.OPS, approvedBy: U.OPS });
    expect((await house.store.approvals.latest(s.id, 'freeze'))?.status).toBe('executed');
  });
});

describe('StartSession', () => {
  it('start: one session, its status message posted without a version step, the migration started', async () => {
    const { house, a, s } = await started();
    expect(s).toMatchObject({ state: 'syncing', version: 2, statusMessageTs: expect.any(String), doMigrationId: 'mig-1', startedBy: U.OPS });
    expect(house.factTypes(s.id)).toEqual(['session_started', 'migration_started']);
    expect(house.facts(s.id)[1]).toEqual({ type: 'migration_started', actor: U.OPS, migrationId: 'mig-1' });
    expect(house.world.effects()).toEqual(['start_migration']);
    expect(a.status.refreshed).toContain(s.id);
    await expect(a.startSession('orders')).rejects.toMatchObject({ code: ErrorCode.SessionAlreadyActive });
    expect(await house.store.sessions.listForChannel(CHANNEL.orders)).toHaveLength(1);
  });

  it.each([
    ['someone who is not an operator', CHANNEL.orders, U.EVE, 'orders', ErrorCode.NotAuthorized],
    ['a profile of another channel', CHANNEL.catalog, U.OPS, 'orders', ErrorCode.ProfileNotAllowedHere],
    ['a profile that does not exist', CHANNEL.orders, U.OPS, 'nope', ErrorCode.ProfileNotFound],
  ] as const)('refuses %s: audited without a session, nothing started', async (_what, channel, who, profile, code) => {
    const house = new House();
    const a = house.replica('A');
    await expect(a.start.start(channel, who, profile)).rejects.toMatchObject({ code });
    expect(await house.store.sessions.listActive()).toEqual([]);
    expect(house.world.calls).toEqual([]);
    expect(house.store.audit.all()).toMatchObject([{ sessionId: null, channelId: channel, actor: who, action: 'start', outcome: 'refused' }]);
    expect(house.events).toEqual([]);
  });

  it('dry run: the plan and the preflight, and nothing stored but one audit row', async () => {
    const house = new House();
    const a = house.replica('A');
    const dry = await a.start.dryRun(CHANNEL.orders, U.OPS, 'orders');
    expect(dry.plan.map((p) => p.name)).toEqual([
      'Check preconditions',
      'Freeze writes',
      'Prove the fence',
      'Copy sequences',
      'Repoint the proxy',
      'Resume writes on the target',
      'Replicate back',
      'Finish',
    ]);
    expect(dry.plan[0]?.description).toContain('pgbouncer database orders');
    expect(dry.preflight).toEqual([{ check: 'wal_level', status: 'pass', detail: 'logical' }]);
    expect(await house.store.sessions.listForChannel(CHANNEL.orders)).toEqual([]);
    expect(house.world.effects()).toEqual([]);
    expect(house.world.open).toBe(0);
    expect(house.store.audit.all()).toMatchObject([{ sessionId: null, action: 'dry_run', outcome: 'succeeded', details: { profile: 'orders', failedChecks: 0, steps: 8 } }]);
    expect(house.events).toEqual([]);
  });

  it('report schedule: stored, one fact', async () => {
    const { house, a, s } = await started();
    const parsed = parseReportSchedule('every 15m');
    if (!parsed.ok) throw new Error(parsed.message);
    await a.start.setReport(CHANNEL.orders, U.OPS, parsed.schedule);
    expect(await house.store.schedules.get(s.id)).toBe('every 15m');
    expect(house.facts(s.id).at(-1)).toEqual({ type: 'report_schedule_set', actor: U.OPS, schedule: 'every 15m' });
    await expect(a.start.setReport(CHANNEL.orders, U.EVE, parsed.schedule)).rejects.toMatchObject({ code: ErrorCode.NotAuthorized });
  });
});
