/**
 * A local fake of the Slack Web API and the response_url sink (node:http on 127.0.0.1:0), for the tests
 * and the sandbox's console. It records every call the bot makes, keeps the messages it posted (updated
 * in place by chat.update) and the ephemeral ones, answers usergroups.users.list from a configurable
 * table, can be told to fail a method (`failNext`), and tells `onChange` listeners after every call.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface RecordedCall {
  method: string;
  /** Form fields (JSON-looking values such as `blocks` parsed), or the JSON body of a respond. */
  body: Record<string, unknown>;
  auth: string | undefined;
}

export interface FakeMessage {
  channel: string;
  ts: string;
  text: string;
  blocks: Array<Record<string, unknown>>;
  threadTs?: string;
  broadcast: boolean;
  updates: number;
}

/** A message only one person sees: chat.postEphemeral. */
export interface FakeEphemeral {
  channel: string;
  user: string;
  text: string;
  blocks: Array<Record<string, unknown>>;
}

/** How a call made to fail fails: Slack's `ok: false` error, an HTTP status, or a connection reset. */
export type FakeFailure = { error: string } | { status: number; retryAfterSeconds?: number } | { reset: true };

export interface FakeSlack {
  url: string;
  apiUrl: string;
  calls: RecordedCall[];
  responds: Array<{ id: string; body: Record<string, unknown> }>;
  messages: Map<string, FakeMessage>;
  userGroups: Map<string, string[]>;
  ephemerals: FakeEphemeral[];
  /** Calls `listener` after every recorded call or respond; returns the unsubscribe function. */
  onChange(listener: () => void): () => void;
  /** Calls of one Web API method. */
  callsTo(method: string): RecordedCall[];
  /** Top-level (non-thread) messages of a channel. */
  topLevel(channel: string): FakeMessage[];
  /** Replies in a message's thread. */
  thread(ts: string): FakeMessage[];
  /** Ephemeral messages for a user (chat.postEphemeral and response_url), as text. */
  ephemeralsFor(user: string): string[];
  respondUrl(id?: string): string;
  /** The next `times` calls of `method` (a Web API method, or `respond` for response_url posts) fail so. */
  failNext(method: string, times: number, failure: FakeFailure): void;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseForm(raw: string): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(raw)) {
    result[key] = /^[[{]/.test(value) ? safeJson(value) : value;
  }
  return result;
}

function safeJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

export async function startFakeSlack(): Promise<FakeSlack> {
  const calls: RecordedCall[] = [];
  const responds: Array<{ id: string; body: Record<string, unknown> }> = [];
  const messages = new Map<string, FakeMessage>();
  const userGroups = new Map<string, string[]>();
  const ephemerals: FakeEphemeral[] = [];
  const listeners = new Set<() => void>();
  const changed = () => listeners.forEach((listener) => listener());
  const failures = new Map<string, { times: number; failure: FakeFailure }>();
  /** Answers the request with its planned failure, if one is due; true when it did. */
  const failed = (method: string, res: ServerResponse): boolean => {
    const planned = failures.get(method);
    if (!planned || planned.times <= 0) return false;
    planned.times--;
    const { failure } = planned;
    if ('reset' in failure) res.socket?.destroy();
    else if ('error' in failure) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: false, error: failure.error }));
    } else {
      res.writeHead(failure.status, { 'content-type': 'application/json', ...(failure.retryAfterSeconds ? { 'retry-after': String(failure.retryAfterSeconds) } : {}) });
      res.end(JSON.stringify({ ok: false, error: failure.status === 429 ? 'ratelimited' : 'fatal_error' }));
    }
    return true;
  };
  let seq = 0;
  const nextTs = () => `1700000000.${String(++seq).padStart(6, '0')}`;

  const server: Server = createServer((req, res) => {
    readBody(req)
      .then((raw) => {
        const path = req.url ?? '/';
        const json = (status: number, body: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        };
        if (path.startsWith('/respond/')) {
          if (failed('respond', res)) return;
          const body = (req.headers['content-type'] ?? '').startsWith('application/json') ? (JSON.parse(raw) as Record<string, unknown>) : parseForm(raw);
          responds.push({ id: path.slice('/respond/'.length), body });
          json(200, { ok: true });
          changed();
          return;
        }
        const method = path.replace(/^\/api\//, '').split('?')[0] ?? '';
        const body = parseForm(raw);
        calls.push({ method, body, auth: req.headers.authorization });
        if (failed(method, res)) return;
        res.once('finish', changed);
        const channel = String(body.channel ?? '');
        switch (method) {
          case 'auth.test':
            return json(200, { ok: true, user_id: 'U_BOT', bot_id: 'B_BOT', team_id: 'T_TEST' });
          case 'chat.postMessage': {
            const ts = nextTs();
            messages.set(ts, {
              channel,
              ts,
              text: String(body.text ?? ''),
              blocks: (body.blocks as FakeMessage['blocks']) ?? [],
              ...(body.thread_ts ? { threadTs: String(body.thread_ts) } : {}),
              broadcast: body.reply_broadcast === 'true',
              updates: 0,
            });
            return json(200, { ok: true, channel, ts, message: { ts, text: body.text } });
          }
          case 'chat.update': {
            const ts = String(body.ts ?? '');
            const existing = messages.get(ts);
            if (!existing) return json(200, { ok: false, error: 'message_not_found' });
            existing.text = String(body.text ?? existing.text);
            existing.blocks = (body.blocks as FakeMessage['blocks']) ?? existing.blocks;
            existing.updates++;
            return json(200, { ok: true, channel, ts });
          }
          case 'chat.postEphemeral':
            ephemerals.push({
              channel,
              user: String(body.user ?? ''),
              text: String(body.text ?? ''),
              blocks: (body.blocks as FakeEphemeral['blocks']) ?? [],
            });
            return json(200, { ok: true, message_ts: nextTs() });
          case 'views.open':
            return json(200, { ok: true, view: { id: `V${seq++}` } });
          case 'usergroups.users.list': {
            const users = userGroups.get(String(body.usergroup ?? ''));
            return json(200, users ? { ok: true, users } : { ok: false, error: 'no_such_subteam' });
          }
          default:
            return json(200, { ok: true });
        }
      })
      .catch((error: unknown) => {
        res.writeHead(500);
        res.end(String(error));
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://127.0.0.1:${port}`;
  let respondSeq = 0;
  return {
    url,
    apiUrl: `${url}/api/`,
    calls,
    responds,
    messages,
    userGroups,
    ephemerals,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    callsTo: (method) => calls.filter((c) => c.method === method),
    topLevel: (ch) => [...messages.values()].filter((m) => m.channel === ch && !m.threadTs),
    thread: (ts) => [...messages.values()].filter((m) => m.threadTs === ts),
    ephemeralsFor: (user) => [
      ...ephemerals.filter((e) => e.user === user).map((e) => e.text),
    ],
    respondUrl: (id) => `${url}/respond/${id ?? String(++respondSeq)}`,
    failNext: (method, times, failure) => void failures.set(method, { times, failure }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
