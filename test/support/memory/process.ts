/**
 * One bot process ("replica") in an in-memory test. Everything the process does to the outside world
 * (the store, the machines, timers) goes through it, so `kill()` stops it the way a crash would: the
 * calls it has in flight never answer, new calls never start, its timers never fire, and the locks of
 * its store connections are released (as PostgreSQL releases an advisory lock with its connection).
 */
const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

export class Process {
  readonly name: string;
  #alive = true;
  readonly #onKill: (() => void)[] = [];
  #died!: () => void;
  /** Resolves when the process is killed. */
  readonly died: Promise<void> = new Promise<void>((resolve) => (this.#died = resolve));

  constructor(name: string) {
    this.name = name;
  }

  get alive(): boolean {
    return this.#alive;
  }

  kill(): void {
    if (!this.#alive) return;
    this.#alive = false;
    for (const fn of this.#onKill.splice(0)) fn();
    this.#died();
  }

  onKill(fn: () => void): void {
    if (this.#alive) this.#onKill.push(fn);
    else fn();
  }

  /** Runs `call` for this process: a dead process's calls never start, and never return. */
  guard<T>(call: () => Promise<T>): Promise<T> {
    if (!this.#alive) return never();
    return Promise.resolve()
      .then(call)
      .then(
        (value) => (this.#alive ? value : never<T>()),
        (error: unknown) => (this.#alive ? Promise.reject(error) : never<T>()),
      );
  }

  /**
   * `target` as this process sees it: every method call guarded; `after(method, args)` runs after a
   * call succeeded (it may kill the process: the caller then never sees the answer; or hold the answer
   * back until it resolves: a slow round trip).
   */
  connect<T extends object>(target: T, after?: (method: string, args: unknown[]) => void | Promise<void>): T {
    return new Proxy(target, {
      get: (t, prop) => {
        const value: unknown = Reflect.get(t, prop, t);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) =>
          this.guard(async () => {
            const result: unknown = await (value as (...a: unknown[]) => unknown).apply(t, args);
            await after?.(String(prop), args);
            return result;
          });
      },
    });
  }
}
