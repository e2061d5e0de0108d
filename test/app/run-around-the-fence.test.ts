/**
 * What the run does around the fence, on in-memory ports: replication catches up just before writes
 * stop (a stream that does not refuses the freeze, and nothing is held), and the sequences are copied
 * while the fence is proven, the journal keeping the plan's order.
 */
import { describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { House, U, type Replica } from '../support/memory/house.js';

const journalOf = async (house: House, sessionId: string) => (await house.store.journal.entries(sessionId)).map((e) => `${e.step}:${e.event}`);

/** Both gates requested, the freeze approved: the switch approval runs the whole cutover. */
async function oneApprovalAway(a: Replica) {
  const s = await a.startSession('orders');
  await a.perform('freeze_request', s.id, U.OPS);
  await a.perform('switch_request', s.id, U.OPS);
  await a.perform('freeze_approve', s.id, U.APP);
  return s;
}

describe('the catch-up just before the freeze', () => {
  it.each([['approve-first'], ['step-by-step']] as const)('%s: replication that does not catch up refuses the freeze; the proxy is never paused', async (flow) => {
    const house = new House({ flow });
    const a = house.replica('A');
    house.world.fail('catch_up');
    const s = flow === 'approve-first' ? await oneApprovalAway(a) : await a.startSession('orders');
    const refused =
      flow === 'approve-first'
        ? a.perform('switch_approve', s.id, U.BOB)
        : a.perform('freeze_request', s.id, U.OPS).then(() => a.perform('freeze_approve', s.id, U.APP));
    await expect(refused).rejects.toMatchObject({ code: ErrorCode.CutoverStepFailed });
    expect(house.world.count('catch_up')).toBe(1);
    expect(house.world.count('freeze')).toBe(0);
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source' });
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.facts(s.id).at(-1)).toMatchObject({
      type: 'resumed',
      reason: expect.stringMatching(/^the freeze failed: Replication did not catch up just before the freeze, so writes were not frozen: The target did not confirm/),
    });
  });

  it('a stream that catches up: the catch-up comes right before the freeze, and the freeze journals how long it took', async () => {
    const house = new House({ flow: 'approve-first' });
    const a = house.replica('A');
    const s = await oneApprovalAway(a);
    await a.perform('switch_approve', s.id, U.BOB);
    const calls = house.world.calls;
    expect(calls.indexOf('catch_up')).toBe(calls.indexOf('freeze') - 1);
    const freeze = (await house.store.journal.entries(s.id)).find((e) => e.step === 'freeze' && e.event === 'done');
    expect(freeze?.detail).toMatchObject({ caughtUpMs: 1 });
  });
});

describe('a crash inside the catch-up (nothing paused yet)', () => {
  it.each([['approve-first'], ['step-by-step']] as const)('%s: a new process finds writes flowing on the source and leaves them so', async (flow) => {
    const house = new House({ flow });
    const a = house.replica('A');
    const s = flow === 'approve-first' ? await oneApprovalAway(a) : await a.startSession('orders');
    if (flow === 'step-by-step') await a.perform('freeze_request', s.id, U.OPS);
    const catchingUp = house.world.hang('catch_up');
    void (flow === 'approve-first' ? a.perform('switch_approve', s.id, U.BOB) : a.perform('freeze_approve', s.id, U.APP)).catch(() => undefined);
    await catchingUp.reached;
    a.kill();

    const b = house.replica('B');
    await b.engine.recover();
    expect(house.world.count('freeze')).toBe(0);
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source' });
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(await b.engine.recover()).toEqual([]);
  });
});

describe('the sequences beside the fence', () => {
  it('are copied while the fence is still being proven; the journal keeps the plan order', async () => {
    const house = new House({ flow: 'approve-first' });
    const a = house.replica('A');
    const s = await oneApprovalAway(a);
    const fence = house.world.hang('fence');
    const running = a.perform('switch_approve', s.id, U.BOB);
    await fence.reached;
    await vi.waitFor(() => expect(house.world.calls).toContain('sequences'));
    // The fence has not answered: nothing was repointed yet.
    expect(house.world.pointsTo).toBe('source');
    fence.release();
    expect((await running)?.state).toBe('switched');
    const cutover = (await journalOf(house, s.id)).filter((e) => /^(freeze|fence|sequences|repoint|resume_target):/.test(e));
    expect(cutover).toEqual([
      'freeze:started',
      'freeze:done',
      'fence:started',
      'fence:done',
      'sequences:started',
      'sequences:done',
      'repoint:started',
      'repoint:done',
      'resume_target:started',
      'resume_target:done',
    ]);
  });

  it('a fence that fails while the sequences are copied: the copy ends before writes are resumed on the source', async () => {
    const house = new House({ flow: 'approve-first' });
    const a = house.replica('A');
    const s = await oneApprovalAway(a);
    house.world.fail('fence');
    const copying = house.world.hang('sequences');
    const running = a.perform('switch_approve', s.id, U.BOB);
    await copying.reached;
    await new Promise((r) => setTimeout(r, 20));
    // The fence failed already; the undo waits for the copy still running.
    expect(house.world.count('resume')).toBe(0);
    copying.release();
    await expect(running).rejects.toMatchObject({ code: ErrorCode.CutoverStepFailed });
    expect(house.world.effects()).toEqual(['start_migration', 'freeze', 'fence', 'sequences', 'resume']);
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source' });
  });
});

describe('a router that is the freeze (PgBouncer): each repoint leaves with its resume', () => {
  it('the cutover and the rollback each send their repoint with the resume, journaled in plan order', async () => {
    const house = new House({ flow: 'approve-first' });
    house.world.oneProxy = true;
    const a = house.replica('A');
    const s = await oneApprovalAway(a);
    expect((await a.perform('switch_approve', s.id, U.BOB))?.state).toBe('switched');
    expect((await a.perform('rollback', s.id, U.OPS))?.state).toBe('rolled_back');

    // The repoint comes no sooner than before: after the fence and the sequences, right before the resume.
    expect(house.world.effects()).toEqual(['start_migration', 'freeze', 'fence', 'sequences', 'repoint:target', 'resume', 'stop_migration', 'freeze', 'repoint:source', 'resume']);
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source' });
    const entries = await house.store.journal.entries(s.id);
    expect(entries.find((e) => e.step === 'repoint' && e.event === 'done')?.detail).toMatchObject({ sentWith: 'resume_target' });
    expect(entries.find((e) => e.step === 'rollback_repoint' && e.event === 'done')?.detail).toMatchObject({ sentWith: 'rollback_resume_source' });
  });

  it('a repoint the proxy does not take: writes resumed where it pointed, on the source, and the switch is told as failed', async () => {
    const house = new House({ flow: 'approve-first' });
    house.world.oneProxy = true;
    const a = house.replica('A');
    const s = await oneApprovalAway(a);
    house.world.fail('repoint:target');
    await expect(a.perform('switch_approve', s.id, U.BOB)).rejects.toMatchObject({ code: ErrorCode.CutoverStepFailed });
    // The resume left with the refused repoint; the undo then puts the source back in place (idempotent).
    expect(house.world.effects()).toEqual(['start_migration', 'freeze', 'fence', 'sequences', 'repoint:target', 'resume', 'repoint:source', 'resume']);
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source' });
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'resumed', reason: expect.stringMatching(/^the switch failed: The proxy did not take the new line/) });
  });
});
