/**
 * The freeze budget on a fake clock, and the undo after a failed step: whatever goes wrong after the
 * freeze, writes go back to the source (repointed first when a repoint was started), the channel hears
 * it once, and the session is back to syncing. A resume that fails leaves the journal saying so, and a
 * later recovery retries it.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { House, U, type Replica } from '../support/memory/house.js';

async function freezeRequested(a: Replica, profile: 'orders' | 'catalog' = 'orders') {
  const s = await a.startSession(profile);
  await a.perform('freeze_request', s.id, U.OPS);
  return s;
}

async function approveSwitchAhead(house: House, a: Replica, sessionId: string) {
  await a.perform('switch_request', sessionId, U.OPS);
  await a.perform('switch_approve', sessionId, U.BOB);
  await house.clock.advance(60_000);
}

const journalOf = async (house: House, sessionId: string) => (await house.store.journal.entries(sessionId)).map((e) => `${e.step}:${e.event}`);

async function oneFactPerRow(house: House, sessionId: string) {
  const { rows, facts } = await house.auditMatchesFacts(sessionId);
  expect(rows).toEqual(facts);
}

describe('the freeze budget (fake clock)', () => {
  it('runs out before the switch: writes resume on the source by themselves, with the budget as the reason', async () => {
    const house = new House({ budgetSeconds: 30 });
    const a = house.replica('A');
    const s = await freezeRequested(a);
    expect((await a.perform('freeze_approve', s.id, U.APP))?.state).toBe('frozen');
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'awaiting_switch', actor: 'bot', secondsLeft: 30 });

    await house.clock.advance(29_999);
    expect((await house.session(s.id)).state).toBe('frozen');
    expect(house.world.frozen).toBe(true);

    await house.clock.advance(1);
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source' });
    expect(house.world.effects()).toEqual(['start_migration', 'freeze', 'fence', 'sequences', 'resume']);
    expect(house.facts(s.id).at(-1)).toEqual({ type: 'resumed', actor: 'bot', reason: 'the freeze budget of 30 s ran out before the switch', problems: [], level: 'warning' });
    const attempt = await house.store.journal.latestCutover(s.id);
    expect(attempt).toMatchObject({ resumedOn: 'source', outcome: 'resumed on source' });
    expect((attempt?.resumedAt?.getTime() ?? 0) - (attempt?.frozenAt?.getTime() ?? 0)).toBe(30_000);
    // The window closed: lock released, machines closed.
    expect(house.store.locks.heldBy(a.process)).toEqual([]);
    expect(house.world.open).toBe(0);
    expect(house.factTypes(s.id).filter((t) => t === 'resumed')).toHaveLength(1);
    await oneFactPerRow(house, s.id);
  });

  it('runs out while a slow fence is being proven: the fence gets only the budget left, and writes resume on the source when it ends', async () => {
    const house = new House({ budgetSeconds: 30, fenceTimeoutSeconds: 60 });
    const a = house.replica('A');
    const s = await freezeRequested(a);
    house.world.fenceTakesMs = 45_000;
    const freezing = a.perform('freeze_approve', s.id, U.APP);
    const outcome = freezing.then(
      () => 'resolved',
      (error: { code?: string }) => error.code,
    );
    await house.clock.advance(29_000);
    expect(house.world.frozen).toBe(true);
    await house.clock.advance(1_000);
    expect(await outcome).toMatch(/^(freeze_budget_exceeded|cutover_step_failed)$/);
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.world.frozen).toBe(false);
    expect(house.world.count('sequences')).toBe(0);
    const attempt = await house.store.journal.latestCutover(s.id);
    expect((attempt?.resumedAt?.getTime() ?? 0) - (attempt?.frozenAt?.getTime() ?? 0)).toBe(30_000);
    expect(house.factTypes(s.id).filter((t) => t === 'resumed')).toHaveLength(1);
    expect(house.factTypes(s.id)).not.toContain('failed');
    await oneFactPerRow(house, s.id);
  });

  // Finding: a fence cut short by the budget is reported as a failed step (level error, "a step after
  // the freeze failed: … within 30 s"), not as the budget running out (FreezeBudgetExceeded, warning).
  it('a fence cut short by the budget is reported as the budget running out', async () => {
    const house = new House({ budgetSeconds: 30, fenceTimeoutSeconds: 60 });
    const a = house.replica('A');
    const s = await freezeRequested(a);
    house.world.fenceTakesMs = 45_000;
    const freezing = a.perform('freeze_approve', s.id, U.APP).catch((error: unknown) => error);
    await house.clock.advance(30_000);
    expect(await freezing).toMatchObject({ code: ErrorCode.FreezeBudgetExceeded });
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'resumed', level: 'warning', reason: expect.stringMatching(/budget of 30 s ran out/) });
  });

  it('runs out while a slow step that has no timeout is under way: writes resume as soon as that step ends', async () => {
    const house = new House({ budgetSeconds: 30 });
    const a = house.replica('A');
    const s = await freezeRequested(a);
    const slow = house.world.hang('sequences');
    const freezing = a.perform('freeze_approve', s.id, U.APP);
    await slow.reached;
    await house.clock.advance(40_000);
    expect(house.world.frozen).toBe(true);
    slow.release();
    expect((await freezing)?.state).toBe('frozen');
    await house.settle();
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.world.frozen).toBe(false);
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'resumed', actor: 'bot', level: 'warning', reason: 'the freeze budget of 30 s ran out before the switch' });
    expect(house.world.count('repoint:target')).toBe(0);
    await oneFactPerRow(house, s.id);
  });

  it('a switch approved after the budget ran out (but before expiry was handled) never switches', async () => {
    const house = new House({ budgetSeconds: 30 });
    const a = house.replica('A');
    const s = await freezeRequested(a);
    await approveSwitchAhead(house, a, s.id);
    const slow = house.world.hang('sequences');
    const freezing = a.perform('freeze_approve', s.id, U.APP).catch((error: unknown) => error);
    await slow.reached;
    await house.clock.advance(31_000);
    slow.release();
    expect(await freezing).toMatchObject({ code: ErrorCode.FreezeBudgetExceeded });
    expect(house.world.count('repoint:target')).toBe(0);
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source' });
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'resumed', level: 'warning', reason: expect.stringMatching(/budget of 30 s ran out/) });
    await oneFactPerRow(house, s.id);
  });
});

describe('undo after a failed step', () => {
  it('the fence times out: writes resume on the source, the step failure is told once', async () => {
    const house = new House({ fenceTimeoutSeconds: 15 });
    const a = house.replica('A');
    const s = await freezeRequested(a);
    house.world.fenceTakesMs = 20_000;
    const freezing = a.perform('freeze_approve', s.id, U.APP).catch((error: unknown) => error);
    await house.clock.advance(15_000);
    expect(await freezing).toMatchObject({ code: ErrorCode.CutoverStepFailed });
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.world.effects()).toEqual(['start_migration', 'freeze', 'fence', 'resume']);
    // The reverse slot prepared for the cutover is removed once writes are back on the source (it would hold the target's WAL).
    expect(house.world.reverseEffects()).toEqual(['reverse_prepare', 'reverse_drop']);
    expect(house.world.reverse.slot).toBe(false);
    expect(await journalOf(house, s.id)).toEqual([
      'preconditions:started',
      'preconditions:done',
      'freeze:started',
      'freeze:done',
      'fence:started',
      'fence:failed',
      'unfreeze_source:started',
      'unfreeze_source:done',
      'freeze:undone',
    ]);
    expect(house.factTypes(s.id).slice(-2)).toEqual(['frozen', 'resumed']);
    expect(house.facts(s.id).at(-1)).toMatchObject({ actor: 'bot', level: 'error', reason: expect.stringMatching(/a step after the freeze failed: .*within 15 s/) });
    await oneFactPerRow(house, s.id);
  });

  it('copying sequences fails: writes resume on the source, nothing was repointed', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await freezeRequested(a);
    await approveSwitchAhead(house, a, s.id);
    house.world.fail('sequences');
    await expect(a.perform('freeze_approve', s.id, U.APP)).rejects.toMatchObject({ code: ErrorCode.CutoverStepFailed });
    expect(house.world.effects()).toEqual(['start_migration', 'freeze', 'fence', 'sequences', 'resume']);
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source' });
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'resumed', level: 'error' });
    await oneFactPerRow(house, s.id);
  });

  it.each([
    ['refused before it changed anything', false],
    ['took effect, then its verification failed', true],
  ])('the repoint to the target %s: repointed back to the source, then writes resume there', async (_what, afterEffect) => {
    const house = new House();
    const a = house.replica('A');
    const s = await freezeRequested(a);
    await approveSwitchAhead(house, a, s.id);
    house.world.fail('repoint:target', { afterEffect });
    await expect(a.perform('freeze_approve', s.id, U.APP)).rejects.toMatchObject({ code: ErrorCode.CutoverStepFailed });
    expect(house.world.effects()).toEqual(['start_migration', 'freeze', 'fence', 'sequences', 'repoint:target', 'repoint:source', 'resume']);
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source' });
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'resumed', actor: 'bot', level: 'error', reason: expect.stringMatching(/^the switch failed/) });
    expect(house.factTypes(s.id)).not.toContain('switched');
    // The switch approval that failed is closed: it does not switch the next freeze by surprise.
    expect((await house.store.approvals.open(s.id)).switch).toBeUndefined();
    expect((await house.store.approvals.latest(s.id, 'switch'))?.status).toBe('failed');
    await oneFactPerRow(house, s.id);
  });

  it('the freeze itself fails: whatever took effect is resumed, the session never froze', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await freezeRequested(a);
    house.world.fail('freeze', { afterEffect: true });
    await expect(a.perform('freeze_approve', s.id, U.APP)).rejects.toMatchObject({ code: ErrorCode.CutoverStepFailed });
    expect(house.world.effects()).toEqual(['start_migration', 'freeze', 'resume']);
    expect(house.world.frozen).toBe(false);
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.factTypes(s.id)).not.toContain('frozen');
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'resumed', level: 'error', reason: expect.stringMatching(/^the freeze failed/) });
    expect((await house.store.approvals.latest(s.id, 'freeze'))?.status).toBe('failed');
    await oneFactPerRow(house, s.id);
  });

  it('preconditions refuse (lag unknown): nothing is frozen, the refusal is told once', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await freezeRequested(a);
    house.world.lagBytes = null;
    await expect(a.perform('freeze_approve', s.id, U.APP)).rejects.toMatchObject({ code: ErrorCode.LagUnknown });
    expect(house.world.count('freeze')).toBe(0);
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'freeze_refused', actor: U.APP, reason: expect.stringMatching(/lag is unknown/) });
    expect(house.factTypes(s.id).filter((t) => t === 'freeze_refused' || t === 'failed')).toHaveLength(1);
    await oneFactPerRow(house, s.id);
  });

  it('a resume that fails: told once, journaled as not resumed, the session stays frozen; a later recovery resumes', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await freezeRequested(a);
    house.world.fail('sequences');
    house.world.fail('resume', { times: 'always' });
    await expect(a.perform('freeze_approve', s.id, U.APP)).rejects.toMatchObject({ code: ErrorCode.FreezeFailed });
    expect(house.world.frozen).toBe(true);
    expect((await house.session(s.id)).state).toBe('frozen');
    expect(house.world.count('resume')).toBe(3);
    expect((await journalOf(house, s.id)).slice(-2)).toEqual(['unfreeze_source:started', 'unfreeze_source:failed']);
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'resume_failed', actor: 'bot', problems: [expect.stringMatching(/resuming writes failed/)] });
    expect(house.factTypes(s.id)).not.toContain('resumed');

    house.world.heal('resume');
    const outcomes = await a.engine.recover();
    expect(outcomes).toMatchObject([{ sessionId: s.id, result: 'applied', decision: { action: 'undo-freeze' } }]);
    expect(house.world.frozen).toBe(false);
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.factTypes(s.id).slice(-3)).toEqual(['resume_failed', 'recovered', 'resumed']);
    expect(await house.store.journal.latestCutover(s.id)).toMatchObject({ resumedOn: 'source' });
    await oneFactPerRow(house, s.id);
  });

  it('resume on request: the person who asked is named, writes go back to the source', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await freezeRequested(a);
    await a.perform('freeze_approve', s.id, U.APP);
    const resumed = await a.perform('resume', s.id, U.OPS);
    expect(resumed?.state).toBe('syncing');
    expect(house.world.frozen).toBe(false);
    expect(house.facts(s.id).at(-1)).toEqual({ type: 'resumed', actor: U.OPS, reason: 'resumed on request', problems: [], level: 'info' });
    // The budget timer of the freeze that ended does not fire later.
    await house.clock.advance(120_000);
    expect(house.factTypes(s.id).filter((t) => t === 'resumed')).toHaveLength(1);
    await oneFactPerRow(house, s.id);
  });

  // Finding: when a rollback fails, it is "put back" by resuming writes (the freeze on the target is
  // lifted) but, unlike the cutover's undo, a repoint to the source that was started is not reverted.
  // If that repoint took effect before failing (e.g. its verification or the connection failed after
  // the RELOAD), writes resume on the SOURCE while the session stays 'switched' and the channel is
  // told the rollback was put back: writes split between the two databases.
  it('a rollback whose repoint took effect and then failed leaves writes where the session says they are', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await freezeRequested(a);
    await approveSwitchAhead(house, a, s.id);
    expect((await a.perform('freeze_approve', s.id, U.APP))?.state).toBe('switched');
    house.world.fail('repoint:source', { times: 'always', afterEffect: true });
    await expect(a.perform('rollback', s.id, U.OPS)).rejects.toMatchObject({ code: ErrorCode.CutoverStepFailed });
    expect((await house.session(s.id)).state).toBe('switched');
    expect(house.world.frozen).toBe(false);
    expect(house.world.pointsTo).toBe('target');
  });
});
