/**
 * A generic HTTP admin endpoint for teams with their own proxy or router. JSON in and out, validated
 * with zod; bearer or HMAC-SHA256 auth; a timeout on every call. The contract (README "HTTP admin
 * endpoint"): GET /inspect, POST /freeze, POST /repoint, POST /resume, all idempotent; errors are
 * non-2xx with {"error": "..."}. The bot never sends passwords to the endpoint.
 */
import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Secret } from '../../secret.js';
import type { Endpoint, WriteFreeze } from '../../domain/ports/writes.js';
import type { ProxyAdmin, ProxyStatus } from './proxy-admin.js';

export interface HttpProxyAdminOptions {
  baseUrl: string;
  auth: { kind: 'bearer'; token: Secret } | { kind: 'hmac'; secret: Secret };
  timeoutMs: number;
  /** What the endpoint's freeze does to clients (its own documentation says). */
  clientImpact?: WriteFreeze['clientImpact'];
  logger: Logger;
}

const pointsTo = z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535), database: z.string().min(1) });
const inspectResponse = z.object({
  pointsTo: pointsTo.nullable(),
  frozen: z.boolean(),
  healthy: z.boolean(),
  detail: z.string().optional(),
});
const freezeResponse = z.object({ frozen: z.literal(true) });
const resumeResponse = z.object({ frozen: z.literal(false) });
const repointResponse = z.object({ pointsTo });
const errorBody = z.object({ error: z.string() });

export const HMAC_TIMESTAMP_HEADER = 'x-pgcutover-timestamp';
export const HMAC_SIGNATURE_HEADER = 'x-pgcutover-signature';

/** The HMAC signature: hex HMAC-SHA256 over `v1:<timestamp>:<METHOD>:<path>:<body>`. */
export function signRequest(secret: string, timestamp: string, method: string, path: string, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`v1:${timestamp}:${method}:${path}:${body}`).digest('hex')}`;
}

export class HttpProxyAdmin implements ProxyAdmin {
  readonly kind = 'http' as const;
  readonly canPause: boolean;
  readonly clientImpact: WriteFreeze['clientImpact'];
  readonly limitations: readonly string[];
  readonly #options: HttpProxyAdminOptions;
  readonly #base: URL;
  readonly #log: Logger;

  constructor(options: HttpProxyAdminOptions) {
    this.#options = options;
    this.#base = new URL(options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`);
    this.clientImpact = options.clientImpact ?? 'queries-wait';
    this.canPause = this.clientImpact === 'queries-wait';
    this.#log = options.logger.child({ name: 'proxy', proxy: 'http', endpoint: this.#base.origin });
    this.limitations = [
      'The bot relies on the endpoint to hold or stop writes on freeze and to report honestly; it can only check what /inspect says.',
      ...(this.canPause ? [] : ['This endpoint does not hold queries: clients will see errors while writes are frozen.']),
      'The endpoint holds its own credentials for the target: the bot never sends passwords.',
    ];
  }

  async inspect(): Promise<ProxyStatus> {
    const body = await this.#call('GET', 'inspect', undefined, inspectResponse);
    return { pointsTo: body.pointsTo, frozen: body.frozen, healthy: body.healthy, detail: body.detail ?? 'http admin endpoint' };
  }

  async freeze(): Promise<void> {
    await this.#call('POST', 'freeze', {}, freezeResponse);
    this.#log.info('frozen');
  }

  async resume(): Promise<void> {
    await this.#call('POST', 'resume', {}, resumeResponse);
    this.#log.info('resumed');
  }

  async repoint(to: Endpoint): Promise<void> {
    const wanted = { host: to.host, port: to.port, database: to.database };
    const request = { ...wanted, ...(to.user ? { user: to.user } : {}), tls: to.tls ?? false };
    const reply = await this.#call('POST', 'repoint', request, repointResponse);
    const status = await this.inspect();
    for (const [who, seen] of [
      ['repoint reply', reply.pointsTo],
      ['inspect', status.pointsTo],
    ] as const) {
      if (!seen || seen.host !== wanted.host || seen.port !== wanted.port || seen.database !== wanted.database) {
        throw new CodedError(
          ErrorCode.ProxyVerifyFailed,
          `The HTTP admin endpoint's ${who} says it points to ${seen ? `${seen.host}:${seen.port}/${seen.database}` : 'nothing'}, not ${wanted.host}:${wanted.port}/${wanted.database}`,
          { details: { host: seen?.host, port: seen?.port } },
        );
      }
    }
    this.#log.info(wanted, 'repointed');
  }

  async close(): Promise<void> {
    // fetch keeps no state to close
  }

  async #call<T>(method: 'GET' | 'POST', action: string, body: unknown, schema: z.ZodType<T>): Promise<T> {
    const url = new URL(action, this.#base);
    const text = body === undefined ? '' : JSON.stringify(body);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const { auth } = this.#options;
    if (auth.kind === 'bearer') headers.authorization = `Bearer ${auth.token.reveal()}`;
    else {
      const timestamp = String(Math.floor(Date.now() / 1000));
      headers[HMAC_TIMESTAMP_HEADER] = timestamp;
      headers[HMAC_SIGNATURE_HEADER] = signRequest(auth.secret.reveal(), timestamp, method, url.pathname, text);
    }
    const what = `${method} ${url.pathname}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body: text }),
        signal: AbortSignal.timeout(this.#options.timeoutMs),
        redirect: 'error',
      });
    } catch (cause) {
      const timedOut = (cause as Error).name === 'TimeoutError';
      throw new CodedError(
        ErrorCode.ProxyAdminFailed,
        timedOut
          ? `The HTTP admin endpoint did not answer ${what} within ${this.#options.timeoutMs} ms`
          : `The HTTP admin endpoint is unreachable (${what}): ${(cause as Error).message}`,
        { cause, details: { action, timedOut } },
      );
    }
    let raw: unknown;
    const responseText = await response.text().catch(() => '');
    try {
      raw = responseText === '' ? undefined : JSON.parse(responseText);
    } catch (cause) {
      throw new CodedError(ErrorCode.ProxyAdminFailed, `The HTTP admin endpoint answered ${what} with non-JSON (status ${response.status})`, {
        cause,
        details: { status: response.status },
      });
    }
    if (!response.ok) {
      const message = errorBody.safeParse(raw).data?.error ?? 'no error message';
      throw new CodedError(
        ErrorCode.ProxyAdminFailed,
        `The HTTP admin endpoint refused ${what} (status ${response.status}): ${message.slice(0, 300)}`,
        { details: { status: response.status, action } },
      );
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      throw new CodedError(
        ErrorCode.ProxyAdminFailed,
        `The HTTP admin endpoint answered ${what} with an unexpected body: ${z.prettifyError(parsed.error).slice(0, 300)}`,
        { details: { status: response.status, action } },
      );
    }
    return parsed.data;
  }
}
