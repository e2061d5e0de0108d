/**
 * Counts the Slack Web API's failed requests and retries for /metrics. The client's `fetch` is wrapped
 * (every HTTP attempt passes through it, response_url posts included), and its retry policy is told
 * of each failed attempt: the client hands `retryConfig` to p-retry, whose `onFailedAttempt` says how
 * many retries are left.
 */
import * as bolt from '@slack/bolt';
import type { ApiCallMetrics, RetryReason } from '../../domain/ports/metrics.js';

type Fetch = typeof globalThis.fetch;
type RetryOptions = bolt.webApi.RetryOptions;

/** The Web API method of a request (`…/api/chat.postMessage`), or `response_url` for a respond. */
function operationOf(input: Parameters<Fetch>[0]): string {
  const url = input instanceof Request ? input.url : String(input);
  const last = new URL(url).pathname.split('/').at(-1) ?? '';
  return /^[a-z]+(\.[A-Za-z]+)+$/.test(last) ? last : 'response_url';
}

/** `fetch` that counts each failed attempt: no answer, an HTTP error, or Slack's `ok: false`. */
export function countingFetch(metrics: ApiCallMetrics, inner: Fetch = globalThis.fetch): Fetch {
  return async (input, init) => {
    const operation = operationOf(input);
    let response: Response;
    try {
      response = await inner(input, init);
    } catch (error) {
      metrics.failed('slack', operation, 'transport');
      throw error;
    }
    if (response.status === 429) metrics.failed('slack', operation, 'rate_limited');
    else if (response.status !== 200) metrics.failed('slack', operation, `http_${response.status}`);
    else if ((response.headers.get('content-type') ?? '').startsWith('application/json')) {
      // Read from a copy, without holding up the caller, which reads the original.
      void response
        .clone()
        .json()
        .then(
          (body: unknown) => {
            const { ok, error } = (body ?? {}) as { ok?: unknown; error?: unknown };
            if (ok === false) metrics.failed('slack', operation, String(error ?? 'unknown'));
          },
          () => undefined,
        );
    }
    return response;
  };
}

/** Why the client retries: its HTTP and request errors by code; the one other retried failure is a 429. */
function reasonOf(error: { code?: unknown }): RetryReason {
  if (error.code === bolt.webApi.ErrorCode.HTTPError) return 'http_error';
  if (error.code === bolt.webApi.ErrorCode.RequestError) return 'transport';
  return 'rate_limited';
}

/** The retry policy, counting each failed attempt that will be tried again. */
export function countingRetries(metrics: ApiCallMetrics, policy: RetryOptions): RetryOptions {
  const counting = {
    ...policy,
    onFailedAttempt(error: Error & { code?: unknown; retriesLeft?: number }) {
      if ((error.retriesLeft ?? 0) > 0) metrics.retried('slack', reasonOf(error));
    },
  };
  return counting;
}
