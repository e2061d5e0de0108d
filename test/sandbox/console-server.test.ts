/**
 * The console server's own guards, without a bot: it answers only loopback host names (no DNS
 * rebinding), takes actions only as JSON (no cross-site form posts), and refuses malformed input
 * before anything is signed and sent.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConsole, type ConsoleServer } from '../../src/sandbox/console-server.js';
import { startFakeSlack, type FakeSlack } from '../../src/sandbox/fake-slack.js';
import { SANDBOX_CHANNEL, SANDBOX_PEOPLE } from '../../src/sandbox/sandbox-profile.js';

describe('the sandbox console server', () => {
  let slack: FakeSlack;
  let server: ConsoleServer;
  const load = { perSecondTarget: 1, via: 'nothing', totals: { source: 0, target: 0, other: 0, errors: 0 }, lastError: null, seconds: [], lag: { bytes: null, seconds: null, reason: 'none' } };

  beforeAll(async () => {
    slack = await startFakeSlack();
    // Nothing listens on the events URL: a request that got past the guards would fail with 500.
    server = await startConsole({ slack, eventsUrl: 'http://127.0.0.1:9/slack/events', signingSecret: 'secret', channel: SANDBOX_CHANNEL, people: SANDBOX_PEOPLE, port: 0, about: [], load: () => load });
  });
  afterAll(async () => {
    await server?.close();
    await slack?.close();
  });

  const post = (body: string, contentType = 'application/json') =>
    fetch(new URL('api/command', server.url), { method: 'POST', headers: { 'content-type': contentType }, body });

  it('serves the page and the channel state on its loopback address', async () => {
    expect((await fetch(server.url)).headers.get('content-type')).toContain('text/html');
    expect(await (await fetch(new URL('api/state', server.url))).json()).toMatchObject({ channel: SANDBOX_CHANNEL, timeline: [], modals: [] });
  });

  it('refuses another host name, a form post and malformed commands', async () => {
    const { port } = new URL(server.url);
    const status = await new Promise<number | undefined>((resolve, reject) =>
      request({ host: '127.0.0.1', port, path: '/api/state', headers: { host: `attacker.example:${port}` } }, (res) => resolve(res.statusCode))
        .on('error', reject)
        .end(),
    );
    expect(status).toBe(421);
    expect((await post('user=U0ALICE&text=start', 'application/x-www-form-urlencoded')).status).toBe(415);
    expect((await post('{not json')).status).toBe(400);
    expect((await post(JSON.stringify({ user: 'mallory', text: 'start demo' }))).status).toBe(400);
    expect((await post(JSON.stringify({ user: 'U0ALICE', text: 'x'.repeat(501) }))).status).toBe(400);
    expect(slack.calls).toEqual([]);
  });
});
