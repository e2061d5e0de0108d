/** Faults the DigitalOcean simulator injects on demand, for the client's retry and error tests. */
import { z } from 'zod';

const common = {
  /** How many matching requests the fault applies to (default 1). */
  times: z.number().int().min(1).default(1),
  /** Only requests with this method, when set. */
  method: z.enum(['GET', 'PUT', 'DELETE']).optional(),
  /** Only requests whose path contains this text, when set. */
  pathIncludes: z.string().optional(),
};

export const faultSchema = z.discriminatedUnion('kind', [
  /** 429 with `ratelimit-*` headers; `retry-after` only when given (DO sends it for the burst limit only). */
  z.object({
    kind: z.literal('rate-limit'),
    retryAfterSeconds: z.number().min(0).optional(),
    resetInSeconds: z.number().min(0).default(1),
    ...common,
  }),
  /** A 5xx with DO's error body. */
  z.object({ kind: z.literal('server-error'), status: z.number().int().min(500).max(599).default(500), ...common }),
  /** Answers normally after `delayMs`. */
  z.object({ kind: z.literal('slow'), delayMs: z.number().int().min(0), ...common }),
  /** 200 with a body that is not JSON (`truncated`) or JSON of the wrong shape (`wrong-shape`). */
  z.object({ kind: z.literal('malformed'), shape: z.enum(['truncated', 'wrong-shape']).default('truncated'), ...common }),
  /** A 401/403/404 with DO's error body, whatever the request. */
  z.object({ kind: z.literal('error'), status: z.union([z.literal(401), z.literal(403), z.literal(404)]), ...common }),
]);

export type FaultInput = z.input<typeof faultSchema>;
export type Fault = z.output<typeof faultSchema>;

/** The faults waiting for requests: each applies to the next `times` requests it matches. */
export class FaultQueue {
  readonly #faults: Fault[] = [];

  inject(input: unknown): void {
    this.#faults.push(faultSchema.parse(input));
  }

  clear(): void {
    this.#faults.length = 0;
  }

  /** The first fault matching the request, counted down (and dropped when used up). */
  take(method: string, path: string): Fault | undefined {
    const index = this.#faults.findIndex(
      (f) => (f.method === undefined || f.method === method) && (f.pathIncludes === undefined || path.includes(f.pathIncludes)),
    );
    if (index < 0) return undefined;
    const fault = this.#faults[index] as Fault;
    fault.times -= 1;
    if (fault.times <= 0) this.#faults.splice(index, 1);
    return fault;
  }
}

/** What DigitalOcean would answer for a fault that replaces the answer (`slow` only delays it). */
export interface FaultAnswer {
  status: number;
  payload?: unknown;
  headers?: Record<string, string>;
  rawText?: string;
}

export function faultAnswer(fault: Fault, requestId: string): FaultAnswer | undefined {
  switch (fault.kind) {
    case 'rate-limit': {
      const headers: Record<string, string> = {
        'ratelimit-remaining': '0',
        'ratelimit-reset': String(Math.ceil(Date.now() / 1000 + fault.resetInSeconds)),
      };
      if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
      return { status: 429, payload: { id: 'too_many_requests', message: 'API rate limit exceeded.', request_id: requestId }, headers };
    }
    case 'server-error':
      return { status: fault.status, payload: { id: 'server_error', message: 'Unexpected server-side error', request_id: requestId } };
    case 'malformed':
      return fault.shape === 'truncated'
        ? { status: 200, rawText: '{"id":"77b28fc8-19ff-11eb-8c9c-c68e24557488","status":' }
        : { status: 200, payload: { id: 42, status: 'paused', database: { name: 7 }, rules: 'none' } };
    default:
      return undefined;
  }
}

