/**
 * A fake clock for the Clock port: time moves only when the test says so. `advance(ms)` fires the
 * timers that fall due, in order (earliest first, then in the order they were set), letting pending
 * promise work run between two timers, so a budget timer and a poll see the state the previous one left.
 */
import type { Clock, Timer } from '../../../src/domain/ports/clock.js';
import type { Process } from './process.js';

interface Pending {
  at: number;
  seq: number;
  fire: () => void;
  owner: Process | undefined;
  cancelled: boolean;
}

/** Lets every promise chain that can move on without a timer move on (in-memory ports only use microtasks). */
export async function flush(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: Pending[] = [];

  constructor(start: Date = new Date('2030-03-04T05:06:07.000Z')) {
    this.#now = start.getTime();
  }

  now(): Date {
    return new Date(this.#now);
  }

  setTimer(ms: number, fire: () => void): Timer {
    return this.#add(ms, fire, undefined);
  }

  /** The same time, with timers owned by `process`: they never fire once it is killed. */
  for(process: Process): Clock {
    process.onKill(() => {
      for (const t of this.#timers) if (t.owner === process) t.cancelled = true;
    });
    return {
      now: () => this.now(),
      setTimer: (ms, fire) => (process.alive ? this.#add(ms, fire, process) : { cancel: () => undefined }),
    };
  }

  /** Timers not fired or cancelled yet. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward by `ms`, firing due timers in order and letting their work run. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await flush();
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      const due = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#timers.splice(this.#timers.indexOf(due), 1);
      this.#now = Math.max(this.#now, due.at);
      due.fire();
    }
    this.#now = end;
    await flush();
  }

  #add(ms: number, fire: () => void, owner: Process | undefined): Timer {
    const timer: Pending = { at: this.#now + Math.max(0, ms), seq: (this.#seq += 1), fire, owner, cancelled: false };
    this.#timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }
}
