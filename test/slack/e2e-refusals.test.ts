/**
 * What must not happen, over real signed HTTP: forged or stale requests (401, nothing changes),
 * unauthorized people, self-approval under the two-person rule, expired requests and approvals
 * (fake clock), stale buttons, Slack retries, and 20 concurrent clicks on one button.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { interactionBody, postSigned, slashCommandBody, blockActionsPayload } from '../support/slack-requests.js';
import { ALICE, BOB, CAROL, CHANNELS, MALLORY, SECRET, startHarness, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const callCount = () => h.fake.calls.length;

describe('request authenticity', () => {
  it('a forged signature gets 401 and changes nothing', async () => {
    const ch = h.channel(CHANNELS[0]!);
    const before = callCount();
    const body = slashCommandBody({ text: 'start orders', userId: ALICE, channelId: ch.id, responseUrl: h.fake.respondUrl() });
    const forged = await postSigned(h.eventsUrl, body, { secret: 'not-the-secret' });
    expect(forged.status).toBe(401);
    const garbage = await postSigned(h.eventsUrl, body, { secret: SECRET, signature: `v0=${'0'.repeat(64)}` });
    expect(garbage.status).toBe(401);
    expect(await h.bot.store.sessions.listForChannel(ch.id)).toHaveLength(0);
    expect(callCount()).toBe(before);
    expect(h.ops.calls.filter((c) => c.op === 'startMigration')).toHaveLength(0);
  });

  it('a stale timestamp gets 401 even when correctly signed, and changes nothing', async () => {
    const ch = h.channel(CHANNELS[0]!);
    const before = callCount();
    const body = slashCommandBody({ text: 'start orders', userId: ALICE, channelId: ch.id, responseUrl: h.fake.respondUrl() });
    const stale = await postSigned(h.eventsUrl, body, { secret: SECRET, timestamp: Math.floor(Date.now() / 1000) - 6 * 60 });
    expect(stale.status).toBe(401);
    expect(await h.bot.store.sessions.listForChannel(ch.id)).toHaveLength(0);
    expect(callCount()).toBe(before);
    // The same body signed now is accepted: the 401s were about authenticity, not the content.
    const fresh = await postSigned(h.eventsUrl, body, { secret: SECRET });
    expect(fresh.status).toBe(200);
    expect((await ch.session()).state).toBe('syncing');
  });

  it('a forged button click gets 401 and changes nothing', async () => {
    const ch = h.channel(CHANNELS[0]!);
    const message = ch.status();
    const button = (message.blocks.find((b) => b.type === 'actions')!.elements as Array<Record<string, unknown>>)[0]!;
    const payload = blockActionsPayload({ userId: ALICE, channelId: ch.id, messageTs: message.ts, button, responseUrl: h.fake.respondUrl() });
    const versionBefore = (await ch.session()).version;
    const res = await postSigned(h.eventsUrl, interactionBody(payload), { secret: 'wrong' });
    expect(res.status).toBe(401);
    expect((await ch.session()).version).toBe(versionBefore);
  });
});

describe('people and gates', () => {
  it('refuses unauthorized people, ephemerally, with an audit entry and a thread line', async () => {
    const ch = h.channel(CHANNELS[1]!);
    await ch.command(MALLORY, 'start orders');
    expect(String(h.fake.responds.at(-1)!.body.text)).toContain('only an operator of this profile');
    expect(await h.bot.store.sessions.listForChannel(ch.id)).toHaveLength(0);

    await ch.command(ALICE, 'start orders');
    const version = (await ch.session()).version;
    await ch.click(MALLORY, 'freeze_request');
    await ch.click(CAROL, 'freeze_request'); // an approver, not an operator
    await ch.click(MALLORY, 'abort');
    const session = await ch.session();
    expect(session.version).toBe(version);
    expect(session.state).toBe('syncing');
    expect(h.fake.ephemeralsFor(MALLORY)).toEqual([
      expect.stringContaining('You cannot request a write freeze: only an operator'),
      expect.stringContaining('You cannot abort the migration: only an operator'),
    ]);
    expect(h.fake.ephemeralsFor(CAROL).at(-1)).toContain('only an operator');
    expect(h.ops.calls.filter((c) => c.sessionId === session.id && c.op === 'abort')).toHaveLength(0);

    // Bob is an operator (through the user group) but not an approver of the switch.
    await ch.click(ALICE, 'switch_request');
    await ch.click(BOB, 'switch_approve');
    expect(h.fake.ephemeralsFor(BOB).at(-1)).toContain('only an approver');
    expect(h.fake.callsTo('views.open').filter((c) => String((c.body.view as { private_metadata: string }).private_metadata).includes(session.id))).toHaveLength(0);

    const refusals = (await h.bot.store.audit.forSession(session.id)).filter((a) => a.outcome === 'refused');
    expect(refusals.map((a) => `${a.actor}:${a.action}`)).toEqual([
      `${MALLORY}:freeze_request`,
      `${CAROL}:freeze_request`,
      `${MALLORY}:abort`,
      `${BOB}:switch_approve`,
    ]);
    expect(ch.threadTexts().filter((t) => t.includes(':no_entry:'))).toHaveLength(4);
    const startRefusal = (await h.bot.store.audit.forChannel(ch.id)).find((a) => a.sessionId === null);
    expect(startRefusal).toMatchObject({ actor: MALLORY, action: 'start', outcome: 'refused' });
  });

  it('refuses self-approval under the two-person rule, for the freeze and for the switch', async () => {
    const ch = h.channel(CHANNELS[2]!);
    await ch.command(ALICE, 'start orders');
    await ch.click(ALICE, 'freeze_request');
    await ch.click(ALICE, 'freeze_approve');
    expect(h.fake.ephemeralsFor(ALICE).at(-1)).toContain('two-person rule: you requested the freeze');
    expect((await ch.session()).state).toBe('syncing');

    await ch.click(ALICE, 'switch_request');
    await ch.click(ALICE, 'switch_approve'); // Alice is also an approver, but she asked
    expect(h.fake.ephemeralsFor(ALICE).at(-1)).toContain('two-person rule: you requested the switch');
    const session = await ch.session();
    expect(await h.bot.approvals.validApproval(session.id, 'switch', h.clock.now())).toBeUndefined();
    expect(h.ops.calls.filter((c) => c.sessionId === session.id && c.op === 'freeze')).toHaveLength(0);

    // Someone else may.
    await ch.click(BOB, 'freeze_approve');
    expect((await ch.session()).state).toBe('frozen');
  });

  it('refuses an expired request and an expired approval, also when it expires while the modal is open', async () => {
    const ch = h.channel(CHANNELS[3]!);
    await ch.command(ALICE, 'start orders');
    await ch.click(ALICE, 'freeze_request');
    h.clock.advanceMinutes(16);
    await ch.click(BOB, 'freeze_approve');
    expect(h.fake.ephemeralsFor(BOB).at(-1)).toContain('request by <@U0ALICE> expired');
    expect((await ch.session()).state).toBe('syncing');
    expect((await h.bot.store.audit.forSession((await ch.session()).id)).at(-1)).toMatchObject({ action: 'freeze_approve', outcome: 'refused' });

    // The expired request no longer blocks a new one.
    await ch.click(BOB, 'freeze_request');
    await ch.click(ALICE, 'freeze_approve');
    expect((await ch.session()).state).toBe('frozen');

    // Switch approved in a modal that stayed open too long: refused at submission.
    await ch.click(ALICE, 'switch_request');
    await ch.click(CAROL, 'switch_approve');
    h.clock.advanceMinutes(20);
    const late = await ch.submitModal(CAROL, 'orders_prod');
    expect(late.json()).toMatchObject({ response_action: 'errors', errors: { db_name: expect.stringContaining('expired') } });
    expect((await ch.session()).state).toBe('frozen');
    // The refusal redraws the message: the expired request gives way to a new one.
    await vi.waitFor(() => expect(ch.buttons()).toContain('switch_request'));

    // An approval granted in time that has expired before the switch runs.
    await ch.click(ALICE, 'switch_request');
    await ch.click(CAROL, 'switch_approve');
    await ch.submitModal(CAROL, 'orders_prod');
    // Approved while frozen runs at once; so take a fresh session that approves ahead of time instead.
    expect((await ch.session()).state).toBe('switched');
    await ch.click(ALICE, 'finish');

    const ch2 = h.channel(CHANNELS[4]!);
    await ch2.command(ALICE, 'start orders');
    await ch2.click(ALICE, 'switch_request');
    await ch2.click(CAROL, 'switch_approve');
    await ch2.submitModal(CAROL, 'orders_prod');
    await ch2.click(ALICE, 'freeze_request');
    await ch2.click(BOB, 'freeze_approve');
    expect(ch2.buttons()).toContain('switch_run');
    const withRun = ch2.snapshot();
    h.clock.advanceMinutes(16);
    await ch2.click(ALICE, 'switch_run', { message: withRun });
    expect(h.fake.ephemeralsFor(ALICE).at(-1)).toContain('switch approval by <@U0CAROL> expired');
    const session = await ch2.session();
    expect(session.state).toBe('frozen');
    expect(h.ops.calls.filter((c) => c.sessionId === session.id && c.op === 'switchover')).toHaveLength(0);
    expect(await h.bot.approvals.validApproval(session.id, 'switch', h.clock.now())).toBeUndefined();
    // After a refresh the message offers a new request instead of the expired run.
    await ch2.command(ALICE, 'status');
    // The channel's message is updated from the same render, after the answer.
    await vi.waitFor(() => expect(ch2.buttons()).toEqual(['switch_request', 'resume', 'abort']));
  });

  it('refuses a click on a stale message politely and does nothing', async () => {
    const ch = h.channel(CHANNELS[5]!);
    await ch.command(ALICE, 'start orders');
    const old = ch.snapshot();
    await ch.click(ALICE, 'freeze_request');
    const after = await ch.session();
    await ch.click(BOB, 'freeze_request', { message: old });
    expect(h.fake.ephemeralsFor(BOB).at(-1)).toMatch(/older status message \(v\d+; the session is now at v\d+\)\. Nothing was done/);
    await ch.click(BOB, 'abort', { message: old });
    const now = await ch.session();
    expect(now.version).toBe(after.version);
    expect(now.state).toBe('syncing');
    const requests = await h.bot.approvals.forSession(now.id);
    expect(requests).toHaveLength(1);
    const stale = (await h.bot.store.audit.forSession(now.id)).filter((a) => a.details.reason === 'stale');
    expect(stale).toHaveLength(2);
  });
});

describe('retries and concurrency', () => {
  it('a retried slash command (x-slack-retry-num) causes no second side effect', async () => {
    const ch = h.channel(CHANNELS[6]!);
    const body = slashCommandBody({ text: 'start orders', userId: ALICE, channelId: ch.id, responseUrl: h.fake.respondUrl() });
    const first = await postSigned(h.eventsUrl, body, { secret: SECRET });
    const retry = await postSigned(h.eventsUrl, body, { secret: SECRET, retryNum: 1 });
    expect(first.status).toBe(200);
    expect(retry.status).toBe(200);
    expect(JSON.parse(retry.text)).toMatchObject({ response_type: 'ephemeral', text: expect.stringContaining('Slack retried it') });
    expect(await h.bot.store.sessions.listForChannel(ch.id)).toHaveLength(1);
    expect(h.fake.topLevel(ch.id)).toHaveLength(1);
    const session = await ch.session();
    expect(h.ops.calls.filter((c) => c.sessionId === session.id && c.op === 'startMigration')).toHaveLength(1);
  });

  it('a retried button click causes no second side effect and no second message', async () => {
    const ch = h.channel(CHANNELS[7]!);
    await ch.command(ALICE, 'start orders');
    const message = ch.snapshot();
    await ch.click(ALICE, 'freeze_request', { message });
    const threadBefore = ch.threadTexts().length;
    const ephemeralsBefore = h.fake.ephemeralsFor(ALICE).length;
    const retry = await ch.click(ALICE, 'freeze_request', { message, retryNum: 1 });
    expect(retry.status).toBe(200);
    const session = await ch.session();
    expect(await h.bot.approvals.forSession(session.id)).toHaveLength(1);
    expect(ch.threadTexts()).toHaveLength(threadBefore);
    expect(h.fake.ephemeralsFor(ALICE)).toHaveLength(ephemeralsBefore);
    expect((await h.bot.store.audit.forSession(session.id)).filter((a) => a.action === 'freeze_request')).toHaveLength(1);
  });

  it('20 concurrent clicks on one button produce exactly one transition', async () => {
    const ch = h.channel(CHANNELS[8]!);
    await ch.command(ALICE, 'start orders');
    await ch.click(ALICE, 'freeze_request');
    const message = ch.snapshot();
    const before = await ch.session();
    const bobBefore = h.fake.ephemeralsFor(BOB).length;
    const carolBefore = h.fake.ephemeralsFor(CAROL).length;
    h.ops.delayMs = 40;
    try {
      const clicks = await Promise.all(
        Array.from({ length: 20 }, (_, i) => ch.click(i % 2 === 0 ? BOB : CAROL, 'freeze_approve', { message })),
      );
      expect(clicks.every((c) => c.status === 200)).toBe(true);
    } finally {
      h.ops.delayMs = 0;
    }
    const after = await ch.session();
    expect(after.state).toBe('frozen');
    const engineCalls = h.ops.calls.filter((c) => c.sessionId === after.id && c.op === 'freeze');
    expect(engineCalls).toHaveLength(1);
    expect(engineCalls[0]!.ok).toBe(true);
    // One approval step and one engine transition: exactly two versions later.
    expect(after.version).toBe(before.version + 2);
    const audit = await h.bot.store.audit.forSession(after.id);
    expect(audit.filter((a) => a.action === 'freeze_approve' && a.outcome === 'approved')).toHaveLength(1);
    expect(audit.filter((a) => a.action === 'freeze' && a.outcome === 'succeeded')).toHaveLength(1);
    const told = [...h.fake.ephemeralsFor(BOB).slice(bobBefore), ...h.fake.ephemeralsFor(CAROL).slice(carolBefore)];
    expect(told).toHaveLength(19);
    for (const text of told) expect(text).toMatch(/already being handled|older status message/);
  });
});
