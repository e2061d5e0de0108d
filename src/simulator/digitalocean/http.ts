/** The simulator's HTTP plumbing: DO's error ids, request bodies, and what the request log keeps. */
import type { IncomingMessage } from 'node:http';

/** DO's error `id` and default message per status, as its API answers them. */
export const errorIds: Record<number, [string, string]> = {
  400: ['bad_request', 'error parsing request body'],
  401: ['unauthorized', 'Unable to authenticate you.'],
  403: ['forbidden', 'You do not have access for the attempted action.'],
  404: ['not_found', 'The resource you requested could not be found.'],
  422: ['unprocessable_entity', 'request payload validation failed'],
  429: ['too_many_requests', 'API rate limit exceeded.'],
  500: ['server_error', 'Unexpected server-side error'],
};

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function redactBody(body: unknown): unknown {
  if (typeof body !== 'object' || body === null) return body;
  const source = (body as { source?: unknown }).source;
  if (typeof source !== 'object' || source === null || !('password' in source)) return body;
  return { ...body, source: { ...source, password: '[redacted]' } };
}
