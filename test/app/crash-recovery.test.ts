/**
 * A crash at every step of every attempt kind, driven from the plan (`attemptSteps`): the executor's
 * process dies right after journaling a step `started`, in the middle of the step (the machine did
 * it, the answer never came back), or right after journaling it `done`. A new process on the same
 * store and machines (a restart, or another replica) then runs `recover()`.
 *
 * What must hold: writes end resumed on the source unless the journal proves the switch (then the
 * switch is completed on the target); nothing is ever switched twice; an interrupted rollback, finish
 * or abort is completed; the channel hears each outcome once (one audit row per fact).
 */
import { describe, expect, it } from 'vitest';
import { attemptSteps, gateSteps, type CutoverStep } from '../../src/domain/cutover-plan.js';
import type { Strategy } from '../../src/domain/session.js';
import { House, U, type Replica } from '../support/memory/house.js';
import type { MachineCall } from '../support/memory/machines.js';

type Mode = 'started' | 'mid-step' | 'done';
const MODES: Mode[] = ['started', 'mid-step', 'done'];
const STRATEGIES: Strategy[] = ['proxy', 'connection-parameters'];
const profileOf = (strategy: Strategy) => (strategy === 'proxy' ? 'orders' : 'catalog');

/** The machine call in the middle of each step (where a hang places the crash). */
function callOf(step: CutoverStep, house: House): MachineCall {
  const calls: Record<CutoverStep, MachineCall> = {
    // Preflight: the lag is also measured for the approval's binding, before any attempt begins.
    preconditions: 'preflight',
    freeze: 'freeze',
    fence: 'fence',
    sequences: 'sequences',
    repoint: 'repoint:target',
    resume_target: 'resume',
    replicate_back: 'reverse_attach',
    // A migration already stopped (connection parameters) is only looked at.
    stop_migration: house.world.migration?.status === 'syncing' ? 'stop_migration' : 'get_migration',
    publish_parameters: 'target_parameters',
    unfreeze_source: 'resume',
    rollback_freeze_target: 'freeze',
    rollback_fence: 'reverse_fence',
    rollback_sequences: 'reverse_sequences',
    rollback_repoint: 'repoint:source',
    rollback_resume_source: 'resume',
  };
  return calls[step];
}

/** Runs `act` on `a` and kills `a` at `step` (`mode`); fails if the act ends without reaching it. */
async function crashAt(house: House, a: Replica, step: CutoverStep, mode: Mode, act: () => Promise<unknown>): Promise<void> {
  let died: Promise<void>;
  if (mode === 'mid-step') {
    const hang = house.world.hang(callOf(step, house));
    died = hang.reached.then(() => a.kill());
  } else {
    died = a.crashAfterJournal(step, mode === 'started' ? 'started' : 'done');
  }
  const running = act();
  await Promise.race([
    died,
    running.then(
      () => Promise.reject(new Error(`the action completed without reaching ${step} (${mode})`)),
      (error: unknown) => Promise.reject(new Error(`the action failed before reaching ${step} (${mode}): ${String(error)}`)),
    ),
  ]);
}

/** A session of `strategy` switched on replica `a` (switch approved ahead, then freeze). */
async function switchedSession(house: House, a: Replica, strategy: Strategy) {
  const s = await a.startSession(profileOf(strategy));
  await approveSwitchAhead(house, a, s.id);
  await a.perform('freeze_request', s.id, U.OPS);
  const switched = await a.perform('freeze_approve', s.id, U.APP);
  expect(switched?.state).toBe('switched');
  return s;
}

async function approveSwitchAhead(house: House, a: Replica, sessionId: string) {
  await a.perform('switch_request', sessionId, U.OPS);
  await a.perform('switch_approve', sessionId, U.BOB);
  await house.clock.advance(60_000);
}

async function frozenSession(a: Replica, strategy: Strategy) {
  const s = await a.startSession(profileOf(strategy));
  await a.perform('freeze_request', s.id, U.OPS);
  const frozen = await a.perform('freeze_approve', s.id, U.APP);
  expect(frozen?.state).toBe('frozen');
  return s;
}

const count = (types: string[], type: string) => types.filter((t) => t === type).length;

/** After recovery: the audit log and the events say the same, and a second recovery finds nothing to do. */
async function settled(house: House, b: Replica, sessionId: string) {
  const { rows, facts } = await house.auditMatchesFacts(sessionId);
  expect(rows).toEqual(facts);
  const effects = house.world.effects().length;
  expect(await b.engine.recover()).toEqual([]);
  expect(house.world.effects()).toHaveLength(effects);
}

/** How a cutover is approved: both gates before the freeze (one run), or the switch while frozen. */
type Path = 'run' | 'step-by-step';

/**
 * Whether recovery completes the switch. Step by step, the journal proves it: the repoint completed
 * (or, with connection parameters, stopping the migration began). A proxy found pointing to the
 * target proves it too (it is repointed only after the fence): a repoint that took effect. A run
 * journals its steps after the resume in one batch: a crash after any of them is a crash after all.
 */
function provesSwitch(strategy: Strategy, path: Path, step: CutoverStep, mode: Mode): boolean {
  const steps = attemptSteps('cutover', strategy);
  const at = steps.indexOf(step);
  if (strategy !== 'proxy') return at >= steps.indexOf('stop_migration');
  const repoint = steps.indexOf('repoint');
  if (path === 'run' && at > steps.indexOf('freeze') && mode !== 'mid-step') return true;
  if (path === 'run' && step === 'freeze') return mode === 'done';
  return at > repoint || (at === repoint && mode !== 'started');
}

const PATHS: Record<Strategy, Path[]> = { proxy: ['run', 'step-by-step'], 'connection-parameters': ['run'] };

describe('a crash at every step of a cutover, then recovery', () => {
  for (const strategy of STRATEGIES) {
    for (const path of PATHS[strategy]) {
      for (const step of attemptSteps('cutover', strategy)) {
        for (const mode of MODES) {
          const switchProven = provesSwitch(strategy, path, step, mode);
          const nothingFrozen = step === 'preconditions';
          const expectation = nothingFrozen ? 'nothing was frozen' : switchProven ? 'the switch is completed on the target' : 'writes resume on the source';
          it(`${strategy}, ${path}: ${step} (${mode}) → ${expectation}`, async () => {
            const house = new House();
            const a = house.replica('A');
            const s = await a.startSession(profileOf(strategy));
            const inSwitchGate = path === 'step-by-step' && gateSteps(strategy, 'switch').includes(step);
            if (path === 'run') await approveSwitchAhead(house, a, s.id);
            await a.perform('freeze_request', s.id, U.OPS);
            if (inSwitchGate) {
              expect((await a.perform('freeze_approve', s.id, U.APP))?.state).toBe('frozen');
              await a.perform('switch_request', s.id, U.OPS);
              await crashAt(house, a, step, mode, () => a.perform('switch_approve', s.id, U.BOB));
            } else {
              await crashAt(house, a, step, mode, () => a.perform('freeze_approve', s.id, U.APP));
            }
            expect(house.store.locks.heldBy(a.process)).toEqual([]);

            const b = house.replica('B');
            const outcomes = await b.engine.recover();
            const session = await house.session(s.id);
            const types = house.factTypes(s.id);
            // Never switched twice, whatever happened.
            expect(house.world.count('repoint:target')).toBeLessThanOrEqual(1);
            expect(house.world.count('stop_migration')).toBeLessThanOrEqual(1);
            expect(count(types, 'switched')).toBeLessThanOrEqual(1);

            if (nothingFrozen) {
              // The dead executor's attempt is closed as interrupted, and its freeze approval with it.
              expect(outcomes).toMatchObject([{ sessionId: s.id, result: 'applied', decision: { action: 'none' } }]);
              expect((await house.store.approvals.open(s.id)).freeze).toBeUndefined();
              expect(types.at(-1)).toBe('freeze_refused');
              expect(session.state).toBe('syncing');
              expect(house.world.count('freeze')).toBe(0);
              expect(house.world.frozen).toBe(false);
            } else if (switchProven) {
              expect(session.state).toBe('switched');
              // With the proxy, replicating back stops the migration and subscribes the source from the switch point.
              expect(house.world.migration?.status).toBe('canceled');
              if (strategy === 'proxy') {
                expect(house.world).toMatchObject({ frozen: false, pointsTo: 'target', reverse: { slot: true, attachedFrom: '0/4000000' } });
                expect(house.world.count('repoint:target')).toBe(1);
                expect(house.world.count('repoint:source')).toBe(0);
                expect(count(types, 'replicated_back')).toBeLessThanOrEqual(1);
              } else {
                // The hand-out leaves the source frozen: the applications move by themselves.
                expect(house.world.frozen).toBe(true);
                expect(house.world.count('resume')).toBe(0);
              }
              expect(count(types, 'switched')).toBe(1);
              // Replicating back runs after the switch was recorded: a crash there leaves the switch as it was told.
              const told = step === 'replicate_back' ? { recovered: false } : { actor: 'bot', recovered: true };
              expect(house.facts(s.id).find((f) => f.type === 'switched')).toMatchObject(told);
              const attempt = await house.store.journal.latestCutover(s.id);
              expect(attempt?.switchedAt).not.toBeNull();
            } else {
              expect(outcomes).toMatchObject([{ sessionId: s.id, result: 'applied', decision: { action: 'undo-freeze' } }]);
              expect(session.state).toBe('syncing');
              expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source' });
              expect(house.world.migration?.status).toBe('syncing');
              // A repoint journaled as started is put back, whether or not it took effect; after a run
              // (which journals no repoint before its resume) the proxy is always put back on the source.
              const putBack = step === 'repoint' || (path === 'run' && strategy === 'proxy');
              expect(house.world.count('repoint:source')).toBe(putBack ? 1 : 0);
              expect(house.world.effects().at(-1)).toBe('resume');
              expect(types.slice(-2)).toEqual(['recovered', 'resumed']);
              expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'resumed', actor: 'bot', reason: expect.stringMatching(/after a restart/) });
              expect(count(types, 'switched')).toBe(0);
              expect(await house.store.journal.latestCutover(s.id)).toMatchObject({ resumedOn: 'source', outcome: 'resumed on source' });
              // The freeze approval the dead process never closed is closed, so the buttons work again.
              expect((await house.store.approvals.open(s.id)).freeze).toBeUndefined();
            }
            await settled(house, b, s.id);
          });
        }
      }
    }
  }
});

describe('a crash at every step of a rollback, a finish and an abort, then recovery', () => {
  for (const strategy of STRATEGIES) {
    for (const step of attemptSteps('rollback', strategy)) {
      for (const mode of MODES) {
        const test = it;
        test(`rollback, ${strategy}: ${step} (${mode}) → rolled back to the source`, async () => {
          const house = new House();
          const a = house.replica('A');
          const s = await switchedSession(house, a, strategy);
          await crashAt(house, a, step, mode, () => a.perform('rollback', s.id, U.OPS));
          const b = house.replica('B');
          await b.engine.recover();
          expect((await house.session(s.id)).state).toBe('rolled_back');
          expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source' });
          const types = house.factTypes(s.id);
          expect(count(types, 'rolled_back')).toBe(1);
          expect(count(types, 'switched')).toBe(1);
          // Stopping the replication comes after writes are back on the source, when the rollback was already told.
          const told = step === 'stop_migration' ? { type: 'rolled_back', actor: U.OPS } : { type: 'rolled_back', actor: 'bot' };
          expect(house.facts(s.id).find((f) => f.type === 'rolled_back')).toMatchObject(told);
          if (strategy === 'proxy') {
            // Every target write proven on the source before writes went back; then nothing replicates either way.
            expect(house.facts(s.id).find((f) => f.type === 'rolled_back')).toMatchObject({ carriedBack: true });
            expect(house.world.reverse.slot).toBe(false);
            expect(house.world.migration?.status).toBe('canceled');
          }
          await settled(house, b, s.id);
        });
      }
    }

    for (const step of attemptSteps('finish', strategy)) {
      for (const mode of MODES) {
        const test = it;
        test(`finish, ${strategy}: ${step} (${mode}) → finished, the migration stopped once`, async () => {
          const house = new House();
          const a = house.replica('A');
          const s = await switchedSession(house, a, strategy);
          await crashAt(house, a, step, mode, () => a.perform('finish', s.id, U.OPS));
          const b = house.replica('B');
          await b.engine.recover();
          expect((await house.session(s.id)).state).toBe('finished');
          expect(house.world.migration?.status).toBe('canceled');
          expect(house.world.count('stop_migration')).toBe(1);
          const types = house.factTypes(s.id);
          expect(count(types, 'finished')).toBe(1);
          expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'finished', actor: 'bot', summary: { ran: true } });
          await settled(house, b, s.id);
        });
      }
    }

    for (const step of attemptSteps('abort', strategy)) {
      for (const mode of MODES) {
        const test = it;
        test(`abort while frozen, ${strategy}: ${step} (${mode}) → aborted, writes on the source`, async () => {
          const house = new House();
          const a = house.replica('A');
          const s = await frozenSession(a, strategy);
          await crashAt(house, a, step, mode, () => a.perform('abort', s.id, U.OPS));
          const b = house.replica('B');
          await b.engine.recover();
          expect((await house.session(s.id)).state).toBe('aborted');
          expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source' });
          expect(house.world.migration?.status).toBe('canceled');
          expect(house.world.count('stop_migration')).toBe(1);
          expect(house.world.count('repoint:target')).toBe(0);
          const types = house.factTypes(s.id);
          expect(count(types, 'aborted')).toBe(1);
          expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'aborted', actor: 'bot' });
          await settled(house, b, s.id);
        });
      }
    }
  }
});

describe('a crash of the freeze holder while it waits for the switch', () => {
  it('another replica is busy while the holder lives; once it dies, recovery there resumes writes on the source', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await frozenSession(a, 'proxy');
    const b = house.replica('B');
    expect(await b.engine.recover()).toMatchObject([{ sessionId: s.id, result: 'busy' }]);
    expect(house.world.frozen).toBe(true);
    a.kill();
    // The dead holder's budget timer never fires: recovery elsewhere puts writes back.
    await house.clock.advance(60_000);
    expect(house.world.frozen).toBe(true);
    expect(await b.engine.recover()).toMatchObject([{ sessionId: s.id, result: 'applied', decision: { action: 'undo-freeze', repointToSource: false } }]);
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.world.frozen).toBe(false);
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'resumed', actor: 'bot' });
    await settled(house, b, s.id);
  });
});
