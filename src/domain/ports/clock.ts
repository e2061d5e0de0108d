/** Time, injectable so tests drive budgets and expiry without waiting. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): Date;
  /** Calls `fire` once after `ms`; the timer never keeps the process alive. */
  setTimer(ms: number, fire: () => void): Timer;
}
