/**
 * What the API clients report for operational metrics (the Prometheus adapter in src/adapters/metrics
 * implements it), so that nothing but that adapter knows the metrics library. Labels are short,
 * bounded names: never a URL with ids, a token or a connection string.
 */

/** The external HTTP APIs the bot calls. */
export type ExternalApi = 'digitalocean' | 'slack';

/** Why a failed request is tried again. */
export type RetryReason = 'rate_limited' | 'http_error' | 'transport';

export interface ApiCallMetrics {
  /**
   * One request to `api` failed: every failed attempt counts, retried or not. `operation` names the
   * call without ids (`GET /v2/databases/{uuid}`, `chat.postMessage`); `error` is a short stable code.
   */
  failed(api: ExternalApi, operation: string, error: string): void;
  /** A failed request to `api` is about to be tried again. */
  retried(api: ExternalApi, reason: RetryReason): void;
}
