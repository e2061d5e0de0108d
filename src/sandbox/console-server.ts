/**
 * The sandbox's console: a local web page that looks and behaves like a Slack channel. It serves the
 * static page (./console/), a JSON snapshot of the channel as the fake Slack Web API saw the bot build
 * it (messages, threads, ephemeral replies, modals opened per person, the write-load panel), pushed
 * live over server-sent events; and it turns what a person does on the page into the signed requests
 * Slack would send (slash command, button click, modal submission). The bot cannot tell it from Slack.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { CodedError, ErrorCode } from '../errors.js';
import type { FakeSlack } from './fake-slack.js';
import { blockActionsPayload, interactionBody, postSigned, slashCommandBody, viewSubmissionPayload } from './slack-requests.js';
import type { LoadView } from './write-load.js';

export interface ConsolePerson {
  id: string;
  name: string;
  role: string;
}

export interface ConsoleOptions {
  slack: FakeSlack;
  /** The bot's `POST /slack/events`. */
  eventsUrl: string;
  signingSecret: string;
  channel: { id: string; name: string };
  people: ConsolePerson[];
  /** 0: any free port. */
  port: number;
  /** Lines the page shows about what runs (mode, servers, PgBouncer or not). */
  about: string[];
  load(): LoadView;
}

export interface ConsoleServer {
  url: string;
  close(): Promise<void>;
}

/** One entry of the channel's timeline, in the order the console first saw it. */
type Entry =
  | { kind: 'message'; ts: string }
  | { kind: 'ephemeral'; user: string; text: string; blocks: unknown[] }
  | { kind: 'in_channel'; user: string; text: string; blocks: unknown[] };

const STATIC: Record<string, string> = { '/': 'index.html', '/console.js': 'console.js', '/console.css': 'console.css' };
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
const STATIC_DIR = new URL('./console/', import.meta.url);

const userId = z.string().regex(/^U[A-Z0-9]{2,20}$/);
const commandSchema = z.object({ user: userId, text: z.string().max(500) });
const clickSchema = z.object({ user: userId, ts: z.string().max(40), actionId: z.string().max(255) });
const submitSchema = z.object({ user: userId, viewId: z.string().max(40), typed: z.string().max(500) });
const closeSchema = z.object({ user: userId, viewId: z.string().max(40) });

/** A command's answer (in the acknowledgement or through response_url) as Slack shows it. */
function answerEntry(user: string, answer: unknown): Entry {
  const body = (answer ?? {}) as { text?: unknown; blocks?: unknown; response_type?: unknown };
  const blocks = Array.isArray(body.blocks) ? (body.blocks as unknown[]) : [];
  return { kind: body.response_type === 'in_channel' ? 'in_channel' : 'ephemeral', user, text: String(body.text ?? ''), blocks };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) throw new CodedError(ErrorCode.CommandInvalid, 'request body too large');
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch (error) {
    throw new CodedError(ErrorCode.CommandInvalid, 'the request body is not JSON', { cause: error });
  }
}

export async function startConsole(options: ConsoleOptions): Promise<ConsoleServer> {
  const { slack, channel } = options;
  const timeline: Entry[] = [];
  const seen = { messages: new Set<string>(), ephemerals: 0, responds: 0 };
  /** Modals the bot opened, by the person whose click carried the trigger id; closed ones removed. */
  const modals = new Map<string, { user: string; view: Record<string, unknown>; error?: string }>();
  const triggers = new Map<string, string>();
  let seq = 0;

  const collect = () => {
    for (const message of slack.messages.values()) {
      if (message.channel !== channel.id || message.threadTs || seen.messages.has(message.ts)) continue;
      seen.messages.add(message.ts);
      timeline.push({ kind: 'message', ts: message.ts });
    }
    for (const e of slack.ephemerals.slice(seen.ephemerals)) timeline.push({ kind: 'ephemeral', user: e.user, text: e.text, blocks: e.blocks });
    seen.ephemerals = slack.ephemerals.length;
    for (const r of slack.responds.slice(seen.responds)) {
      timeline.push(answerEntry(r.id.split('.')[0] ?? '', r.body));
    }
    seen.responds = slack.responds.length;
    for (const call of slack.callsTo('views.open')) {
      const trigger = String(call.body.trigger_id ?? '');
      const user = triggers.get(trigger);
      if (!user) continue;
      triggers.delete(trigger);
      modals.set(`V${++seq}`, { user, view: call.body.view as Record<string, unknown> });
    }
  };

  const snapshot = () => {
    collect();
    const messages = slack.messages;
    return {
      channel,
      people: options.people,
      about: options.about,
      timeline: timeline.map((entry) => {
        if (entry.kind !== 'message') return entry;
        const m = messages.get(entry.ts);
        const replies = [...messages.values()].filter((r) => r.threadTs === entry.ts);
        return { kind: 'message', ts: entry.ts, text: m?.text ?? '', blocks: m?.blocks ?? [], edited: (m?.updates ?? 0) > 0, replies: replies.map((r) => ({ ts: r.ts, text: r.text, blocks: r.blocks, broadcast: r.broadcast })) };
      }),
      modals: [...modals].map(([id, modal]) => ({ id, ...modal })),
      load: options.load(),
    };
  };

  const streams = new Set<ServerResponse>();
  let pending: NodeJS.Timeout | undefined;
  const push = () => {
    if (pending || streams.size === 0) return;
    pending = setTimeout(() => {
      pending = undefined;
      const data = `data: ${JSON.stringify(snapshot())}\n\n`;
      for (const stream of streams) stream.write(data);
    }, 100);
  };
  const unsubscribe = slack.onChange(push);
  const ticker = setInterval(push, 1000);

  const signed = (body: string) => postSigned(options.eventsUrl, body, { secret: options.signingSecret });
  const respondUrl = (user: string) => slack.respondUrl(`${user}.${++seq}`);

  const actions: Record<string, (input: unknown) => Promise<unknown>> = {
    async '/api/command'(input) {
      const { user, text } = commandSchema.parse(input);
      const answer = await signed(slashCommandBody({ text, userId: user, channelId: channel.id, responseUrl: respondUrl(user) }));
      // An answer in the acknowledgement itself is shown as Slack shows it (ephemeral unless in_channel).
      if (answer.status === 200 && answer.text.startsWith('{')) {
        timeline.push(answerEntry(user, answer.json()));
        push();
      }
      return { status: answer.status };
    },
    async '/api/click'(input) {
      const { user, ts, actionId } = clickSchema.parse(input);
      const message = slack.messages.get(ts);
      const button = (message?.blocks ?? [])
        .filter((b) => b.type === 'actions')
        .flatMap((b) => b.elements as Array<Record<string, unknown>>)
        .find((b) => b.action_id === actionId);
      if (!message || !button) return { status: 404, error: 'that button is no longer on the message' };
      const trigger = `${Date.now()}.${++seq}.${user}`;
      triggers.set(trigger, user);
      const payload = {
        ...blockActionsPayload({ userId: user, channelId: channel.id, messageTs: ts, button, responseUrl: respondUrl(user), messageBlocks: message.blocks }),
        trigger_id: trigger,
      };
      return { status: (await signed(interactionBody(payload))).status };
    },
    async '/api/submit'(input) {
      const { user, viewId, typed } = submitSchema.parse(input);
      const modal = modals.get(viewId);
      if (!modal || modal.user !== user) return { status: 404, error: 'no such dialog' };
      const payload = viewSubmissionPayload({ userId: user, view: modal.view, values: { db_name: { typed: { type: 'plain_text_input', value: typed } } } });
      const answer = await signed(interactionBody(payload));
      const errors = answer.text ? (answer.json() as { response_action?: string; errors?: Record<string, string> }) : {};
      if (errors.response_action === 'errors') modal.error = Object.values(errors.errors ?? {}).join(' ');
      else modals.delete(viewId);
      push();
      return { status: answer.status };
    },
    async '/api/close'(input) {
      const { user, viewId } = closeSchema.parse(input);
      if (modals.get(viewId)?.user === user) modals.delete(viewId);
      push();
      return { status: 200 };
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    // Loopback names only: a page on another site cannot reach the console by rebinding its DNS name.
    const { port } = server.address() as AddressInfo;
    if (![`127.0.0.1:${port}`, `localhost:${port}`].includes(req.headers.host ?? '')) {
      res.writeHead(421).end();
      return;
    }
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const file = STATIC[path];
    if (req.method === 'GET' && file) {
      const body = await readFile(new URL(file, STATIC_DIR));
      res.writeHead(200, { 'content-type': TYPES[file.split('.').pop() ?? ''] ?? 'text/plain', 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    if (req.method === 'GET' && path === '/api/state') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(snapshot()));
      return;
    }
    if (req.method === 'GET' && path === '/api/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(`data: ${JSON.stringify(snapshot())}\n\n`);
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return;
    }
    const action = actions[path];
    if (req.method === 'POST' && action) {
      // Same-origin only: a page elsewhere must not drive the bot through this console.
      if (req.headers['content-type'] !== 'application/json') {
        res.writeHead(415).end();
        return;
      }
      const result = await action(await readJson(req));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(result));
      return;
    }
    res.writeHead(404).end();
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) return void res.end();
      const invalid = error instanceof z.ZodError || (error instanceof CodedError && error.code === ErrorCode.CommandInvalid);
      res.writeHead(invalid ? 400 : 500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: (error as Error).message }));
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    async close() {
      unsubscribe();
      clearInterval(ticker);
      clearTimeout(pending);
      for (const stream of streams) stream.end();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
