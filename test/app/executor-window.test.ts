/**
 * The executor window on its own: one replica's operations on a session follow each other, and an
 * operation that arrives while the previous one's window is closing waits for its lock to be let go
 * (a store's unlock takes a round trip) instead of being refused as if another replica held it.
 */
import { describe, expect, it } from 'vitest';
import { Executor } from '../../src/app/cutover/executor.js';
import { systemClock } from '../../src/app/cutover/engine.js';
import type { SessionMachines } from '../../src/domain/ports/machines.js';
import type { ExecutorLock } from '../../src/domain/ports/stores.js';
import { createLogger } from '../../src/log.js';

/** One lock per key, whose release takes `unlockMs` (a round trip to the store), like an advisory lock. */
function slowUnlock(unlockMs: number): ExecutorLock & { refusals: number } {
  const held = new Set<string>();
  const lock = {
    refusals: 0,
    async withTryLock<T>(key: string, work: () => Promise<T>): Promise<T | undefined> {
      if (held.has(key)) {
        lock.refusals += 1;
        return undefined;
      }
      held.add(key);
      try {
        return await work();
      } finally {
        await new Promise((resolve) => setTimeout(resolve, unlockMs));
        held.delete(key);
      }
    },
  };
  return lock;
}

const machines = async () => ({ close: async () => undefined }) as unknown as SessionMachines;

describe('the executor window', () => {
  it('an operation arriving while the previous window closes runs once the lock is let go, not refused as busy', async () => {
    const lock = slowUnlock(20);
    const executor = new Executor({ lock, machines, clock: systemClock, log: createLogger('silent') });
    let second: Promise<string> | undefined;
    const first = await executor.exclusive('session-1', async () => {
      // Arrives 1 ms after this work returns: the window is closing, its unlock under way.
      setTimeout(() => (second = executor.exclusive('session-1', async () => 'second')), 1);
      return 'first';
    });
    expect(first).toBe('first');
    await new Promise((resolve) => setTimeout(resolve, 5));
    await expect(second).resolves.toBe('second');
    expect(lock.refusals).toBe(0);
  });

  it('another holder of the lock still refuses the operation as busy', async () => {
    const lock = slowUnlock(1);
    const executor = new Executor({ lock, machines, clock: systemClock, log: createLogger('silent') });
    const other = new Executor({ lock, machines, clock: systemClock, log: createLogger('silent') });
    let release!: () => void;
    const holding = other.exclusive('session-2', () => new Promise<void>((resolve) => (release = resolve)));
    await new Promise((resolve) => setTimeout(resolve, 5));
    await expect(executor.exclusive('session-2', async () => 'mine')).rejects.toMatchObject({ code: 'executor_busy' });
    release();
    await holding;
  });
});
