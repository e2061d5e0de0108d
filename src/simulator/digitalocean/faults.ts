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
