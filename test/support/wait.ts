/** Waiting in tests: on an outcome, with a bound that only matters when the outcome never comes. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` until it gives a value other than undefined or false, and returns it; throws after
 * `timeoutMs`, with `detail` (what was seen) in the message.
 */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
  detail?: () => Promise<string> | string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${detail ? `\n${await detail()}` : ''}`);
    await sleep(25);
  }
}
