/**
 * Who is named for what, and several clicks or replicas at once: the freeze's requester and approver;
 * "ahead of time" only for a switch approved before the freeze began; a switch approved while frozen is
 * the approver's whether the holder's poll or the click runs it; one executor per session across
 * replicas; twenty clicks on one version freeze once.
 */
import { describe, expect, it } from 'vitest';
import type { Session } from '../../src/domain/session.js';
import { ErrorCode } from '../../src/errors.js';
import { House, U, type Replica } from '../support/memory/house.js';

const realSleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Moves the fake clock in small steps (and real time a little) until `promise` settles. */
async function driveUntil<T>(house: House, promise: Promise<T>, stepMs: number, maxSteps = 200): Promise<T> {
  let done = false;
  const watched = promise.finally(() => (done = true));
  watched.catch(() => undefined);
  for (let i = 0; i < maxSteps && !done; i += 1) {
    await house.clock.advance(stepMs);
    await realSleep(stepMs + 1);
  }
  return watched;
}

async function frozen(a: Replica, profile: 'orders' | 'catalog' = 'orders'): Promise<Session> {
  const s = await a.startSession(profile);
  await a.perform('freeze_request', s.id, U.OPS);
  expect((await a.perform('freeze_approve', s.id, U.APP))?.state).toBe('frozen');
  return s;
}

describe('attribution', () => {
  it('a switch approved before the freeze began is "ahead of time"; the summary names both gates’ people', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await a.startSession('orders');
    await a.perform('switch_request', s.id, U.OPS);
    await a.perform('switch_approve', s.id, U.BOB);
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'gate_approved', gate: 'switch', runs: 'ahead', actor: U.BOB, requestedBy: U.OPS, typedConfirmation: true });
    await house.clock.advance(5 * 60_000);
    await a.perform('freeze_request', s.id, U.DAN);
    expect((await a.perform('freeze_approve', s.id, U.APP))?.state).toBe('switched');
    expect(house.facts(s.id).find((f) => f.type === 'frozen')).toMatchObject({ actor: U.APP, requestedBy: U.DAN, approvedBy: U.APP });
    expect(house.facts(s.id).find((f) => f.type === 'switched')).toMatchObject({ actor: U.BOB, aheadOfTime: true });
    await a.perform('finish', s.id, U.OPS);
    expect(house.facts(s.id).at(-1)).toMatchObject({
      type: 'finished',
      summary: { approvals: { freeze: { requestedBy: U.DAN, approvedBy: U.APP }, switch: { requestedBy: U.OPS, approvedBy: U.BOB, aheadOfTime: true } } },
    });
    expect(house.factTypes(s.id).filter((t) => t === 'switched')).toHaveLength(1);
  });

  it('a switch approved while frozen, run by the click on the holder: the approver’s, not ahead of time', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await frozen(a);
    await house.clock.advance(2_000);
    await a.perform('switch_request', s.id, U.OPS);
    expect((await a.perform('switch_approve', s.id, U.APP))?.state).toBe('switched');
    const switched = house.facts(s.id).find((f) => f.type === 'switched');
    expect(switched).toMatchObject({ actor: U.APP, aheadOfTime: false, recovered: false });
    expect((await house.store.journal.latestCutover(s.id))?.approvals?.switch).toMatchObject({ requestedBy: U.OPS, approvedBy: U.APP, aheadOfTime: false });
  });

  it('a switch approved on another replica while frozen, run by the holder’s poll: the approver’s, and that replica’s click reports the switch', async () => {
    const house = new House({ approvalPollMs: 5 });
    const a = house.replica('A');
    const b = house.replica('B');
    const s = await frozen(a);
    await b.perform('switch_request', s.id, U.OPS);
    // B's click cannot run the switch (A holds the executor): it waits for A's poll to run it.
    const click = b.perform('switch_approve', s.id, U.BOB);
    const session = await driveUntil(house, click, 5);
    expect(session?.state).toBe('switched');
    expect(house.world.count('repoint:target')).toBe(1);
    const switched = house.events.filter((e) => e.session.id === s.id && e.fact.type === 'switched');
    expect(switched).toHaveLength(1);
    expect(switched[0]).toMatchObject({ replica: 'A', fact: { actor: U.BOB, aheadOfTime: false } });
    expect(house.facts(s.id).filter((f) => f.type === 'switched' || f.type === 'frozen').map((f) => f.actor)).toEqual([U.APP, U.BOB]);
    const { rows, facts } = await house.auditMatchesFacts(s.id);
    expect(rows).toEqual(facts);
  });

  // Finding: the non-holder's wait for the holder's switch compares the freeze deadline (engine clock)
  // with Date.now() (wall clock), and sleeps with setTimeout. With an injected clock behind the wall
  // clock the click gives up at once with ExecutorBusy although the approval is valid and the holder
  // switches on its next poll (ahead of the wall clock, it would wait without the 5 s bound).
  it('the non-holder’s click waits for the holder’s poll on the engine’s clock, not the wall clock', async () => {
    const house = new House({ approvalPollMs: 5, start: new Date('2020-01-01T00:00:00Z') });
    const a = house.replica('A');
    const b = house.replica('B');
    const s = await frozen(a);
    await b.perform('switch_request', s.id, U.OPS);
    const session = await driveUntil(house, b.perform('switch_approve', s.id, U.BOB), 5);
    expect(session?.state).toBe('switched');
  });
});

describe('concurrent clicks and replicas', () => {
  it('twenty clicks of the same approve button on one version freeze once', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await a.startSession('orders');
    const requested = await a.perform('freeze_request', s.id, U.OPS);
    const ref = { sessionId: s.id, version: requested!.version };
    const clicks = await Promise.allSettled(Array.from({ length: 20 }, () => a.actions.perform('freeze_approve', ref, U.APP)));
    const ok = clicks.filter((c) => c.status === 'fulfilled');
    expect(ok).toHaveLength(1);
    const refused = clicks.flatMap((c) => (c.status === 'rejected' ? [(c.reason as { code?: string }).code] : []));
    expect(refused).toEqual(Array(19).fill(ErrorCode.SessionConflict));
    expect(house.world.count('freeze')).toBe(1);
    expect((await house.session(s.id)).state).toBe('frozen');
    const types = house.factTypes(s.id);
    expect(types.filter((t) => t === 'gate_approved')).toHaveLength(1);
    expect(types.filter((t) => t === 'frozen')).toHaveLength(1);
    const { rows, facts } = await house.auditMatchesFacts(s.id);
    expect(rows).toEqual(facts);
  });

  it('twenty different buttons on one version (approve, withdraw) from two replicas: exactly one takes effect', async () => {
    const house = new House();
    const a = house.replica('A');
    const b = house.replica('B');
    const s = await a.startSession('orders');
    const requested = await a.perform('freeze_request', s.id, U.OPS);
    const ref = { sessionId: s.id, version: requested!.version };
    const clicks = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => {
        const replica = i % 2 === 0 ? a : b;
        return i % 4 < 2 ? replica.actions.perform('freeze_approve', ref, U.APP) : replica.actions.perform('freeze_withdraw', ref, U.OPS);
      }),
    );
    expect(clicks.filter((c) => c.status === 'fulfilled')).toHaveLength(1);
    for (const c of clicks) if (c.status === 'rejected') expect((c.reason as { code?: string }).code).toBe(ErrorCode.SessionConflict);
    const types = house.factTypes(s.id);
    expect(types.filter((t) => t === 'gate_approved' || t === 'gate_withdrawn')).toHaveLength(1);
    expect(house.world.count('freeze')).toBe(types.includes('gate_approved') ? 1 : 0);
  });

  it('a Slack retry of a click already handled does nothing and records nothing', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await a.startSession('orders');
    const ref = { sessionId: s.id, version: (await house.session(s.id)).version };
    await a.actions.perform('freeze_request', ref, U.OPS);
    const before = house.events.length;
    expect(await a.actions.perform('freeze_request', ref, U.OPS, { retry: true })).toBeUndefined();
    expect(house.events.length).toBe(before);
  });

  it('two replicas share the executor lock: the holder runs the cutover, the other is busy and leaves it alone', async () => {
    const house = new House();
    const a = house.replica('A');
    const b = house.replica('B');
    const s = await frozen(a);
    const session = await house.session(s.id);
    await expect(b.engine.resume({ sessionId: s.id, expectedVersion: session.version }, { userId: U.OPS })).rejects.toMatchObject({ code: ErrorCode.ExecutorBusy });
    await expect(b.engine.switchover({ sessionId: s.id, expectedVersion: session.version }, { userId: U.OPS })).rejects.toMatchObject({ code: ErrorCode.ExecutorBusy });
    expect(await b.engine.recover()).toMatchObject([{ sessionId: s.id, result: 'busy' }]);
    expect(house.world.effects()).toEqual(['start_migration', 'freeze', 'fence', 'sequences']);
    // A click on B that the holder must run: the resume, through the use case, is refused as busy and
    // the click can be tried again (its idempotency key was given back).
    await expect(b.perform('resume', s.id, U.OPS)).rejects.toMatchObject({ code: ErrorCode.ExecutorBusy });
    expect((await a.perform('resume', s.id, U.OPS))?.state).toBe('syncing');
    expect(house.world.frozen).toBe(false);
    // Busy refusals are not facts: nothing happened.
    expect(house.factTypes(s.id).filter((t) => t === 'failed' || t === 'refused')).toEqual([]);
  });

  it('after the holder dies, recovery on two replicas at once undoes the freeze once', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await frozen(a);
    a.kill();
    const [b, c] = [house.replica('B'), house.replica('C')];
    const results = await Promise.all([b.engine.recover(), c.engine.recover()]);
    const applied = results.flat().filter((o) => o.result === 'applied');
    expect(applied).toHaveLength(1);
    expect(house.world.count('resume')).toBe(1);
    expect(house.factTypes(s.id).filter((t) => t === 'resumed')).toHaveLength(1);
    expect((await house.session(s.id)).state).toBe('syncing');
  });

  // Finding: recoverAll() decides from the journal BEFORE it takes the session's executor lock, and
  // applies that decision inside the window without reading the journal again. A replica that read the
  // journal just before another replica's recovery and takes the lock just after it applies the same,
  // stale, decision a second time: a second resume, a second 'recovered' and 'resumed' in the channel.
  it('a replica whose recovery read the journal before another replica recovered does not apply it again', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await frozen(a);
    a.kill();
    const [b, c] = [house.replica('B'), house.replica('C')];
    const slow = c.pauseAfter('journal', 'latestAttemptEntries');
    const late = c.engine.recover();
    await slow.reached;
    expect(await b.engine.recover()).toMatchObject([{ result: 'applied', decision: { action: 'undo-freeze' } }]);
    slow.release();
    await late;
    expect(house.world.count('resume')).toBe(1);
    expect(house.factTypes(s.id).filter((t) => t === 'resumed')).toHaveLength(1);
  });

  it('the holder died while waiting for the switch: a switch approved on another replica runs there, within the original budget', async () => {
    const house = new House({ budgetSeconds: 30 });
    const a = house.replica('A');
    const s = await frozen(a);
    a.kill();
    await house.clock.advance(10_000);
    const b = house.replica('B');
    await b.perform('switch_request', s.id, U.OPS);
    expect((await b.perform('switch_approve', s.id, U.BOB))?.state).toBe('switched');
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'target' });
    expect(house.facts(s.id).find((f) => f.type === 'switched')).toMatchObject({ type: 'switched', actor: U.BOB, aheadOfTime: false, recovered: false });
    expect(house.world.count('repoint:target')).toBe(1);
  });

  it('the holder died and the budget has run out since: a switch approved on another replica puts writes back instead', async () => {
    const house = new House({ budgetSeconds: 30 });
    const a = house.replica('A');
    const s = await frozen(a);
    a.kill();
    await house.clock.advance(31_000);
    const b = house.replica('B');
    await b.perform('switch_request', s.id, U.OPS);
    await expect(b.perform('switch_approve', s.id, U.BOB)).rejects.toMatchObject({ code: ErrorCode.FreezeBudgetExceeded });
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source' });
    expect(house.world.count('repoint:target')).toBe(0);
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'resumed', actor: 'bot', level: 'warning', reason: expect.stringMatching(/budget of 30 s ran out/) });
  });
});
