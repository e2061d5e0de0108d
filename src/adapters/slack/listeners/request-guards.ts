/**
 * What every listener does with a request before acting on it: count a signed request once (a replay
 * of the same signed bytes within Slack's validity window changes nothing), and answer through
 * response_url with retries, since one lost answer leaves a person looking at "Working on…".
 */
import type { IdempotencyKeys } from '../../../domain/ports/stores.js';
import { MAX_REQUEST_SKEW_SECONDS, type RequestContext } from '../bolt-app.js';

/** A signature is valid five minutes either side of its timestamp: ten minutes in all. */
export const REQUEST_REPLAY_WINDOW_MS = 2 * MAX_REQUEST_SKEW_SECONDS * 1000;

/**
 * False when this exact signed request was seen before. The claim is never given back: a person who
 * retries types the command again, which Slack signs anew. Socket Mode has no signatures (true).
 */
export async function firstDelivery(idempotency: Pick<IdempotencyKeys, 'claim'>, context: RequestContext, now: Date): Promise<boolean> {
  const signature = context.requestSignature;
  if (signature === undefined) return true;
  return idempotency.claim(`request:${signature}`, now, REQUEST_REPLAY_WINDOW_MS);
}

export interface RetryOptions {
  attempts?: number;
  firstDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

const sleepFor = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Sends `message` with `send` (Bolt's respond), retrying connection failures, 429 and 5xx with backoff. */
export async function respondWithRetry<M>(send: (message: M) => Promise<unknown>, message: M, options: RetryOptions = {}): Promise<void> {
  const attempts = options.attempts ?? 4;
  const sleep = options.sleep ?? sleepFor;
  for (let attempt = 1; ; attempt++) {
    try {
      await send(message);
      return;
    } catch (error) {
      if (attempt >= attempts || !retryable(error)) throw error;
      await sleep((options.firstDelayMs ?? 250) * 2 ** (attempt - 1));
    }
  }
}

/** Bolt's RespondError carries the status; fetch throws a TypeError when the connection fails. */
function retryable(error: unknown): boolean {
  const status = (error as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number') return status === 429 || status >= 500;
  return error instanceof TypeError;
}
