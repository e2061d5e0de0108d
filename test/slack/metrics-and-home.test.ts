/**
 * What operators see around the bot, through the real bot's HTTP server: GET /metrics after facts flow
 * (gates, freezes, lag samples the reports store, Slack API failures and retries), and the App Home a
 * signed `app_home_opened` event publishes to the fake Slack Web API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOME_MAX_SESSIONS, renderHome } from '../../src/adapters/slack/home-view.js';
import { LagSampleStore } from '../../src/adapters/store/lag-samples.js';
import type { Session } from '../../src/domain/session.js';
import { sampleValue } from '../support/prometheus-text.js';
import { appHomeOpened, postSignedEvent } from '../support/slack-events.js';
import { until } from '../support/wait.js';
import { ALICE, BOB, CAROL, CHANNELS, MALLORY, OTHER_CHANNEL, SECRET, startHarness, type Harness } from './harness.js';

let h: Harness;
let samples: LagSampleStore;
beforeAll(async () => {
  h = await startHarness();
  samples = new LagSampleStore(h.bot.store.db);
}, 120_000);
afterAll(async () => {
  await h?.close();
});

const scrape = async () => {
  const response = await fetch(`http://127.0.0.1:${h.bot.port}/metrics`);
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
};

const recordLag = (session: Session, bytes: number, seconds: number | null) =>
  samples.record(session.id, { known: true, at: new Date(), slot: 'do_slot', slotActive: true, bytes, seconds });

describe('GET /metrics', () => {
  it('serves Prometheus text with lag, gate decisions, freeze durations and Slack API failures', async () => {
    const ch = h.channel(CHANNELS[0]!);
    // The status message's first post fails once with a 500: the Web API client retries it.
    h.fake.failNext('chat.postMessage', 1, { status: 500 });
    await ch.command(ALICE, 'start orders');
    // Mallory may not request a freeze: a refused gate decision, told in an ephemeral Slack refuses.
    h.fake.failNext('chat.postEphemeral', 1, { error: 'channel_not_found' });
    await ch.click(MALLORY, 'freeze_request');
    await ch.click(ALICE, 'freeze_request');
    await ch.click(BOB, 'freeze_approve');
    expect((await ch.session()).state).toBe('frozen');
    await ch.click(ALICE, 'resume');
    const session = await ch.session();
    expect(session.state).toBe('syncing');
    await recordLag(session, 123_456, 2.5);

    // A second session goes all the way to the switch.
    const other = h.channel(CHANNELS[1]!);
    await other.command(ALICE, 'start orders');
    await other.click(ALICE, 'freeze_request');
    await other.click(BOB, 'freeze_approve');
    await other.command(ALICE, 'switch');
    await other.click(CAROL, 'switch_approve');
    await other.submitModal(CAROL, 'orders_prod');
    expect((await other.session()).state).toBe('switched');

    // Slack's `ok: false` is read from a copy of the answer, after the caller has it.
    const { status, type, text } = await until('the platform error counted', async () => {
      const scraped = await scrape();
      return sampleValue(scraped.text, 'pgcutover_api_errors_total', { api: 'slack', operation: 'chat.postEphemeral' }) ? scraped : undefined;
    });
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    const orders = { session: session.id, profile: 'orders' };
    expect(sampleValue(text, 'pgcutover_replication_lag_bytes', orders)).toBe(123_456);
    expect(sampleValue(text, 'pgcutover_replication_lag_seconds', orders)).toBe(2.5);
    expect(sampleValue(text, 'pgcutover_replication_lag_sampled_timestamp_seconds', orders)).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(sampleValue(text, 'pgcutover_sessions', { profile: 'orders', state: 'syncing' })).toBe(1);
    expect(sampleValue(text, 'pgcutover_sessions', { profile: 'orders', state: 'switched' })).toBe(1);
    const decision = (gate: string, d: string) => sampleValue(text, 'pgcutover_gate_decisions_total', { profile: 'orders', gate, decision: d });
    expect(decision('freeze', 'requested')).toBe(2);
    expect(decision('freeze', 'approved')).toBe(2);
    expect(decision('freeze', 'refused')).toBe(1);
    expect(decision('switch', 'requested')).toBe(1);
    expect(decision('switch', 'approved')).toBe(1);
    expect(sampleValue(text, 'pgcutover_freeze_duration_seconds_count', { profile: 'orders', outcome: 'resumed' })).toBe(1);
    expect(sampleValue(text, 'pgcutover_freeze_duration_seconds_count', { profile: 'orders', outcome: 'switched' })).toBe(1);
    expect(sampleValue(text, 'pgcutover_api_errors_total', { api: 'slack', operation: 'chat.postMessage', error: 'http_500' })).toBe(1);
    expect(sampleValue(text, 'pgcutover_api_retries_total', { api: 'slack', reason: 'http_error' })).toBe(1);
    expect(sampleValue(text, 'pgcutover_api_errors_total', { api: 'slack', operation: 'chat.postEphemeral', error: 'channel_not_found' })).toBe(1);
    // Process metrics come along; no token, password or host ever does.
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    for (const secret of ['xoxb-test-token', 'not-a-real-password', 'do-test-token', '10.0.0.5']) expect(text).not.toContain(secret);

    // An ended session drops out of the lag gauges.
    await ch.click(ALICE, 'abort');
    const after = (await scrape()).text;
    expect(sampleValue(after, 'pgcutover_replication_lag_bytes', orders)).toBeUndefined();
    expect(sampleValue(after, 'pgcutover_sessions', { profile: 'orders', state: 'syncing' })).toBeUndefined();
  }, 120_000);
});

describe('App Home', () => {
  const openHome = async (user: string, tab: 'home' | 'messages' = 'home') => {
    const before = h.fake.callsTo('views.publish').length;
    const response = await postSignedEvent(h.eventsUrl, appHomeOpened(user, tab), SECRET);
    expect(response.status).toBe(200);
    const published = h.fake.callsTo('views.publish').slice(before);
    return published.map((call) => ({ user: call.body.user_id, view: call.body.view as { type: string; blocks: Array<Record<string, unknown>> } }));
  };

  it('lists the sessions of the profiles the person operates or approves, with state, lag and channel', async () => {
    const orders = h.channel(CHANNELS[2]!);
    await orders.command(ALICE, 'start orders');
    const ordersSession = await orders.session();
    await recordLag(ordersSession, 4096, 0.5);
    const catalog = h.channel(OTHER_CHANNEL);
    await catalog.command(ALICE, 'start catalog');
    const ended = h.channel(CHANNELS[3]!);
    await ended.command(ALICE, 'start orders');
    await ended.click(ALICE, 'abort');

    // Bob operates orders through the user group S0DBAS; catalog is not his.
    const [bob] = await openHome(BOB);
    expect(bob?.user).toBe(BOB);
    expect(bob?.view.type).toBe('home');
    const bobText = JSON.stringify(bob?.view.blocks);
    expect(bobText).toContain(`<#${CHANNELS[2]}>`);
    expect(bobText).toContain('*orders*');
    expect(bobText).toContain('syncing');
    expect(bobText).toContain('4.0 KiB, ~0.5 s');
    expect(bobText).not.toContain(`<#${OTHER_CHANNEL}>`);
    // Only active sessions are listed.
    expect(bobText).not.toContain(`<#${CHANNELS[3]}>`);

    // Carol approves both profiles.
    const [carol] = await openHome(CAROL);
    const carolText = JSON.stringify(carol?.view.blocks);
    expect(carolText).toContain(`<#${CHANNELS[2]}>`);
    expect(carolText).toContain(`<#${OTHER_CHANNEL}>`);
    expect(carolText).toContain('*catalog*');

    // Mallory has no role anywhere: an empty list that says why.
    const [mallory] = await openHome(MALLORY);
    const malloryText = JSON.stringify(mallory?.view.blocks);
    expect(malloryText).toContain('No migration session of a profile you operate or approve');
    expect(malloryText).not.toContain('<#');

    // The Messages tab publishes nothing.
    expect(await openHome(ALICE, 'messages')).toEqual([]);
  }, 120_000);

  it('stays within the 100 blocks Slack allows in a view, however many sessions run', async () => {
    const session = await h.channel(CHANNELS[2]!).session();
    const many = Array.from({ length: HOME_MAX_SESSIONS + 5 }, () => ({ session, lag: undefined }));
    const view = renderHome(many, new Date());
    expect(view.blocks.length).toBeLessThanOrEqual(100);
    expect(JSON.stringify(view.blocks.at(-1))).toContain('…and 5 more');
  });

  it('refuses an unsigned event and publishes nothing', async () => {
    const before = h.fake.callsTo('views.publish').length;
    const response = await postSignedEvent(h.eventsUrl, appHomeOpened(ALICE), 'not-the-signing-secret');
    expect(response.status).toBe(401);
    expect(h.fake.callsTo('views.publish')).toHaveLength(before);
  });
});
