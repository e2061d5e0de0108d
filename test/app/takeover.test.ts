/**
 * A dead freeze holder on in-memory ports: the surviving replica's watchdog, at its default interval,
 * undoes the freeze soon after the holder died (its lock went with it), well within any budget; a
 * live holder stuck past the budget is reported.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/log.js';
import { captureLogger } from '../support/capture-log.js';
import { House, U, type Replica } from '../support/memory/house.js';

const watching: Replica[] = [];
afterEach(async () => {
  for (const r of watching.splice(0)) await r.engine.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the watchdog takes over a freeze whose holder died', () => {
  it('at its default interval the survivor resumes writes on the source, once', async () => {
    const house = new House({ budgetSeconds: 30 });
    const a = house.replica('A');
    const b = house.replica('B');
    watching.push(b);
    b.engine.startWatchdog();
    const s = await a.startSession('orders');
    await a.perform('freeze_request', s.id, U.OPS);
    expect((await a.perform('freeze_approve', s.id, U.APP))?.state).toBe('frozen');
    a.kill();
    expect(house.world.frozen).toBe(true);

    // The fake clock stands still: only the watchdog (real timers) can resume. Its default interval
    // must leave room in a budget of a few seconds, so three seconds of real time are plenty.
    for (let waited = 0; house.world.frozen && waited < 3000; waited += 50) await sleep(50);
    expect(house.world.frozen).toBe(false);
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.world.count('resume')).toBe(1);
    expect(house.events.filter((e) => e.fact.type === 'resumed').map((e) => e.replica)).toEqual(['B']);
  });
});

describe('a live holder stuck past the budget', () => {
  it('is reported once as an error by the other replicas', async () => {
    const house = new House({ budgetSeconds: 30 });
    const { logger, output } = captureLogger('info');
    (house as { log: Logger }).log = logger;
    const a = house.replica('A');
    const b = house.replica('B');
    const s = await a.startSession('orders');
    await a.perform('freeze_request', s.id, U.OPS);
    expect((await a.perform('freeze_approve', s.id, U.APP))?.state).toBe('frozen');
    // A's budget runs out, and its RESUME never answers: A is alive, holds the lock, writes stay paused.
    const stuck = house.world.hang('resume', { beforeEffect: true });
    await house.clock.advance(30_000);
    await stuck.reached;

    await house.clock.advance(5_000);
    expect(await b.engine.recover()).toMatchObject([{ sessionId: s.id, result: 'busy' }]);
    expect(output()).not.toContain('past their budget');
    await house.clock.advance(6_000);
    await b.engine.recover();
    await b.engine.recover();
    const reports = output()
      .split('\n')
      .filter((line) => line.includes('past their budget'));
    expect(reports).toHaveLength(1);
    expect(JSON.parse(reports[0]!)).toMatchObject({ level: 50, session: s.id, budgetSeconds: 30 });
    stuck.release();
  });
});
