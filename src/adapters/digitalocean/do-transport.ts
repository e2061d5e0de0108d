/**
 * The HTTP side of the DigitalOcean client: a per-attempt timeout and an overall budget, so a Slack
 * interaction never waits on DO for longer than the budget; 429 and 5xx retried with backoff that
 * honours `retry-after` and `ratelimit-reset`; bodies validated with zod; every failure a DoApiError
 * that keeps DO's `id`, `message` and `request_id`. The token is revealed only into the Authorization
 * header and never reaches a log line or an error. Every request says who sends it: `pgcutover/<version>`.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DoApiError, ErrorCode, type ErrorCode as ErrorCodeType } from '../../errors.js';
import type { ApiCallMetrics } from '../../domain/ports/metrics.js';
import type { Logger } from '../../log.js';
import type { Secret } from '../../secret.js';
import { errorBodySchema } from './schemas.js';

/** `pgcutover/<version>`, the version from package.json (beside `src/` and `dist/` alike). */
export const USER_AGENT = `pgcutover/${
  z.object({ version: z.string().min(1) }).parse(JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'))).version
}`;

export interface DoTransportOptions {
  token: Secret;
  /** DIGITALOCEAN_API_URL, without a trailing slash. */
  baseUrl: string;
  logger: Logger;
  fetch?: typeof globalThis.fetch;
  /** Waits between attempts (injected in tests so retries run fast). */
  sleep?: (ms: number) => Promise<void>;
  /** Wall clock in epoch milliseconds (for `ratelimit-reset` and the budget). */
  now?: () => number;
  /** Limit on one HTTP attempt. Default 10 s. */
  timeoutMs?: number;
  /** Limit on a whole call including retries and waits. Default 20 s (a Slack interaction must not hang). */
  budgetMs?: number;
  /** Attempts per call, the first included. Default 4. */
  maxAttempts?: number;
  /** First backoff step for 5xx without `retry-after`; doubles per attempt, with jitter. Default 500 ms. */
  backoffMs?: number;
  /** Cap on one computed backoff. Default 30 s. */
  maxBackoffMs?: number;
  /** Where failed attempts and retries are counted (the bot's /metrics). */
  metrics?: ApiCallMetrics;
}

export type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

export interface Attempt {
  status: number;
  headers: Headers;
  text: string;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class DoTransport {
  readonly #token: Secret;
  readonly #baseUrl: string;
  readonly #log: Logger;
  readonly #fetch: typeof globalThis.fetch;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  readonly #budgetMs: number;
  readonly #maxAttempts: number;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #metrics: ApiCallMetrics | undefined;

  constructor(options: DoTransportOptions) {
    this.#token = options.token;
    this.#baseUrl = options.baseUrl;
    this.#log = options.logger.child({ name: 'do' });
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#sleep = options.sleep ?? realSleep;
    this.#now = options.now ?? Date.now;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#budgetMs = options.budgetMs ?? 20_000;
    this.#maxAttempts = options.maxAttempts ?? 4;
    this.#backoffMs = options.backoffMs ?? 500;
    this.#maxBackoffMs = options.maxBackoffMs ?? 30_000;
    this.#metrics = options.metrics;
  }

  /** One call: attempts, waits and the budget. Returns a 2xx (or an `accept`ed status); throws DoApiError otherwise. */
  async call(method: Method, path: string, body?: unknown, accept: number[] = []): Promise<Attempt> {
    const started = this.#now();
    const deadline = started + this.#budgetMs;
    // A network failure or timeout on PUT may have started a migration: only the idempotent reads and
    // DELETE retry those. 429 and 5xx are answers, so every method retries them.
    // POST creates something (a user): a 5xx may have created it, so only a 429 (not processed) is retried.
    const retriesTransport = method !== 'PUT' && method !== 'POST';
    let lastError: DoApiError | undefined;
    for (let attemptNo = 1; attemptNo <= this.#maxAttempts; attemptNo += 1) {
      const remaining = deadline - this.#now();
      if (remaining <= 0) break;
      let attempt: Attempt;
      try {
        attempt = await this.#once(method, path, body, Math.min(this.#timeoutMs, remaining));
      } catch (error) {
        lastError = error as DoApiError;
        this.#log.warn({ method, path, attempt: attemptNo, code: lastError.code }, 'DigitalOcean request failed');
        this.#metrics?.failed('digitalocean', operationOf(method, path), lastError.code);
        if (!retriesTransport) throw lastError;
        const wait = this.#backoff(attemptNo);
        if (attemptNo === this.#maxAttempts || this.#now() + wait >= deadline) break;
        this.#metrics?.retried('digitalocean', 'transport');
        await this.#sleep(wait);
        continue;
      }
      const { status } = attempt;
      this.#log.debug(
        { method, path, status, attempt: attemptNo, remaining: attempt.headers.get('ratelimit-remaining') },
        'DigitalOcean answered',
      );
      if ((status >= 200 && status < 300) || accept.includes(status)) return attempt;
      lastError = this.#errorFor(method, path, attempt);
      this.#metrics?.failed('digitalocean', operationOf(method, path), lastError.code);
      if (status !== 429 && (status < 500 || method === 'POST')) throw lastError;
      const wait = lastError.retryAfterMs ?? this.#backoff(attemptNo);
      this.#log.warn(
        { method, path, status, attempt: attemptNo, waitMs: wait, doId: lastError.doId, requestId: lastError.requestId },
        'DigitalOcean asked to retry',
      );
      if (attemptNo === this.#maxAttempts || this.#now() + wait >= deadline) break;
      this.#metrics?.retried('digitalocean', status === 429 ? 'rate_limited' : 'http_error');
      await this.#sleep(wait);
    }
    throw lastError ?? this.#budgetError(method, path);
  }

  async #once(method: Method, path: string, body: unknown, timeoutMs: number): Promise<Attempt> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await this.#fetch(`${this.#baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.#token.reveal()}`,
          accept: 'application/json',
          'user-agent': USER_AGENT,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
      });
      const text = await response.text();
      return { status: response.status, headers: response.headers, text };
    } catch (cause) {
      const timedOut = controller.signal.aborted;
      throw new DoApiError(
        ErrorCode.DoUnavailable,
        timedOut
          ? `DigitalOcean did not answer ${method} ${path} within ${timeoutMs} ms.`
          : `Could not reach DigitalOcean for ${method} ${path}: ${describeTransport(cause)}.`,
        { cause: new Error(describeTransport(cause)) },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  parse<S extends z.ZodType>(attempt: Attempt, schema: S, what: string): z.infer<S> {
    let json: unknown;
    try {
      json = JSON.parse(attempt.text);
    } catch (cause) {
      throw new DoApiError(ErrorCode.DoBadResponse, `DigitalOcean sent a ${what} answer that is not JSON.`, {
        status: attempt.status,
        requestId: attempt.headers.get('x-request-id') ?? undefined,
        cause,
      });
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
      throw new DoApiError(ErrorCode.DoBadResponse, `DigitalOcean sent an unexpected ${what} answer (${problems}).`, {
        status: attempt.status,
        requestId: attempt.headers.get('x-request-id') ?? undefined,
        cause: parsed.error,
      });
    }
    return parsed.data;
  }

  #errorFor(method: Method, path: string, attempt: Attempt): DoApiError {
    let doBody: z.infer<typeof errorBodySchema> | undefined;
    try {
      const parsed = errorBodySchema.safeParse(JSON.parse(attempt.text));
      if (parsed.success) doBody = parsed.data;
    } catch {
      doBody = undefined;
    }
    const { status } = attempt;
    const requestId = doBody?.request_id ?? attempt.headers.get('x-request-id') ?? undefined;
    const said = doBody ? `${doBody.id}: ${doBody.message}` : `HTTP ${status}`;
    const retryAfterMs = status === 429 || status >= 500 ? this.#retryAfterMs(attempt.headers) : undefined;
    const [code, message] = classify(status, method, path, said);
    return new DoApiError(code, message, {
      status,
      ...(doBody ? { doId: doBody.id } : {}),
      ...(requestId ? { requestId } : {}),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }

  /** `retry-after` (seconds, or an HTTP date) wins; otherwise `ratelimit-reset` (epoch seconds) when the quota is spent. */
  #retryAfterMs(headers: Headers): number | undefined {
    const retryAfter = headers.get('retry-after');
    if (retryAfter !== null) {
      const seconds = Number(retryAfter);
      if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
      const date = Date.parse(retryAfter);
      if (!Number.isNaN(date)) return Math.max(0, date - this.#now());
    }
    const reset = Number(headers.get('ratelimit-reset'));
    const remaining = headers.get('ratelimit-remaining');
    if (headers.get('ratelimit-reset') !== null && Number.isFinite(reset) && (remaining === null || Number(remaining) <= 0)) {
      return Math.max(0, reset * 1000 - this.#now());
    }
    return undefined;
  }

  #backoff(attemptNo: number): number {
    const base = Math.min(this.#maxBackoffMs, this.#backoffMs * 2 ** (attemptNo - 1));
    return Math.round(base / 2 + (Math.random() * base) / 2);
  }

  #budgetError(method: Method, path: string): DoApiError {
    return new DoApiError(ErrorCode.DoUnavailable, `DigitalOcean did not answer ${method} ${path} within ${this.#budgetMs} ms.`, {});
  }
}


function classify(status: number, method: Method, path: string, said: string): [ErrorCodeType, string] {
  const call = `${method} ${path}`;
  switch (true) {
    case status === 401:
      return [ErrorCode.DoUnauthorized, `DigitalOcean did not accept the API token (${said}). Check DIGITALOCEAN_TOKEN.`];
    case status === 403:
      return [
        ErrorCode.DoForbidden,
        `The DigitalOcean token lacks a scope for ${call} (${said}). Give it database:read, database:update and database:delete.`,
      ];
    case status === 404:
      return [ErrorCode.DoNotFound, `DigitalOcean found nothing at ${call} (${said}). Check the profile's digitalocean.clusterUuid.`];
    case status === 429:
      return [ErrorCode.DoRateLimited, `DigitalOcean's API rate limit is exhausted (${said}); try again later.`];
    case status >= 500:
      return [ErrorCode.DoUnavailable, `DigitalOcean failed to answer ${call} (${said}).`];
    default:
      return [ErrorCode.DoRequestFailed, `DigitalOcean refused ${call} (HTTP ${status}, ${said}).`];
  }
}

/** The call without its ids, for a metric label: `GET /v2/databases/{uuid}/online-migration`. */
function operationOf(method: Method, path: string): string {
  return `${method} ${path.replace(/^\/v2\/databases\/[^/]+/, '/v2/databases/{uuid}').replace(/(\/online-migration)\/[^/]+$/, '$1/{id}')}`;
}

/** The transport failure in words, without anything from the request (the URL has no secret; headers do). */
function describeTransport(cause: unknown): string {
  const inner = (cause as { cause?: { code?: string; message?: string } })?.cause;
  return inner?.code ?? inner?.message ?? (cause instanceof Error ? cause.message : String(cause));
}
