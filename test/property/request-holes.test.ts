/**
 * The request holes issue 12 names (items 10, 11 and 13), generated with fast-check and sent to the
 * running bot one at a time, so that each one's effect is seen on its own: timestamps from the future,
 * replays of the same signed bytes, control characters in ids, uuid-shaped button values, JSON-bodied
 * slash commands, and clicks from another channel than their session's.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAck, sendSigned, unhelpful, type Answer } from '../support/hostile-requests.js';
import { blockActionsPayload, interactionBody, slashCommandBody } from '../support/slack-requests.js';
import { ALICE, BOB, CHANNELS, OTHER_CHANNEL, SECRET, SOLO_CHANNEL, startHarness, type Harness } from '../slack/harness.js';

const SEED = Number(process.env.PROPERTY_SEED ?? Date.now() % 2_147_483_647);

let h: Harness;
const crashes: string[] = [];
const onCrash = (error: unknown) => crashes.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));

beforeAll(async () => {
  process.on('unhandledRejection', onCrash);
  process.on('uncaughtException', onCrash);
  h = await startHarness();
});

afterAll(async () => {
  await h?.close();
  process.off('unhandledRejection', onCrash);
  process.off('uncaughtException', onCrash);
});

describe('the request holes of issue 12, generated', () => {
  const SPARE = CHANNELS[0] as string;
  const spare = () => h.channel(SPARE);
  let n = 0;
  const command = (text: string, user = ALICE, channel = SPARE) => slashCommandBody({ text, userId: user, channelId: channel, responseUrl: h.fake.respondUrl(`k${++n}`) });
  /** Everything the bot answered for the last request: the ack, response_url posts, new ephemerals. */
  const answers = (answer: Answer, ephemeralsBefore: number) => [
    ...(answer.body ? [parseAck(answer.body).text ?? parseAck(answer.body).errors] : []),
    ...h.fake.responds.filter((r) => r.id === `k${n}`).map((r) => r.body.text),
    ...h.fake.callsTo('chat.postEphemeral').slice(ephemeralsBefore).map((c) => c.body.text),
  ].filter((t) => t !== undefined);

  beforeAll(async () => {
    expect((await spare().command(ALICE, 'start orders')).status).toBe(200);
  });

  it('item 10: a timestamp more than five minutes ahead is refused (401) and nothing is done', async () => {
    const skews = fc.sample(fc.oneof(fc.integer({ min: 301, max: 3_600 }), fc.integer({ min: 3_600, max: 10 * 366 * 86_400 })), { numRuns: 40, seed: SEED });
    for (const skewSeconds of skews) {
      const body = command('report every 9m');
      const answer = await sendSigned(h.eventsUrl, body, { secret: SECRET, signing: 'good', skewSeconds });
      expect(answer.status, `+${skewSeconds} s`).toBe(401);
    }
    expect(h.fake.responds.filter((r) => String(r.body.text).includes('every 9m'))).toEqual([]);
  });

  it('item 11: the same signed bytes sent again change nothing, also after the command dedupe window', async () => {
    const [set, off] = [command('report every 7m'), command('report off')];
    // The captured request: its body with the timestamp it was signed with, sent again unchanged.
    const captured = Math.floor(Date.now() / 1000);
    expect((await sendSigned(h.eventsUrl, set, { secret: SECRET, signing: 'good', timestamp: captured })).status).toBe(200);
    expect((await sendSigned(h.eventsUrl, off, { secret: SECRET, signing: 'good' })).status).toBe(200);
    h.clock.advanceMinutes(1); // past the 30 s window in which identical commands count once
    for (const body of [set, set]) await sendSigned(h.eventsUrl, body, { secret: SECRET, signing: 'good', timestamp: captured });
    const session = await spare().session();
    const { rows } = await h.bot.store.db.query<{ schedule: string }>('SELECT schedule FROM report_schedules WHERE session_id = $1', [session.id]);
    expect(rows[0]?.schedule).toBe('off');
  });

  it('item 13: control characters and NUL in user and channel ids get a clear answer, never ":boom:"', async () => {
    const ids = fc.sample(fc.tuple(fc.constantFrom('U0ALICE', 'U0\u0000X', '\u0000', 'U0ALICE\u0000', 'U\u001b[31m', ''), fc.constantFrom(SPARE, `${SPARE}\u0000`, 'C\u0000', 'C0MIG10\n', '')), { numRuns: 30, seed: SEED });
    const bad: string[] = [];
    for (const [user, channel] of ids) {
      const before = h.fake.callsTo('chat.postEphemeral').length;
      const answer = await sendSigned(h.eventsUrl, command('status', user, channel), { secret: SECRET, signing: 'good' });
      const said = answers(answer, before);
      const why = answer.status !== 200 ? `HTTP ${answer.status}` : said.length === 0 ? 'no answer' : said.map((t) => unhelpful(t)).find(Boolean);
      if (why) bad.push(`${JSON.stringify({ user, channel })}: ${why} ${JSON.stringify(said)}`);
    }
    expect(bad).toEqual([]);
  });

  it('item 13: uuid-shaped button values that are not uuids get a clear answer, never ":boom:"', async () => {
    const session = await spare().session();
    const values = fc.sample(fc.oneof(fc.constantFrom('------------------------------------:1', `${'f'.repeat(36)}:1`, '00000000-0000-0000-0000-000000000000:1'), fc.string({ unit: fc.constantFrom(...'0123456789abcdef-'), minLength: 36, maxLength: 36 }).map((s) => `${s}:1`)), { numRuns: 30, seed: SEED });
    const bad: string[] = [];
    for (const value of values) {
      const before = h.fake.callsTo('chat.postEphemeral').length;
      const payload = blockActionsPayload({ userId: ALICE, channelId: SPARE, messageTs: '1700000000.000001', button: { action_id: 'pgc.abort', value, text: { type: 'plain_text', text: 'Abort' } }, responseUrl: h.fake.respondUrl(`k${++n}`) });
      const answer = await sendSigned(h.eventsUrl, interactionBody(payload), { secret: SECRET, signing: 'good' });
      const said = answers(answer, before);
      const why = answer.status !== 200 ? `HTTP ${answer.status}` : said.length === 0 ? 'no answer' : said.map((t) => unhelpful(t)).find(Boolean);
      if (why) bad.push(`${value}: ${why} ${JSON.stringify(said)}`);
    }
    expect(bad).toEqual([]);
    expect((await spare().session()).state).toBe(session.state);
  });

  it("item 13: a click from another channel than its session's changes nothing and says why", async () => {
    const session = await spare().session();
    const mine = h.fake.topLevel(SPARE).flatMap((m) => m.blocks.filter((b) => b.type === 'actions').flatMap((b) => (b.elements as Array<Record<string, unknown>>).map((element) => ({ ts: m.ts, element }))));
    const tries = fc.sample(fc.tuple(fc.nat(), fc.constantFrom(ALICE, BOB), fc.constantFrom(...CHANNELS.slice(1), OTHER_CHANNEL, SOLO_CHANNEL)), { numRuns: 20, seed: SEED });
    for (const [pick, user, elsewhere] of tries) {
      const b = mine[pick % mine.length] as (typeof mine)[number];
      const before = h.fake.callsTo('chat.postEphemeral').length;
      const payload = blockActionsPayload({ userId: user, channelId: elsewhere, messageTs: b.ts, button: b.element, responseUrl: h.fake.respondUrl(`k${++n}`) });
      const answer = await sendSigned(h.eventsUrl, interactionBody(payload), { secret: SECRET, signing: 'good' });
      expect(answer.status).toBe(200);
      // A modal button opens nothing either: the dialog would act on a session of another channel.
      expect(answers(answer, before).length, `${String(b.element.action_id)} from ${elsewhere}`).toBeGreaterThan(0);
    }
    expect(await spare().session()).toMatchObject({ state: session.state, version: session.version });
  });

  it('item 13: a signed JSON-bodied slash command gets a clear answer or a 4xx, never a 5xx, ":boom:" or a crash', async () => {
    const texts = fc.sample(fc.constantFrom('status', 'abort', 'start orders', 'help'), { numRuns: 8, seed: SEED });
    for (const text of texts) {
      const body = JSON.stringify(Object.fromEntries(new URLSearchParams(command(text))));
      const answer = await sendSigned(h.eventsUrl, body, { secret: SECRET, signing: 'good', contentType: 'application/json' });
      expect(answer.status, text).toBeLessThan(500);
      if (answer.status === 200 && answer.body) expect(unhelpful(parseAck(answer.body).text), answer.body).toBeUndefined();
    }
    // Whether such a command acts is for the signature to decide (it is signed); it must not crash.
    expect(crashes).toEqual([]);
  });
});
