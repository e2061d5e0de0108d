/**
 * Hostile traffic against the running bot (startBot over real signed HTTP, embedded store in memory,
 * fake Slack, honest fake machines): ≥ 10,000 generated slash commands and ≥ 2,000 button clicks and
 * modal submissions, at most 4 in flight. Properties: no crash and no unhandled rejection; every answer
 * is 2xx (401 for the forgeries we sign badly on purpose), never 5xx; every answer a person sees is a
 * message for people (no stack trace, "undefined", "[object Object]" or ":boom:"); every request is
 * answered within Slack's 3 s acknowledgement deadline (the bot processes before responding here, so
 * that is all of its work: an answer later than that is a request Slack gives up on); and
 * afterwards the store holds only changes the gates allow. Seed: PROPERTY_SEED (printed on failure).
 */
import { loadavg } from 'node:os';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMutating, parseCommand } from '../../src/domain/commands.js';
import { gateViolations, has, type PeoplePolicy, type Role } from '../support/gate-invariants.js';
import {
  clickArb,
  inFlight,
  sendSigned,
  parseAck,
  slashArb,
  submitArb,
  unhelpful,
  type Answer,
  type HostileRequest,
  type SubmitRequest,
  type UserPick,
} from '../support/hostile-requests.js';
import { blockActionsPayload, interactionBody, slashCommandBody, viewSubmissionPayload } from '../support/slack-requests.js';
import { ALICE, BOB, CAROL, CHANNELS, MALLORY, OTHER_CHANNEL, SECRET, SOLO_CHANNEL, startHarness, type Harness } from '../slack/harness.js';

const SLASH_COMMANDS = 10_500; // ≥ 10,000 after forgeries (one in 41) are set aside
const INTERACTIONS = 2_400; // clicks and submissions together; ≥ 2,000 after forgeries are set aside
// The bot and this client share one process on a 2-core machine: more in flight only queues, and
// each request's time then counts the others' work. Raise it only with the deadline in view.
const IN_FLIGHT = 4;
/** Slack drops a request not acknowledged within 3 s: the outcome that matters, whatever the machine's load. */
const DEADLINE_MS = 3_000;
const SEED = Number(process.env.PROPERTY_SEED ?? Date.now() % 2_147_483_647);

const GUARDED = CHANNELS[11] as string;
const BUSY = CHANNELS.slice(0, 10);
const POLICIES: Record<string, PeoplePolicy> = {
  orders: { operators: [ALICE, BOB], approvers: [CAROL, ALICE], twoPersonRule: true },
  solo: { operators: [ALICE], approvers: [ALICE], twoPersonRule: false },
  catalog: { operators: [ALICE], approvers: [CAROL], twoPersonRule: true },
};
const NOBODY: PeoplePolicy = { operators: [], approvers: [], twoPersonRule: true };
/** Who may have caused each machine operation (the approver runs the freeze and the switch). */
const OPS_NEED: Record<string, Role> = { startMigration: 'operator', freeze: 'either', switchover: 'either', resume: 'operator', rollback: 'operator', finish: 'operator', abort: 'operator' };
const TARGET_DB: Record<string, string> = { orders: 'orders_prod', solo: 'catalog', catalog: 'catalog' };

interface Sent {
  request: HostileRequest;
  answer?: Answer;
  error?: string;
  /** Where it went, resolved when it was sent. */
  channel: string;
  user: string;
  /** Counted as an attempt on the guarded session that must leave a refusal (and the key it dedupes under). */
  guardedRefusal?: string;
  /** Request text or typed value, which the answer may echo. */
  echo: string;
}

interface LiveSession {
  id: string;
  channel: string;
  profile: string;
  version: number;
}

let h: Harness;
const crashes: string[] = [];
const onCrash = (error: unknown) => crashes.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
let guardedBefore: { version: number; state: string; gates: string };

beforeAll(async () => {
  process.on('unhandledRejection', onCrash);
  process.on('uncaughtException', onCrash);
  h = await startHarness();
  // The guarded session: started and both gates requested by Alice; afterwards only outsiders act on it.
  const guarded = h.channel(GUARDED);
  for (const text of ['start orders', 'freeze', 'switch']) expect((await guarded.command(ALICE, text)).status).toBe(200);
  guardedBefore = await guardedState();
});

afterAll(async () => {
  await h?.close();
  process.off('unhandledRejection', onCrash);
  process.off('uncaughtException', onCrash);
});

async function guardedState() {
  const session = await h.channel(GUARDED).session();
  const gates = await h.bot.store.db.query<{ gate: string; status: string; approved_by: string | null }>('SELECT gate, status, approved_by FROM gate_requests WHERE session_id = $1 ORDER BY gate', [session.id]);
  return { version: session.version, state: session.state, gates: JSON.stringify(gates.rows) };
}

async function liveSessions(): Promise<LiveSession[]> {
  const { rows } = await h.bot.store.db.query<{ id: string; channel_id: string; profile: string; version: number }>('SELECT id, channel_id, profile, version FROM sessions ORDER BY created_at, id');
  return rows.map((r) => ({ id: r.id, channel: r.channel_id, profile: r.profile, version: r.version }));
}

const PEOPLE = { alice: ALICE, bob: BOB, carol: CAROL, mallory: MALLORY } as const;
const person = (pick: UserPick) => (typeof pick === 'string' ? PEOPLE[pick] : pick.stranger);
/** In the guarded channel only outsiders act. */
const actor = (pick: UserPick, outsider: string, channel: string) => (channel === GUARDED ? outsider : person(pick));

interface RenderedButton {
  channel: string;
  ts: string;
  element: Record<string, unknown>;
}

const buttonsOf = (m: { channel: string; ts: string; blocks: Array<Record<string, unknown>> }): RenderedButton[] =>
  m.blocks.filter((b) => b.type === 'actions').flatMap((b) => (b.elements as Array<Record<string, unknown>>).map((element) => ({ channel: m.channel, ts: m.ts, element })));

/** Every button the bot ever drew (posts and updates), gathered as the calls come in. */
const rendered: RenderedButton[] = [];
let renderedUpTo = 0;

/** Buttons as the bot drew them: on the messages now, or in every post and update it ever made. */
function buttons(source: 'live' | 'rendered'): RenderedButton[] {
  if (source === 'live') return [...h.fake.messages.values()].flatMap(buttonsOf);
  for (; renderedUpTo < h.fake.calls.length; renderedUpTo++) {
    const c = h.fake.calls[renderedUpTo];
    if (c?.method !== 'chat.postMessage' && c?.method !== 'chat.update') continue;
    rendered.push(...buttonsOf({ channel: String(c.body.channel), ts: String(c.body.ts ?? ''), blocks: (c.body.blocks as Array<Record<string, unknown>>) ?? [] }));
  }
  return rendered;
}

const pickFrom = <T,>(items: readonly T[], pick: number): T | undefined => (items.length ? items[pick % items.length] : undefined);

function channelOf(request: Extract<HostileRequest, { kind: 'slash' }>): string {
  const c = request.channel;
  return c.kind === 'busy' ? (BUSY[c.index] as string) : c.kind === 'guarded' ? GUARDED : c.kind === 'solo' ? SOLO_CHANNEL : c.kind === 'other' ? OTHER_CHANNEL : c.id;
}

/** Builds the signed body of a request against the bot as it is now. */
async function build(request: HostileRequest, index: number): Promise<{ body: string; sent: Sent }> {
  const good = request.signing === 'good';
  if (request.kind === 'slash') {
    const channel = channelOf(request);
    const user = actor(request.user, request.outsider, channel);
    const body = slashCommandBody({ text: request.text, userId: user, channelId: channel, responseUrl: h.fake.respondUrl(`p${index}`) });
    const parsed = parseCommand(request.text);
    const refusal = good && channel === GUARDED && parsed.ok && isMutating(parsed.command) ? `${user}:${request.text.trim().replace(/\s+/g, ' ').toLowerCase()}` : undefined;
    return { body, sent: { request, channel, user, echo: request.text, ...(refusal ? { guardedRefusal: refusal } : {}) } };
  }
  const sessions = await liveSessions();
  if (request.kind === 'click') {
    const b = request.button;
    let target: RenderedButton | undefined;
    if (b.kind === 'forged') {
      const session = pickFrom(sessions, b.pick);
      const value = b.value === null ? undefined : b.value.replace('{session}', session ? `${session.id}:${session.version}` : '').replace('{uuid}', session?.id ?? '');
      target = { channel: session?.channel ?? (BUSY[b.pick % BUSY.length] as string), ts: '1700000000.000001', element: { type: 'button', action_id: b.action, text: { type: 'plain_text', text: 'x' }, ...(value !== undefined ? { value } : {}) } };
    } else {
      const all = buttons(b.kind);
      const gates = b.kind === 'live' && b.gate ? all.filter((x) => /_(request|approve|now|run)$/.test(String(x.element.action_id))) : [];
      target = pickFrom(gates.length ? gates : all, b.pick);
    }
    target ??= { channel: BUSY[0] as string, ts: '1700000000.000001', element: { type: 'button', action_id: 'pgc.abort', value: `00000000-0000-4000-8000-000000000000:1` } };
    const user = actor(request.user, request.outsider, target.channel);
    const payload = blockActionsPayload({ userId: user, channelId: target.channel, messageTs: target.ts, button: target.element, responseUrl: h.fake.respondUrl(`i${index}`) });
    const refusal = good && b.kind !== 'forged' && target.channel === GUARDED ? `click ${index}` : undefined;
    return { body: interactionBody(payload), sent: { request, channel: target.channel, user, echo: '', ...(refusal ? { guardedRefusal: refusal } : {}) } };
  }
  return buildSubmit(request, index, sessions);
}

function buildSubmit(request: SubmitRequest, index: number, sessions: LiveSession[]): { body: string; sent: Sent } {
  const m = request.metadata;
  let view: Record<string, unknown> = { callback_id: 'pgc.switch_confirm', private_metadata: '', blocks: [], title: { type: 'plain_text', text: 'Switch' } };
  let session: LiveSession | undefined;
  let valid = false;
  if (m.kind === 'opened') {
    const opened = pickFrom(h.fake.callsTo('views.open'), m.pick)?.body.view as Record<string, unknown> | undefined;
    if (opened) {
      view = opened;
      const meta = JSON.parse(String(opened.private_metadata)) as { sessionId: string };
      session = sessions.find((s) => s.id === meta.sessionId);
      valid = true;
    }
  } else if (m.kind === 'forged') {
    session = pickFrom(sessions, m.pick);
    const version = (session?.version ?? 1) + m.versionDelta;
    valid = session !== undefined && version >= 1 && ['switch_approve', 'switch_now', 'switch_run'].includes(m.action);
    view = { ...view, private_metadata: JSON.stringify({ sessionId: session?.id ?? '00000000-0000-4000-8000-000000000000', version, action: m.action, channelId: session?.channel ?? BUSY[0] }) };
  } else view = { ...view, private_metadata: m.raw };
  const expected = TARGET_DB[session?.profile ?? 'orders'] as string;
  const t = request.typed;
  const value = t.kind === 'exact' ? expected : t.kind === 'padded' ? `  ${expected}\t` : t.value;
  const channel = session?.channel ?? '';
  const user = actor(request.user, request.outsider, channel);
  const payload = viewSubmissionPayload({ userId: user, view: { ...view, callback_id: request.callbackId }, values: { db_name: { typed: { type: 'plain_text_input', value } } } });
  const refusal = request.signing === 'good' && valid && channel === GUARDED && request.callbackId === 'pgc.switch_confirm' ? `submit ${index}` : undefined;
  return { body: interactionBody(payload), sent: { request, channel, user, echo: value ?? '', ...(refusal ? { guardedRefusal: refusal } : {}) } };
}

/** What is wrong with one answer (empty when nothing is). */
function problems(sent: Sent, index: number): string[] {
  const { request, answer } = sent;
  if (!answer) return [`no answer: ${sent.error}`];
  const found: string[] = [];
  if (answer.ms > DEADLINE_MS) found.push(`answered in ${Math.round(answer.ms)} ms`);
  const forged = request.signing !== 'good';
  if (answer.status >= 500) found.push(`HTTP ${answer.status}`);
  else if (forged && answer.status !== 401) found.push(`forgery (${request.signing}) got HTTP ${answer.status}, not 401`);
  else if (!forged && (answer.status < 200 || answer.status > 299)) found.push(`HTTP ${answer.status}`);
  if (forged || answer.status !== 200) return found;
  const texts: unknown[] = [];
  if (request.kind === 'slash') {
    texts.push(parseAck(answer.body).text);
    texts.push(...h.fake.responds.filter((r) => r.id === `p${index}`).map((r) => r.body.text));
  } else if (answer.body) {
    const ack = parseAck(answer.body);
    if (ack?.errors) texts.push(...Object.values(ack.errors as Record<string, unknown>));
    if (ack?.view) texts.push(...((ack.view as { blocks?: Array<{ text?: { text?: unknown } }> }).blocks ?? []).map((b) => b.text?.text));
  }
  // The audit trail quotes what anyone typed before (`/migrate start undefined`): any earlier text may echo.
  const echo = request.kind === 'slash' && /^\s*history\s*$/i.test(request.text) ? everythingTyped() : sent.echo;
  for (const text of texts) {
    const why = unhelpful(text, echo);
    if (why) found.push(`${why}: ${JSON.stringify(String(text).slice(0, 160))}`);
  }
  return found;
}

let typed: string | undefined;
const everythingTyped = () => (typed ??= bulk.map((s) => s.echo).join('\n'));


async function blast(requests: HostileRequest[], offset: number): Promise<Sent[]> {
  const sent: Sent[] = new Array(requests.length);
  await inFlight(requests, IN_FLIGHT, async (request, i) => {
    const index = offset + i;
    const { body, sent: s } = await build(request, index);
    sent[i] = s;
    try {
      s.answer = await sendSigned(h.eventsUrl, body, { secret: SECRET, signing: request.signing, ...(request.retryNum !== undefined ? { retryNum: request.retryNum } : {}) });
    } catch (error) {
      s.error = error instanceof Error ? `${error.message} ${String((error as { cause?: unknown }).cause ?? '')}` : String(error);
    }
  });
  return sent;
}

function summarise(label: string, sent: Sent[], offset: number): { failures: string[]; byFamily: Map<string, number>; p50: number; p99: number; max: number } {
  const failures: string[] = [];
  const byFamily = new Map<string, number>();
  sent.forEach((s, i) => {
    byFamily.set(s.request.family, (byFamily.get(s.request.family) ?? 0) + 1);
    for (const p of problems(s, offset + i)) failures.push(`${label} #${offset + i} [${s.request.family}] ${p} <- ${show(s)}`);
  });
  const times = sent.map((s) => s.answer?.ms ?? Infinity).sort((a, b) => a - b);
  const q = (f: number) => Math.round(times[Math.min(times.length - 1, Math.floor(times.length * f))] ?? 0);
  return { failures, byFamily, p50: q(0.5), p99: q(0.99), max: q(1) };
}

function show(s: Sent): string {
  const r = s.request;
  const what = r.kind === 'slash' ? `text ${JSON.stringify(r.text.slice(0, 80))}` : r.kind === 'click' ? `button ${JSON.stringify(r.button)}` : `metadata ${JSON.stringify(r.metadata)} typed ${JSON.stringify(r.typed)} callback ${JSON.stringify(r.callbackId)}`;
  return `${r.kind} by ${JSON.stringify(s.user.slice(0, 40))} in ${JSON.stringify(s.channel)} ${what}${r.retryNum ? ` retry ${r.retryNum}` : ''} signing ${r.signing}`;
}

/** One interaction after every few commands, so buttons and modals meet sessions in every state. */
function interleave(slash: HostileRequest[], interactions: HostileRequest[]): HostileRequest[] {
  const every = Math.max(1, Math.floor(slash.length / interactions.length));
  const out: HostileRequest[] = [];
  let j = 0;
  slash.forEach((s, i) => {
    out.push(s);
    if ((i + 1) % every === 0 && j < interactions.length) out.push(interactions[j++] as HostileRequest);
  });
  return out.concat(interactions.slice(j));
}

const count = (sent: Sent[], test: (s: Sent) => boolean) => sent.filter(test).length;
let bulk: Sent[] = [];

describe('hostile requests against the running bot', () => {
  it(`answers ${SLASH_COMMANDS} generated slash commands and ${INTERACTIONS} clicks and submissions: 2xx (401 for forgeries), a message for people, within Slack's 3 s`, { timeout: 170_000 }, async () => {
    const slash = fc.sample(slashArb, { numRuns: SLASH_COMMANDS, seed: SEED });
    const interactions = fc.sample(fc.oneof({ weight: 3, arbitrary: clickArb }, { weight: 2, arbitrary: submitArb }), { numRuns: INTERACTIONS, seed: SEED + 1 });
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    let gcMaxMs = 0;
    const gc = new PerformanceObserver((list) => list.getEntries().forEach((e) => (gcMaxMs = Math.max(gcMaxMs, e.duration))));
    gc.observe({ entryTypes: ['gc'] });
    const started = performance.now();
    bulk = await blast(interleave(slash, interactions), 0);
    const seconds = (performance.now() - started) / 1000;
    loop.disable();
    gc.disconnect();
    const { failures, byFamily, p50, p99, max } = summarise('bulk', bulk, 0);
    const signed = (kind: HostileRequest['kind']) => count(bulk, (s) => s.request.kind === kind && s.request.signing === 'good');
    const tally = {
      seed: SEED,
      seconds: Math.round(seconds),
      slashCommands: signed('slash'),
      clicks: signed('click'),
      submissions: signed('submit'),
      forgeries: count(bulk, (s) => s.request.signing !== 'good'),
      retries: count(bulk, (s) => s.request.retryNum !== undefined),
      latencyMs: { p50, p99, max },
      // How long this process (bot and client share it) could not run at all, at worst: load shows here.
      eventLoopDelayMaxMs: Math.round(loop.max / 1e6),
      gcPauseMaxMs: Math.round(gcMaxMs),
      loadAverage: loadavg().map((l) => l.toFixed(1)).join(' '),
      families: Object.fromEntries(byFamily),
      failures: failures.length,
    };
    console.log(`hostile requests: ${JSON.stringify(tally)}${failures.length ? `\n${failures.slice(0, 40).join('\n')}` : ''}`);
    expect(crashes, `seed ${SEED}`).toEqual([]);
    expect(failures.slice(0, 20), `seed ${SEED}: ${failures.length} failures`).toEqual([]);
    expect(tally.slashCommands).toBeGreaterThanOrEqual(10_000);
    expect(tally.clicks + tally.submissions).toBeGreaterThanOrEqual(2_000);
    expect((await fetch(h.eventsUrl.replace('/slack/events', '/healthz'))).status).toBe(200);
  });

  it('every message the bot wrote to Slack meanwhile is for people', () => {
    const written = h.fake.calls
      .filter((c) => ['chat.postEphemeral', 'chat.postMessage', 'chat.update'].includes(c.method))
      .map((c) => String(c.body.text ?? ''));
    // Mentions carry whatever user id the request claimed; the rest is the bot's own words.
    const bad = written.map((t) => [unhelpful(t.replace(/<@[^>]*>/g, '<@someone>')), t] as const).filter(([why]) => why !== undefined);
    console.log(`messages written to Slack: ${written.length} (${count(bulk, () => true)} requests), not for people: ${bad.length}`);
    expect(bad.slice(0, 10)).toEqual([]);
  });

  it('leaves only changes the gates allow: operators started, entitled people requested and approved, never the requester under the two-person rule', async () => {
    const violations = await gateViolations(h.bot.store.db, POLICIES);
    const { rows } = await h.bot.store.db.query<{ outcome: string; n: number }>('SELECT outcome, count(*)::int AS n FROM audit_log GROUP BY outcome ORDER BY outcome');
    const states = await h.bot.store.db.query<{ state: string; n: number }>('SELECT state, count(*)::int AS n FROM sessions GROUP BY state ORDER BY state');
    console.log(`audit: ${JSON.stringify(Object.fromEntries(rows.map((r) => [r.outcome, r.n])))}; sessions: ${JSON.stringify(Object.fromEntries(states.rows.map((r) => [r.state, r.n])))}`);
    expect(violations.slice(0, 20)).toEqual([]);
    // And the machines were only ever driven for people entitled to what ran.
    const profileOf = new Map((await liveSessions()).map((s) => [s.id, s.profile]));
    const driven = h.ops.calls.filter((c) => c.ok && c.actor !== undefined && OPS_NEED[c.op] !== undefined);
    const wrong = driven.filter((c) => !has(POLICIES[profileOf.get(c.sessionId) ?? ''] ?? NOBODY, OPS_NEED[c.op] as Role, c.actor as string));
    expect(driven.length).toBeGreaterThan(0);
    expect(wrong).toEqual([]);
    // The traffic reached the gates in both directions: people were refused and sessions moved on.
    expect(rows.find((r) => r.outcome === 'refused')?.n ?? 0).toBeGreaterThan(100);
    expect(rows.find((r) => r.outcome === 'approved')?.n ?? 0).toBeGreaterThan(0);
  });

  it('on the guarded session every outsider attempt was refused into the audit log and nothing changed', async () => {
    const attempts = bulk.filter((s) => s.guardedRefusal !== undefined && s.answer?.status === 200);
    // Identical commands by one person within the dedupe window count once; clicks and submissions each count.
    const distinct = new Set(attempts.map((s) => s.guardedRefusal)).size;
    // Forged values may name the guarded session too; they may be refused, never more than once each.
    const reachable = count(bulk, (s) => s.channel === GUARDED && s.request.signing === 'good' && s.answer?.status === 200);
    const { rows } = await h.bot.store.db.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_log WHERE channel_id = $1 AND outcome = 'refused' AND actor <> $2", [GUARDED, ALICE]);
    const refused = rows[0]?.n ?? 0;
    console.log(`guarded session: ${reachable} outsider requests, ${attempts.length} certain attempts (${distinct} distinct), ${refused} refusals in the audit log`);
    expect(attempts.length).toBeGreaterThan(50);
    expect(refused).toBeGreaterThanOrEqual(distinct);
    expect(refused).toBeLessThanOrEqual(reachable);
    expect(await guardedState()).toEqual(guardedBefore);
  });
});
