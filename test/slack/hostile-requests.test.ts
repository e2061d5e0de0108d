/**
 * Hostile requests against the running bot, over real signed HTTP with the fake Slack Web API:
 * timestamps from the future, replays of captured signed requests, oversized input, malformed ids
 * and button values, a JSON-bodied slash command, a click from another channel, the HOST setting,
 * response_url failures, and a channel the bot was never invited to. Each gets a clear answer and
 * changes nothing it should not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReportScheduleStore } from '../../src/adapters/store/approvals.js';
import { blockActionsPayload, interactionBody, postSigned, sign, slashCommandBody, viewSubmissionPayload } from '../support/slack-requests.js';
import { ALICE, CAROL, CHANNELS, OTHER_CHANNEL, SECRET, SOLO_CHANNEL, startHarness, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const nowSeconds = () => Math.floor(Date.now() / 1000);
let respondSeq = 0;

/** Sends `/migrate <text>` signed at `timestamp`; `answers()` are the response_url posts it caused. */
async function command(channelId: string, text: string, options: { userId?: string; timestamp?: number } = {}) {
  const id = `hostile-${++respondSeq}`;
  const body = slashCommandBody({ text, userId: options.userId ?? ALICE, channelId, responseUrl: h.fake.respondUrl(id) });
  const timestamp = options.timestamp ?? nowSeconds();
  const response = await postSigned(h.eventsUrl, body, { secret: SECRET, timestamp });
  const ack = response.status === 200 ? String((response.json() as { text?: string }).text ?? '') : '';
  return {
    status: response.status,
    ack,
    answers: () => h.fake.responds.filter((r) => r.id === id).map((r) => String(r.body.text ?? '')),
    replay: () => postSigned(h.eventsUrl, body, { secret: SECRET, timestamp }),
  };
}

const replayText = (response: { text: string }) => String((JSON.parse(response.text) as { text?: string }).text ?? '');

describe('timestamps (item 10)', () => {
  it('refuses a correctly signed request from 10 minutes, a day or ten years ahead, and changes nothing', async () => {
    const ch = CHANNELS[0]!;
    for (const ahead of [10 * 60, 86_400, 10 * 365 * 86_400]) {
      const sent = await command(ch, 'start orders', { timestamp: nowSeconds() + ahead });
      expect(sent.status, `${ahead} s ahead`).toBe(401);
    }
    expect(await h.bot.store.sessions.listForChannel(ch)).toHaveLength(0);
    // Within the window it is an ordinary request.
    const near = await command(ch, 'start orders', { timestamp: nowSeconds() + 60 });
    expect(near.status).toBe(200);
    expect(await h.bot.store.sessions.listForChannel(ch)).toHaveLength(1);
  });
});

describe('replays (item 11)', () => {
  it('a captured `report every 7m` replayed after `report off` is refused: the schedule stays off', async () => {
    const ch = CHANNELS[1]!;
    await command(ch, 'start orders');
    const session = (await h.bot.store.sessions.listForChannel(ch))[0]!;
    const schedules = new ReportScheduleStore(h.bot.store.db);
    const captured = await command(ch, 'report every 7m');
    expect(await schedules.get(session.id)).toBe('every 7m');
    await command(ch, 'report off');
    expect(await schedules.get(session.id)).toBe('off');
    // As found: replayed 34 s later, past the 30 s command dedupe, inside the signature's five minutes.
    h.clock.advanceMinutes(34 / 60);
    const replayed = await captured.replay();
    expect(replayed.status).toBe(200);
    expect(replayText(replayed)).toContain('already received');
    expect(await schedules.get(session.id)).toBe('off');
  });

  it('a signed command that failed is not given back: its replay cannot act on a session started later', async () => {
    const ch = CHANNELS[2]!;
    const abort = await command(ch, 'abort');
    expect(abort.answers().join(' ')).toContain('no active migration session');
    await command(ch, 'start orders');
    const started = (await h.bot.store.sessions.listForChannel(ch))[0]!;
    const replayed = await abort.replay();
    expect(replayText(replayed)).toContain('already received');
    expect(await h.bot.store.sessions.get(started.id)).toMatchObject({ state: 'syncing', version: started.version });
  });

  it('a replayed click changes nothing and says so', async () => {
    const ch = h.channel(CHANNELS[3]!);
    await ch.command(ALICE, 'start orders');
    const message = ch.status();
    const button = (message.blocks.find((b) => b.type === 'actions')?.elements as Array<Record<string, unknown>>).find((e) => e.action_id === 'pgc.freeze_request')!;
    const body = interactionBody(blockActionsPayload({ userId: ALICE, channelId: ch.id, messageTs: message.ts, button, responseUrl: h.fake.respondUrl(), messageBlocks: message.blocks }));
    const timestamp = nowSeconds();
    await postSigned(h.eventsUrl, body, { secret: SECRET, timestamp });
    const after = await ch.session();
    await postSigned(h.eventsUrl, body, { secret: SECRET, timestamp });
    expect(await ch.session()).toMatchObject({ version: after.version });
    expect(h.fake.ephemeralsFor(ALICE).at(-1)).toContain('already received');
  });
});

describe('bounded input (item 12)', () => {
  it('a 100 KB unknown verb gets a clear answer naming the limit', async () => {
    const sent = await command(CHANNELS[4]!, `x${'y'.repeat(100_000)}`);
    expect(sent.status).toBe(200);
    expect(sent.ack).toContain('too long');
    expect(sent.ack).not.toContain(':boom:');
  });
});

describe('malformed requests (item 13)', () => {
  it('a NUL in user_id is answered clearly and reaches nothing', async () => {
    const ch = CHANNELS[5]!;
    const sent = await command(ch, 'start orders', { userId: 'U0ALICE\u0000' });
    expect(sent.status).toBe(200);
    expect(sent.ack).toContain('the user id is not a Slack user id');
    expect(sent.ack).not.toContain(':boom:');
    expect(await h.bot.store.sessions.listForChannel(ch)).toHaveLength(0);
  });

  it('a button value of 36 dashes is refused as a button the bot does not know, not a :boom:', async () => {
    const ch = h.channel(CHANNELS[6]!);
    await ch.command(ALICE, 'start orders');
    const message = ch.status();
    const button = { action_id: 'pgc.freeze_request', value: '------------------------------------:1', text: { type: 'plain_text', text: 'Request freeze' } };
    const before = await ch.session();
    const response = await postSigned(
      h.eventsUrl,
      interactionBody(blockActionsPayload({ userId: ALICE, channelId: ch.id, messageTs: message.ts, button, responseUrl: h.fake.respondUrl() })),
      { secret: SECRET },
    );
    expect(response.status).toBe(200);
    const said = h.fake.ephemeralsFor(ALICE).at(-1) ?? '';
    expect(said).toContain('not one this bot understands');
    expect(said).not.toContain(':boom:');
    expect(await ch.session()).toMatchObject({ version: before.version });
  });

  it('a signed JSON-bodied slash command without a response_url is answered clearly and does nothing', async () => {
    const ch = CHANNELS[7]!;
    const body = JSON.stringify({ command: '/migrate', text: 'start orders', user_id: ALICE, channel_id: ch, team_id: 'T_TEST' });
    const timestamp = nowSeconds();
    const response = await fetch(h.eventsUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-slack-request-timestamp': String(timestamp), 'x-slack-signature': sign(SECRET, timestamp, body) },
      body,
    });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { text?: string };
    expect(answer.text).toContain('the response_url');
    expect(answer.text).not.toContain(':boom:');
    expect(await h.bot.store.sessions.listForChannel(ch)).toHaveLength(0);
  });

  it("a click sent from another channel than its session's is refused and changes nothing", async () => {
    const ch = h.channel(CHANNELS[8]!);
    const elsewhere = CHANNELS[9]!;
    await ch.command(ALICE, 'start orders');
    const message = ch.status();
    const button = (message.blocks.find((b) => b.type === 'actions')?.elements as Array<Record<string, unknown>>).find((e) => e.action_id === 'pgc.freeze_request')!;
    const before = await ch.session();
    await postSigned(
      h.eventsUrl,
      interactionBody(blockActionsPayload({ userId: ALICE, channelId: elsewhere, messageTs: message.ts, button, responseUrl: h.fake.respondUrl() })),
      { secret: SECRET },
    );
    expect(h.fake.ephemeralsFor(ALICE).at(-1)).toContain('another channel');
    expect(await ch.session()).toMatchObject({ version: before.version, state: 'syncing' });
    expect(await h.bot.approvals.forSession(before.id)).toHaveLength(0);
  });

  it("a switch dialog submitted with another channel than its session's is refused and approves nothing", async () => {
    const ch = h.channel(OTHER_CHANNEL);
    await ch.command(ALICE, 'start catalog');
    await ch.command(ALICE, 'switch');
    await ch.click(CAROL, 'switch_approve');
    const view = structuredClone(h.fake.callsTo('views.open').at(-1)!.body.view as Record<string, unknown>);
    view.private_metadata = JSON.stringify({ ...JSON.parse(String(view.private_metadata)), channelId: CHANNELS[0] });
    const payload = viewSubmissionPayload({ userId: CAROL, view, values: { db_name: { typed: { type: 'plain_text_input', value: 'catalog' } } } });
    const response = await postSigned(h.eventsUrl, interactionBody(payload), { secret: SECRET });
    expect(JSON.stringify(response.json())).toContain('another channel');
    const session = await ch.session();
    expect((await h.bot.approvals.forSession(session.id)).map((r) => r.status)).toEqual(['pending']);
  });

  it('HOST binds the HTTP server to that one address', async () => {
    const bound = await startHarness({ env: { HOST: '127.0.0.1' } });
    try {
      const port = bound.bot.port!;
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      // Another loopback address reaches a server on every interface, not one bound to 127.0.0.1.
      await expect(fetch(`http://127.0.0.2:${port}/healthz`)).rejects.toThrow();
    } finally {
      await bound.close();
    }
  });
});

describe('answers through response_url (item 14)', () => {
  it('retries the answer after connection resets and 5xx', async () => {
    for (const [i, failure] of [{ reset: true as const }, { status: 503 }].entries()) {
      const ch = CHANNELS[10 + i]!;
      h.fake.failNext('respond', 2, failure);
      const sent = await command(ch, 'start orders');
      expect(sent.ack).toContain('Working on');
      expect(sent.answers().join('\n')).toContain('started');
    }
  });
});

describe('a channel the bot is not in (item 15)', () => {
  it('`start` says how to invite the bot and leaves nothing behind; the next start works', async () => {
    const channelId = SOLO_CHANNEL;
    h.fake.failNext('chat.postMessage', 1, { error: 'not_in_channel' });
    const sent = await command(channelId, 'start solo');
    const answer = sent.answers().join('\n');
    expect(answer).toContain('/invite @pgcutover');
    expect(answer).not.toContain(':boom:');
    expect(await h.bot.store.sessions.listForChannel(channelId)).toHaveLength(0);
    const again = await command(channelId, 'start solo');
    expect(again.answers().join('\n')).toContain('started');
    expect(await h.bot.store.sessions.listForChannel(channelId)).toHaveLength(1);
  });
});
