/**
 * Slack unreachable at start-up: one clear line naming Slack and what to check, exit code 1, no
 * unhandled rejection and no stack trace (hostile testing found a 40-line WebAPIRequestError). The
 * in-process start refuses before it opens the store or listens; the built process exits.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBot } from '../src/composition-root.js';
import { loadEnv } from '../src/config/env.js';
import { parseProfiles } from '../src/config/profiles.js';
import { createLogger } from '../src/log.js';
import { startBotProcess, type BotProcess } from './support/bot-process.js';
import { startFakeSlack } from './support/fake-slack.js';
import { freePort } from './support/free-port.js';

const profilesYaml = `profiles:
  orders:
    channels: [C0STARTUP]
    strategy: connection-parameters
    source: { host: 127.0.0.1, database: orders, user: migrator, password: "\${PW}" }
    digitalocean: { clusterUuid: 9cc10173-e9ea-4176-9dbc-a4cee4c4ff30, database: orders }
    proxy: { kind: none }
    freeze: { method: read-only-roles, appRoles: [orders_app] }
    gates: { operators: [U0ALICE] }
`;

let dir: string;
let deadSlack: string;
const running: BotProcess[] = [];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgcutover-startup-'));
  writeFileSync(join(dir, 'pgcutover.yml'), profilesYaml);
  // A port nobody listens on: connection refused, as when Slack cannot be reached.
  deadSlack = `http://127.0.0.1:${await freePort()}/api/`;
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((bot) => bot.stop('SIGKILL')));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const baseEnv = () => ({
  SLACK_BOT_TOKEN: 'xoxb-startup-test-token',
  SLACK_SIGNING_SECRET: 'startup-signing-secret',
  SLACK_API_URL: deadSlack,
  DIGITALOCEAN_TOKEN: 'do-startup-token',
  DATA_DIR: join(dir, 'data'),
  PGCUTOVER_CONFIG: join(dir, 'pgcutover.yml'),
  PW: 'not-a-real-password',
});

/** What startBot refuses with, given the environment (an error saying it started, if it did). */
async function startRefusal(environment: Record<string, string>): Promise<Error> {
  const env = loadEnv({ ...environment, PORT: '0', LOG_LEVEL: 'silent' });
  const config = parseProfiles(profilesYaml, 'pgcutover.yml', { PW: 'not-a-real-password' });
  return startBot(env, config, createLogger('silent'), { reports: false }).then(
    async (bot) => {
      await bot.stop();
      return new Error('the bot started');
    },
    (error: unknown) => error as Error,
  );
}

describe('Slack unreachable at start-up', () => {
  it('startBot refuses with one line naming Slack, before it listens', async () => {
    const outcome = await startRefusal(baseEnv());
    expect(outcome.message).toBe(`cannot reach Slack at ${deadSlack} (fetch failed); check the network and SLACK_API_URL`);
  }, 120_000);

  it('the process prints one clear line and exits 1', async () => {
    // At LOG_LEVEL=warn a clean failure prints nothing but its line: no warning per attempt, no stack.
    const bot = startBotProcess({ ...baseEnv(), LOG_LEVEL: 'warn', PORT: String(await freePort()) });
    running.push(bot);
    expect(await bot.exited).toBe(1);
    const lines = bot.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(`pgcutover: failed to start: cannot reach Slack at ${deadSlack} (fetch failed); check the network and SLACK_API_URL`);
    expect(bot.output()).not.toContain('xoxb-startup-test-token');
  }, 120_000);
});

describe('Socket Mode at start-up', () => {
  it('a refused app-level token is one line naming SLACK_APP_TOKEN, not a warning per retry', async () => {
    const slack = await startFakeSlack();
    try {
      slack.failNext('apps.connections.open', 1, { error: 'invalid_auth' });
      const { SLACK_SIGNING_SECRET: _unused, ...httpEnv } = baseEnv();
      const outcome = await startRefusal({ ...httpEnv, SLACK_API_URL: slack.apiUrl, SLACK_APP_TOKEN: 'xapp-refused-token' });
      expect(outcome.message).toBe('Slack refused the app-level token (invalid_auth); check SLACK_APP_TOKEN (an app-level token with connections:write)');
      expect(slack.callsTo('apps.connections.open')).toHaveLength(1);
    } finally {
      await slack.close();
    }
  }, 120_000);
});
