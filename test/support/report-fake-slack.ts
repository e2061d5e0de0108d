/**
 * A local fake of the Slack Web API for report tests: a node:http server on 127.0.0.1 that records
 * every call (method, form fields with JSON-decoded blocks, time) and answers `{ ok: true, ts }`.
 * `rateLimitNext(n, retryAfterSeconds)` makes the next n chat.postMessage calls answer 429.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackCall {
  method: string;
  fields: Record<string, string>;
  at: number;
  status: number;
}

export interface FakeSlack {
  url: string;
  calls: SlackCall[];
  rateLimitNext(times: number, retryAfterSeconds: number): void;
  close(): Promise<void>;
}

export async function startFakeSlack(): Promise<FakeSlack> {
  const calls: SlackCall[] = [];
  let limited = 0;
  let retryAfter = 1;
  let seq = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0] ?? '';
      const fields = (req.headers['content-type'] ?? '').startsWith('application/json')
        ? (JSON.parse(body || '{}') as Record<string, string>)
        : Object.fromEntries(new URLSearchParams(body));
      if (method === 'chat.postMessage' && limited > 0) {
        limited--;
        calls.push({ method, fields, at: Date.now(), status: 429 });
        res.writeHead(429, { 'retry-after': String(retryAfter), 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: false, error: 'ratelimited' }));
        return;
      }
      calls.push({ method, fields, at: Date.now(), status: 200 });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, channel: fields.channel, ts: `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, '0')}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    rateLimitNext(times, seconds) {
      limited = times;
      retryAfter = seconds;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
