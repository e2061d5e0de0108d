/**
 * The bot as an operator runs it: `node dist/main.js` with an environment and a profiles file.
 * Start-up with an embedded store, /healthz, graceful SIGTERM, sessions surviving a restart, and
 * exit code 2 with a precise message for a broken configuration.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openEmbedded } from '../src/adapters/store/database.js';
import { migrate } from '../src/adapters/store/migrate.js';
import { SessionStore } from '../src/adapters/store/session-store.js';
import { startBotProcess as spawnBot, type BotProcess } from './support/bot-process.js';
import { startFakeSlack, type FakeSlack } from './support/fake-slack.js';
import { freePort } from './support/free-port.js';
import { postSigned, slashCommandBody } from './support/slack-requests.js';

const SIGNING_SECRET = 'main-test-signing-secret';
const CHANNEL = 'C0MAINTEST';
const profilesYaml = `profiles:
  orders:
    channels: [${CHANNEL}]
    strategy: proxy
    source:
      host: 127.0.0.1
      database: orders
      user: migrator
      password: \${ORDERS_SOURCE_PASSWORD}
    digitalocean:
      clusterUuid: 9cc10173-e9ea-4176-9dbc-a4cee4c4ff30
      database: orders
    proxy:
      kind: pgbouncer
      admin:
        host: 127.0.0.1
        user: pgcutover
      database: orders
      databasesFile: /tmp/databases.ini
    gates:
      operators: [U0ALICE]
`;

let dir: string;
let slack: FakeSlack;
const baseEnv = () => ({
  SLACK_BOT_TOKEN: 'xoxb-main-test-token',
  SLACK_SIGNING_SECRET: SIGNING_SECRET,
  SLACK_API_URL: slack.apiUrl,
  DIGITALOCEAN_TOKEN: 'dop_v1_main_test_token',
  DIGITALOCEAN_API_URL: 'http://127.0.0.1:9',
  DATA_DIR: join(dir, 'data'),
  PGCUTOVER_CONFIG: join(dir, 'pgcutover.yml'),
  ORDERS_SOURCE_PASSWORD: 'orders-source-password-value',
  LOG_LEVEL: 'info',
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgcutover-main-'));
  writeFileSync(join(dir, 'pgcutover.yml'), profilesYaml);
  slack = await startFakeSlack();
});
/** Every bot a test starts is killed after it, passed or failed: nothing outlives the test. */
const running: BotProcess[] = [];
const startBotProcess = (env: Record<string, string>): BotProcess => {
  const bot = spawnBot(env);
  running.push(bot);
  return bot;
};
afterEach(async () => {
  await Promise.all(running.splice(0).map((bot) => bot.stop('SIGKILL')));
});
afterAll(async () => {
  await slack?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the bot process', () => {
  it('starts on an embedded store, answers /healthz, and keeps sessions across a restart', async () => {
    const port = await freePort();
    const first = startBotProcess({ ...baseEnv(), PORT: String(port) });
    expect(await first.waitForHealth(port)).toEqual({ status: 'ok', store: 'embedded', profiles: 1 });
    expect(await first.stop('SIGTERM')).toBe(0);
    expect(first.output()).toContain('shutting down');

    // Between runs, a session is recorded in the store the first run created under DATA_DIR.
    const db = await openEmbedded(join(dir, 'data', 'store'));
    expect(await migrate(db)).toEqual([]);
    const sessions = new SessionStore(db);
    const created = await sessions.create({
      channelId: CHANNEL,
      profile: 'orders',
      strategy: 'proxy',
      startedBy: 'U0ALICE',
    });
    // Syncing: a `created` session without a migration id is a start that died, which a start continues.
    const session = await sessions.transition(created.id, created.version, 'migration_started', { doMigrationId: 'mig-main-test' });
    await db.close();

    const second = startBotProcess({ ...baseEnv(), PORT: String(port) });
    try {
      await second.waitForHealth(port);
      const body = slashCommandBody({ text: 'start orders', userId: 'U0ALICE', channelId: CHANNEL, responseUrl: slack.respondUrl() });
      const response = await postSigned(`http://127.0.0.1:${port}/slack/events`, body, { secret: SIGNING_SECRET });
      expect(response.status).toBe(200);
      // The restarted bot knows the channel's session: a second start is refused.
      await expect.poll(() => JSON.stringify(slack.responds.map((r) => r.body))).toContain(
        'already has an active session (`orders`, syncing)',
      );
    } finally {
      await second.stop('SIGTERM');
    }
    // No secret reaches the logs.
    const logs = first.output() + second.output();
    for (const secret of ['xoxb-main-test-token', SIGNING_SECRET, 'dop_v1_main_test_token', 'orders-source-password-value']) {
      expect(logs).not.toContain(secret);
    }
    expect(session.state).toBe('syncing');
  }, 300_000); // two start-ups, each bounded by waitForHealth's generous limit

  it('exits 2 naming the file, key path and line of a broken config, without echoing secrets', async () => {
    const broken = join(dir, 'broken.yml');
    writeFileSync(broken, profilesYaml.replace('${ORDERS_SOURCE_PASSWORD}', 'literal-password-value'));
    const bot = startBotProcess({ ...baseEnv(), PGCUTOVER_CONFIG: broken, PORT: String(await freePort()) });
    expect(await bot.exited).toBe(2);
    expect(bot.output()).toContain(`Config file ${broken} is invalid`);
    expect(bot.output()).toContain('profiles.orders.source.password (line 9)');
    expect(bot.output()).not.toContain('literal-password-value');
  });

  it('exits 2 naming the file of a YAML alias bomb', async () => {
    const bomb = join(dir, 'bomb.yml');
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(i === 1 ? '*a' : `*a${i - 1}`).join(', ')}]`);
    writeFileSync(bomb, `${lines.join('\n')}\n${profilesYaml}`);
    const bot = startBotProcess({ ...baseEnv(), PGCUTOVER_CONFIG: bomb, PORT: String(await freePort()) });
    expect(await bot.exited).toBe(2);
    expect(bot.output()).toContain(`Config file ${bomb} is not usable YAML`);
    expect(bot.output()).not.toContain('failed to start');
  });

  it('exits 2 naming a malformed DATABASE_URL, without echoing it', async () => {
    const bot = startBotProcess({ ...baseEnv(), DATABASE_URL: 'pgcutover-store-password@db', PORT: String(await freePort()) });
    expect(await bot.exited).toBe(2);
    expect(bot.output()).toContain('DATABASE_URL: must be a PostgreSQL URL');
    expect(bot.output()).not.toContain('pgcutover-store-password');
  });

  it('refuses a second process on the same embedded store with exit 2; a SIGKILLed holder does not block a restart', async () => {
    const env = { ...baseEnv(), DATA_DIR: join(dir, 'single-process') };
    const port = await freePort();
    const first = startBotProcess({ ...env, PORT: String(port) });
    await first.waitForHealth(port);
    const second = startBotProcess({ ...env, PORT: String(await freePort()) });
    expect(await second.exited).toBe(2);
    expect(second.output()).toContain(`The embedded store ${join(env.DATA_DIR, 'store')} (DATA_DIR) is in use by process ${first.child.pid}`);
    expect(await first.stop('SIGKILL')).toBe('SIGKILL');
    // The lock names a dead pid now: the restart takes it over.
    const thirdPort = await freePort();
    const third = startBotProcess({ ...env, PORT: String(thirdPort) });
    expect(await third.waitForHealth(thirdPort)).toMatchObject({ status: 'ok', store: 'embedded' });
    expect(await third.stop('SIGTERM')).toBe(0);
  }, 300_000); // two start-ups, each bounded by waitForHealth's generous limit

  it('exits 2 naming a missing environment variable', async () => {
    const { DIGITALOCEAN_TOKEN: _missing, ...env } = baseEnv();
    const bot = startBotProcess({ ...env, PORT: String(await freePort()) });
    expect(await bot.exited).toBe(2);
    expect(bot.output()).toContain('DIGITALOCEAN_TOKEN: is required');
  });

  it('with nothing set, names every missing variable and the missing profiles file at once', async () => {
    const missing = join(dir, 'missing.yml');
    const bot = startBotProcess({ PGCUTOVER_CONFIG: missing });
    expect(await bot.exited).toBe(2);
    const lines = bot.output().trim().split('\n');
    expect(lines.filter((line) => / {2}(SLACK_BOT_TOKEN|SLACK_SIGNING_SECRET|DIGITALOCEAN_TOKEN): is required/.test(line))).toHaveLength(3);
    expect(lines.at(-1)).toBe(`pgcutover: Config file ${missing}: file not found; copy pgcutover.example.yml there and edit it, or set PGCUTOVER_CONFIG to your profiles file`);
    expect(bot.output()).not.toMatch(/\n\s+at /); // no stack trace
  });
});
