/**
 * The in-memory ports keep the contracts of the store adapters they stand in for (the engine and use
 * case tests are only as good as these): compare-and-set sessions, atomic gate steps, one open request
 * per gate, locks that die with their process, a fake clock that fires timers in order.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { FakeClock } from '../support/memory/clock.js';
import { Process } from '../support/memory/process.js';
import { MemoryStore } from '../support/memory/stores.js';

const T0 = new Date('2030-01-01T00:00:00Z');

function store() {
  const clock = new FakeClock(T0);
  return { clock, store: new MemoryStore(() => clock.now()) };
}

describe('in-memory sessions', () => {
  it('compare-and-set on the version: of two changes based on one version, one wins', async () => {
    const { store: s } = store();
    const created = await s.sessions.create({ channelId: 'C1', profile: 'p', strategy: 'proxy', startedBy: 'U1' });
    expect(created).toMatchObject({ state: 'created', version: 1 });
    const results = await Promise.allSettled([s.sessions.transition(created.id, 1, 'migration_started'), s.sessions.transition(created.id, 1, 'abort')]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: ErrorCode.SessionConflict } });
    await expect(s.sessions.transition(created.id, 2, 'switch')).rejects.toMatchObject({ code: ErrorCode.InvalidTransition });
    await expect(s.sessions.require('nope')).rejects.toMatchObject({ code: ErrorCode.SessionNotFound });
    await expect(s.sessions.create({ channelId: 'C1', profile: 'p', strategy: 'proxy', startedBy: 'U1' })).rejects.toMatchObject({ code: ErrorCode.SessionAlreadyActive });
  });

  it('a gate step is one version step with its gate change, or neither', async () => {
    const { store: s, clock } = store();
    const created = await s.sessions.create({ channelId: 'C1', profile: 'p', strategy: 'proxy', startedBy: 'U1' });
    const input = { sessionId: created.id, gate: 'freeze' as const, requestedBy: 'U1', now: clock.now(), expiryMinutes: 15 };
    const { session } = await s.sessions.gateStep(created.id, 1, (approvals) => approvals.request(input));
    expect(session.version).toBe(2);
    // A second open request of the same gate: GateRefused, and the step is rolled back.
    await expect(s.sessions.gateStep(created.id, 2, (approvals) => approvals.request(input))).rejects.toMatchObject({ code: ErrorCode.GateRefused });
    expect((await s.sessions.require(created.id)).version).toBe(2);
    // A failure after a change inside the step rolls the change back too.
    const open = (await s.approvals.open(created.id)).freeze!;
    await expect(
      s.sessions.gateStep(created.id, 2, async (approvals) => {
        await approvals.close(open.id, 'withdrawn', clock.now());
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await s.approvals.open(created.id)).freeze?.status).toBe('pending');
    // A stale version changes nothing.
    await expect(s.sessions.gateStep(created.id, 1, (approvals) => approvals.close(open.id, 'withdrawn', clock.now()))).rejects.toMatchObject({ code: ErrorCode.SessionConflict });
    expect((await s.approvals.open(created.id)).freeze?.status).toBe('pending');
    // The status message moves without a version step.
    expect(await s.sessions.setStatusMessage(created.id, '123.456')).toMatchObject({ version: 2, statusMessageTs: '123.456' });
  });

  it('approvals expire by the clock passed in', async () => {
    const { store: s, clock } = store();
    const created = await s.sessions.create({ channelId: 'C1', profile: 'p', strategy: 'proxy', startedBy: 'U1' });
    const { result: request } = await s.sessions.gateStep(created.id, 1, (a) => a.request({ sessionId: created.id, gate: 'switch', requestedBy: 'U1', now: clock.now(), expiryMinutes: 15 }));
    await s.approvals.approve(request.id, { approvedBy: 'U2', now: clock.now(), expiryMinutes: 15 });
    await expect(s.approvals.approve(request.id, { approvedBy: 'U3', now: clock.now(), expiryMinutes: 15 })).rejects.toMatchObject({ code: ErrorCode.GateRefused });
    expect(await s.approvals.validApproval(created.id, 'switch', clock.now())).toMatchObject({ approvedBy: 'U2' });
    await clock.advance(15 * 60_000);
    expect(await s.approvals.validApproval(created.id, 'switch', clock.now())).toBeUndefined();
  });
});

describe('in-memory executor locks and processes', () => {
  it('one holder per key; a killed holder’s lock is released though its work never finished', async () => {
    const { store: s } = store();
    const [a, b] = [new Process('A'), new Process('B')];
    let release!: () => void;
    const held = s.locks.forProcess(a).withTryLock('k', () => new Promise<string>((resolve) => (release = () => resolve('done'))));
    await new Promise((r) => setImmediate(r));
    expect(await s.locks.forProcess(b).withTryLock('k', async () => 'b')).toBeUndefined();
    a.kill();
    expect(await s.locks.forProcess(b).withTryLock('k', async () => 'b')).toBe('b');
    release();
    const late = await Promise.race([held, new Promise((r) => setTimeout(() => r('never answered'), 20))]);
    expect(late).toBe('never answered');
  });

  it('a killed process’s store calls never answer', async () => {
    const { store: s } = store();
    const a = new Process('A');
    const ports = s.connect(a);
    await ports.sessions.create({ channelId: 'C1', profile: 'p', strategy: 'proxy', startedBy: 'U1' });
    a.kill();
    const answer = await Promise.race([ports.sessions.listActive(), new Promise((r) => setTimeout(() => r('never answered'), 20))]);
    expect(answer).toBe('never answered');
  });
});

describe('the fake clock', () => {
  it('fires due timers in order, letting the work of one run before the next', async () => {
    const clock = new FakeClock(T0);
    const fired: string[] = [];
    clock.setTimer(300, () => fired.push('300'));
    clock.setTimer(100, () => {
      fired.push('100');
      void Promise.resolve().then(() => clock.setTimer(50, () => fired.push('100+50')));
    });
    const cancelled = clock.setTimer(200, () => fired.push('200'));
    cancelled.cancel();
    await clock.advance(299);
    expect(fired).toEqual(['100', '100+50']);
    expect(clock.now().getTime() - T0.getTime()).toBe(299);
    await clock.advance(1);
    expect(fired).toEqual(['100', '100+50', '300']);
  });

  it('a killed process’s timers never fire', async () => {
    const clock = new FakeClock(T0);
    const p = new Process('A');
    const fired: string[] = [];
    clock.for(p).setTimer(10, () => fired.push('A'));
    clock.setTimer(10, () => fired.push('world'));
    p.kill();
    await clock.advance(20);
    expect(fired).toEqual(['world']);
  });
});
