/**
 * The executor window: exactly one executor per session across replicas. Every operation runs inside a
 * window holding the lock `pgcutover:cutover:<session>`; operations of this replica on one session run
 * one after the other. A window normally lasts one operation; while writes are frozen it is *held*
 * (the lock stays taken) until the freeze ends, and its holder owns the freeze budget timer and the
 * poll for a switch approval given on another replica. When the holder dies its lock goes with its
 * store connection, and recovery on any replica takes over.
 */
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Clock, Timer } from '../../domain/ports/clock.js';
import type { SessionMachines } from '../../domain/ports/machines.js';
import type { ExecutorLock } from '../../domain/ports/stores.js';

export interface Window {
  readonly sessionId: string;
  readonly machines: SessionMachines;
  /** The attempt this window works on, once known. */
  attempt: number | undefined;
}

interface OpenWindow extends Window {
  queue: Promise<unknown>;
  busy: number;
  held: boolean;
  deadline: number | undefined;
  budgetTimer: Timer | undefined;
  pollTimer: Timer | undefined;
  closed: boolean;
  release(): void;
  released: Promise<void>;
}

export interface ExecutorDeps {
  lock: ExecutorLock;
  /** Builds the machines of a session (opened with the window, closed with it). */
  machines(sessionId: string): Promise<SessionMachines>;
  clock: Clock;
  log: Logger;
}

const lockKey = (sessionId: string) => `pgcutover:cutover:${sessionId}`;

export class Executor {
  readonly #d: ExecutorDeps;
  readonly #windows = new Map<string, Promise<OpenWindow>>();

  constructor(deps: ExecutorDeps) {
    this.#d = deps;
  }

  /** Whether this replica has a window open on the session (then recovery leaves it alone). */
  isOpen(sessionId: string): boolean {
    return this.#windows.has(sessionId);
  }

  /** Runs `work` in the session's window, after this replica's earlier work on it; ExecutorBusy when another replica holds it. */
  async exclusive<T>(sessionId: string, work: (w: Window) => Promise<T>, busyMessage?: string): Promise<T> {
    let w: OpenWindow;
    for (;;) {
      let pending = this.#windows.get(sessionId);
      if (!pending) {
        const opening = this.#open(sessionId, busyMessage);
        pending = opening;
        this.#windows.set(sessionId, opening);
        opening.catch(() => {
          if (this.#windows.get(sessionId) === opening) this.#windows.delete(sessionId);
        });
      }
      w = await pending;
      if (!w.closed) break;
      // A closing window: once it has let its lock go, open a fresh one (before, this replica's own
      // lock would refuse it as "another replica").
      await w.released;
      if (this.#windows.get(sessionId) === pending) this.#windows.delete(sessionId);
    }
    return this.#enqueue(w, () => work(w));
  }

  /**
   * Keeps the window (and the lock) after the current work, until `release`; starts the freeze budget
   * from `frozenAt`: when it runs out, `onExpired` runs in the window.
   */
  hold(window: Window, frozenAt: Date, budgetSeconds: number, onExpired: () => Promise<void>): void {
    const w = window as OpenWindow;
    w.held = true;
    w.budgetTimer?.cancel();
    w.deadline = frozenAt.getTime() + budgetSeconds * 1000;
    w.budgetTimer = this.#d.clock.setTimer(Math.max(0, w.deadline - this.#d.clock.now().getTime()), () => {
      // After whatever step is under way (each step is bounded by the budget itself).
      void this.#enqueue(w, async () => {
        if (w.held) await onExpired();
      }).catch((err: unknown) => this.#d.log.error({ err, session: w.sessionId }, 'freeze budget expiry failed'));
    });
  }

  /** Whether the window holds a freeze. */
  isHeld(window: Window): boolean {
    return (window as OpenWindow).held;
  }

  /** Milliseconds left of the freeze budget (infinite when no budget runs). */
  remaining(window: Window): number {
    const w = window as OpenWindow;
    return w.deadline === undefined ? Number.POSITIVE_INFINITY : w.deadline - this.#d.clock.now().getTime();
  }

  /**
   * While the window is held: every `everyMs` (when idle) asks `ready`; once it says yes, runs `then`
   * in the window. For a switch approved on another replica while this one holds the freeze.
   */
  poll(window: Window, everyMs: number, ready: () => Promise<boolean>, then: () => Promise<void>): void {
    const w = window as OpenWindow;
    const tick = () => {
      w.pollTimer = undefined;
      if (!w.held) return;
      const again = () => {
        if (w.held) w.pollTimer = this.#d.clock.setTimer(everyMs, tick);
      };
      if (w.busy > 0) return again();
      void ready().then(
        (ok) => {
          if (!w.held) return;
          if (!ok || w.busy > 0) return again();
          void this.#enqueue(w, async () => {
            if (w.held) await then();
          }).catch((err: unknown) => this.#d.log.warn({ err, session: w.sessionId }, 'work after the poll failed'));
        },
        (err: unknown) => {
          this.#d.log.warn({ err, session: w.sessionId }, 'poll check failed');
          again();
        },
      );
    };
    w.pollTimer?.cancel();
    w.pollTimer = this.#d.clock.setTimer(everyMs, tick);
  }

  /** Ends the hold (the freeze ended): the window closes after the current work. */
  release(window: Window): void {
    const w = window as OpenWindow;
    w.pollTimer?.cancel();
    w.pollTimer = undefined;
    w.budgetTimer?.cancel();
    w.budgetTimer = undefined;
    w.deadline = undefined;
    w.held = false;
  }

  /** Releases every window of this replica without touching the machines (shutdown). */
  async close(): Promise<void> {
    for (const pending of [...this.#windows.values()]) {
      const w = await pending.catch(() => undefined);
      if (w) await this.#close(w);
    }
  }

  async #enqueue<T>(w: OpenWindow, work: () => Promise<T>): Promise<T> {
    w.busy += 1;
    const run = w.queue.then(work);
    w.queue = run.catch(() => undefined);
    try {
      return await run;
    } finally {
      w.busy -= 1;
      if (w.busy === 0 && !w.held) await this.#close(w);
    }
  }

  async #open(sessionId: string, busyMessage?: string): Promise<OpenWindow> {
    let release!: () => void;
    const releasedSignal = new Promise<void>((resolve) => (release = resolve));
    let acquired!: (ok: boolean) => void;
    let failed!: (error: unknown) => void;
    const gotLock = new Promise<boolean>((resolve, reject) => {
      acquired = resolve;
      failed = reject;
    });
    const held = this.#d.lock.withTryLock(lockKey(sessionId), async () => {
      acquired(true);
      await releasedSignal;
    });
    held.then((result) => result === undefined && acquired(false), failed);
    if (!(await gotLock)) {
      throw new CodedError(
        ErrorCode.ExecutorBusy,
        busyMessage ?? 'Another replica is running a step of this cutover right now; look at the status message.',
        { details: { sessionId } },
      );
    }
    let machines: SessionMachines;
    try {
      machines = await this.#d.machines(sessionId);
    } catch (error) {
      release();
      await held.catch(() => undefined);
      throw error;
    }
    return {
      sessionId,
      machines,
      attempt: undefined,
      queue: Promise.resolve(),
      busy: 0,
      held: false,
      deadline: undefined,
      budgetTimer: undefined,
      pollTimer: undefined,
      closed: false,
      release,
      released: held.then(
        () => undefined,
        () => undefined,
      ),
    };
  }

  async #close(w: OpenWindow): Promise<void> {
    if (w.closed) return;
    w.closed = true;
    this.release(w);
    w.release();
    await w.released;
    // Forgotten only now: a caller that found it closing waited for the lock to be free.
    const listed = this.#windows.get(w.sessionId);
    if (listed && (await listed.catch(() => undefined)) === w) this.#windows.delete(w.sessionId);
    await w.machines.close().catch((err: unknown) => this.#d.log.warn({ err, session: w.sessionId }, 'closing the machines failed'));
  }
}
