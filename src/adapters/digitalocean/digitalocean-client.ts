/**
 * A small typed fetch client for the five DigitalOcean calls pgcutover makes (see README for why not
 * `@digitalocean/dots`). Every call has a per-attempt timeout and an overall budget, so a Slack
 * interaction never waits on DO for longer than the budget; 429 and 5xx are retried with backoff that
 * honours `retry-after` and `ratelimit-reset`; every body is validated with zod; every failure is a
 * DoApiError that keeps DO's `id`, `message` and `request_id`. The token is revealed only into the
 * Authorization header and never reaches a log line or an error.
 */
import type { z } from 'zod';
import { DoApiError, ErrorCode, type ErrorCode as ErrorCodeType } from '../../errors.js';
import type { Logger } from '../../log.js';
import { Secret } from '../../secret.js';
import type {
  DatabaseCluster,
  DigitalOceanApi,
  FirewallRule,
  OnlineMigration,
  StartMigrationRequest,
} from '../../domain/ports/digitalocean.js';
import {
  clusterResponseSchema,
  errorBodySchema,
  firewallRulesResponseSchema,
  onlineMigrationSchema,
  type StartMigrationBody,
} from './schemas.js';

export const DEFAULT_DO_API_URL = 'https://api.digitalocean.com';

export interface DigitalOceanClientOptions {
  token: Secret;
  /** DIGITALOCEAN_API_URL; defaults to https://api.digitalocean.com. */
  baseUrl?: string;
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
}

type Method = 'GET' | 'PUT' | 'DELETE';

interface Attempt {
  status: number;
  headers: Headers;
  text: string;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class DigitalOceanClient implements DigitalOceanApi {
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

  constructor(options: DigitalOceanClientOptions) {
    this.#token = options.token;
    this.#baseUrl = (options.baseUrl ?? DEFAULT_DO_API_URL).replace(/\/+$/, '');
    this.#log = options.logger.child({ name: 'do' });
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#sleep = options.sleep ?? realSleep;
    this.#now = options.now ?? Date.now;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#budgetMs = options.budgetMs ?? 20_000;
    this.#maxAttempts = options.maxAttempts ?? 4;
    this.#backoffMs = options.backoffMs ?? 500;
    this.#maxBackoffMs = options.maxBackoffMs ?? 30_000;
  }

  async startOnlineMigration(clusterUuid: string, request: StartMigrationRequest): Promise<OnlineMigration> {
    const body: StartMigrationBody = {
      source: {
        host: request.source.host,
        port: request.source.port,
        dbname: request.source.dbname,
        username: request.source.username,
        password: request.source.password.reveal(),
      },
      disable_ssl: request.disableSsl,
      ignore_dbs: request.ignoreDbs,
    };
    const attempt = await this.#call('PUT', `/v2/databases/${enc(clusterUuid)}/online-migration`, body);
    return toMigration(this.#parse(attempt, onlineMigrationSchema, 'start online migration'));
  }

  async getOnlineMigration(clusterUuid: string): Promise<OnlineMigration | undefined> {
    const attempt = await this.#call('GET', `/v2/databases/${enc(clusterUuid)}/online-migration`, undefined, [404]);
    if (attempt.status === 404) return undefined;
    return toMigration(this.#parse(attempt, onlineMigrationSchema, 'online migration status'));
  }

  async stopOnlineMigration(clusterUuid: string, migrationId: string): Promise<void> {
    await this.#call('DELETE', `/v2/databases/${enc(clusterUuid)}/online-migration/${enc(migrationId)}`);
  }

  async getCluster(clusterUuid: string): Promise<DatabaseCluster> {
    const attempt = await this.#call('GET', `/v2/databases/${enc(clusterUuid)}`);
    const { database } = this.#parse(attempt, clusterResponseSchema, 'database cluster');
    return {
      id: database.id,
      name: database.name,
      engine: database.engine,
      version: database.version,
      status: database.status,
      connection: {
        host: database.connection.host,
        port: database.connection.port,
        user: database.connection.user,
        password: new Secret(database.connection.password),
        database: database.connection.database,
        ssl: database.connection.ssl,
      },
    };
  }

  async listFirewallRules(clusterUuid: string): Promise<FirewallRule[]> {
    const attempt = await this.#call('GET', `/v2/databases/${enc(clusterUuid)}/firewall`);
    const { rules } = this.#parse(attempt, firewallRulesResponseSchema, 'firewall rules');
    return (rules ?? []).map((r) => ({ type: r.type, value: r.value }));
  }

  /** One call: attempts, waits and the budget. Returns a 2xx (or an `accept`ed status); throws DoApiError otherwise. */
  async #call(method: Method, path: string, body?: unknown, accept: number[] = []): Promise<Attempt> {
    const started = this.#now();
    const deadline = started + this.#budgetMs;
    // A network failure or timeout on PUT may have started a migration: only the idempotent reads and
    // DELETE retry those. 429 and 5xx are answers, so every method retries them.
    const retriesTransport = method !== 'PUT';
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
        if (!retriesTransport) throw lastError;
        const wait = this.#backoff(attemptNo);
        if (attemptNo === this.#maxAttempts || this.#now() + wait >= deadline) break;
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
      if (status !== 429 && status < 500) throw lastError;
      const wait = lastError.retryAfterMs ?? this.#backoff(attemptNo);
      this.#log.warn(
        { method, path, status, attempt: attemptNo, waitMs: wait, doId: lastError.doId, requestId: lastError.requestId },
        'DigitalOcean asked to retry',
      );
      if (attemptNo === this.#maxAttempts || this.#now() + wait >= deadline) break;
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

  #parse<S extends z.ZodType>(attempt: Attempt, schema: S, what: string): z.infer<S> {
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

function toMigration(body: z.infer<typeof onlineMigrationSchema>): OnlineMigration {
  return { id: body.id, status: body.status, createdAt: body.created_at };
}

const enc = encodeURIComponent;

/** The transport failure in words, without anything from the request (the URL has no secret; headers do). */
function describeTransport(cause: unknown): string {
  const inner = (cause as { cause?: { code?: string; message?: string } })?.cause;
  return inner?.code ?? inner?.message ?? (cause instanceof Error ? cause.message : String(cause));
}
