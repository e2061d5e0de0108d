/**
 * Starts the real bot (startBot: Bolt over HTTP on 127.0.0.1:0, the store, the listeners) against a
 * local fake Slack Web API, with the honest fake engine and a fake clock, and drives it with signed
 * requests of real shapes. Each test works in its own channel so one bot serves a whole file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { startBot, type RunningBot } from '../../src/composition-root.js';
import { loadEnv } from '../../src/config/env.js';
import { parseProfiles } from '../../src/config/profiles.js';
import type { Session } from '../../src/domain/session.js';
import { createLogger } from '../../src/log.js';
import { AuditLog } from '../../src/adapters/store/audit-log.js';
import { openEmbedded } from '../../src/adapters/store/database.js';
import type { Store } from '../../src/adapters/store/index.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import { FakeOperations } from '../support/fake-operations.js';
import { startFakeSlack, type FakeMessage, type FakeSlack } from '../support/fake-slack.js';
import {
  blockActionsPayload,
  interactionBody,
  postSigned,
  slashCommandBody,
  viewSubmissionPayload,
  type SlackResponse,
} from '../support/slack-requests.js';

export const SECRET = 'test-signing-secret';
export const ALICE = 'U0ALICE'; // operator and approver
export const BOB = 'U0BOB'; // operator through the user group S0DBAS
export const CAROL = 'U0CAROL'; // approver
export const MALLORY = 'U0MALLORY'; // nobody
export const CHANNELS = Array.from({ length: 12 }, (_, i) => `C0MIG${String(i).padStart(2, '0')}`);
export const SOLO_CHANNEL = 'C0SOLO01';
export const OTHER_CHANNEL = 'C0OTHER1';

const PROFILES = `
profiles:
  orders:
    description: Orders database behind PgBouncer
    channels: [${CHANNELS.join(', ')}]
    strategy: proxy
    source: { host: 10.0.0.5, database: orders, user: migrator, password: "\${TEST_PW}" }
    digitalocean: { clusterUuid: 9cc10173-e9ea-4176-9dbc-a4cee4c4ff30, database: orders_prod }
    proxy:
      kind: pgbouncer
      admin: { host: 10.0.0.9, user: pgcutover, password: "\${TEST_PW}" }
      database: orders
      databasesFile: /etc/pgbouncer/databases.ini
    freeze: { budgetSeconds: 30 }
    gates:
      operators: [${ALICE}, S0DBAS]
      approvers: [${CAROL}, ${ALICE}]
      twoPersonRule: true
      flow: step-by-step
      approvalExpiryMinutes: 15
  solo:
    channels: [${SOLO_CHANNEL}]
    strategy: connection-parameters
    source: { host: 10.0.0.6, database: catalog, user: migrator, password: "\${TEST_PW}" }
    digitalocean: { clusterUuid: 5f1d3c2e-7a8b-4c9d-8e0f-1a2b3c4d5e6f, database: catalog }
    proxy: { kind: none }
    freeze: { method: read-only-roles, appRoles: [catalog_app] }
    gates: { operators: [${ALICE}], approvers: [${ALICE}], twoPersonRule: false, flow: step-by-step }
  catalog:
    channels: [${OTHER_CHANNEL}]
    strategy: connection-parameters
    source: { host: 10.0.0.7, database: catalog, user: migrator, password: "\${TEST_PW}" }
    digitalocean: { clusterUuid: 5f1d3c2e-7a8b-4c9d-8e0f-1a2b3c4d5e6f, database: catalog }
    proxy: { kind: none }
    freeze: { method: read-only-roles, appRoles: [catalog_app] }
    gates: { operators: [${ALICE}], approvers: [${CAROL}], flow: step-by-step }
`;

export class FakeClock {
  current = new Date();
  now = () => new Date(this.current.getTime());
  advanceMinutes(minutes: number): void {
    this.current = new Date(this.current.getTime() + minutes * 60_000);
  }
}

export interface Harness {
  bot: RunningBot;
  fake: FakeSlack;
  ops: FakeOperations;
  clock: FakeClock;
  eventsUrl: string;
  channel(id: string): ChannelDriver;
  close(): Promise<void>;
}

export interface ChannelDriver {
  id: string;
  command(user: string, text: string, options?: { retryNum?: number }): Promise<SlackResponse & { ack: string }>;
  /** The live status message (the only top-level message in the channel). */
  status(): FakeMessage;
  buttons(message?: FakeMessage): string[];
  /** Clicks a button the bot rendered (on `message`, default the current status message). */
  click(user: string, action: string, options?: { message?: FakeMessage; retryNum?: number }): Promise<SlackResponse>;
  /** Submits the last modal the bot opened. */
  submitModal(user: string, typed: string, options?: { retryNum?: number }): Promise<SlackResponse>;
  session(): Promise<Session>;
  threadTexts(): string[];
  /** A deep copy of the status message as it is now (to click it later, when it is stale). */
  snapshot(): FakeMessage;
}

export interface HarnessOptions {
  /** A real PostgreSQL store through the production path (openStore with DATABASE_URL). */
  databaseUrl?: string;
  /** More environment variables (e.g. HOST). */
  env?: Record<string, string>;
}

/** The embedded engine in memory, migrated: what DATA_DIR gives in production, without the disk. */
async function memoryStore(): Promise<Store> {
  const db = await openEmbedded(undefined);
  await migrate(db);
  return { db, sessions: new SessionStore(db), audit: new AuditLog(db) };
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const fake = await startFakeSlack();
  fake.userGroups.set('S0DBAS', [BOB]);
  const dataDir = mkdtempSync(join(tmpdir(), 'pgcutover-slack-'));
  const env = loadEnv({
    SLACK_BOT_TOKEN: 'xoxb-test-token',
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: fake.apiUrl,
    PORT: '0',
    DIGITALOCEAN_TOKEN: 'do-test-token',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
    ...options.env,
  });
  const config = parseProfiles(PROFILES, 'test-profiles.yml', { TEST_PW: 'not-a-real-password' });
  const clock = new FakeClock();
  let ops: FakeOperations | undefined;
  const bot = await startBot(env, config, createLogger('silent'), {
    operations: ({ store, approvals, facts, now }) => (ops = new FakeOperations(store, approvals, facts, now)),
    // Fake machines and a fake clock: the lag reporter would measure unreachable hosts on real time.
    reports: false,
    now: clock.now,
    processBeforeResponse: true,
    botIdentity: { botId: 'B_BOT', botUserId: 'U_BOT' },
    ...(options.databaseUrl ? {} : { store: await memoryStore() }),
  });
  if (!ops) throw new Error('operations factory not called');
  const eventsUrl = `http://127.0.0.1:${bot.port}/slack/events`;
  const fakeOps = ops;

  const channel = (id: string): ChannelDriver => {
    const status = () => {
      const top = fake.topLevel(id);
      expect(top, `one status message in ${id}`).toHaveLength(1);
      return top[0] as FakeMessage;
    };
    const buttons = (message?: FakeMessage) =>
      (message ?? status()).blocks
        .filter((b) => b.type === 'actions')
        .flatMap((b) => (b.elements as Array<{ action_id: string }>).map((e) => e.action_id.replace(/^pgc\./, '')));
    return {
      id,
      async command(user, text, opts = {}) {
        const body = slashCommandBody({ text, userId: user, channelId: id, responseUrl: fake.respondUrl() });
        const response = await postSigned(eventsUrl, body, { secret: SECRET, ...(opts.retryNum !== undefined ? { retryNum: opts.retryNum } : {}) });
        let ack = '';
        try {
          ack = String((response.json() as { text?: string }).text ?? '');
        } catch {
          ack = response.text;
        }
        return { ...response, ack };
      },
      status,
      buttons,
      async click(user, action, opts = {}) {
        const message = opts.message ?? status();
        const block = message.blocks.find((b) => b.type === 'actions');
        const button = (block?.elements as Array<Record<string, unknown>> | undefined)?.find((e) => e.action_id === `pgc.${action}`);
        expect(button, `button ${action} on the message (has: ${buttons(message).join(', ')})`).toBeDefined();
        const payload = blockActionsPayload({
          userId: user,
          channelId: id,
          messageTs: message.ts,
          button: button as Record<string, unknown>,
          responseUrl: fake.respondUrl(),
          messageBlocks: message.blocks,
        });
        return postSigned(eventsUrl, interactionBody(payload), { secret: SECRET, ...(opts.retryNum !== undefined ? { retryNum: opts.retryNum } : {}) });
      },
      async submitModal(user, typed, opts = {}) {
        const opened = fake.callsTo('views.open').at(-1);
        expect(opened, 'a modal was opened').toBeDefined();
        const view = opened!.body.view as Record<string, unknown>;
        const payload = viewSubmissionPayload({
          userId: user,
          view,
          values: { db_name: { typed: { type: 'plain_text_input', value: typed } } },
        });
        return postSigned(eventsUrl, interactionBody(payload), { secret: SECRET, ...(opts.retryNum !== undefined ? { retryNum: opts.retryNum } : {}) });
      },
      async session() {
        const sessions = await bot.store.sessions.listForChannel(id, 5);
        const real = sessions.find((s) => s.statusMessageTs !== null) ?? sessions[0];
        expect(real, `a session in ${id}`).toBeDefined();
        return real as Session;
      },
      threadTexts() {
        return fake.thread(status().ts).map((m) => m.text);
      },
      snapshot() {
        return structuredClone(status());
      },
    };
  };

  return {
    bot,
    fake,
    ops: fakeOps,
    clock,
    eventsUrl,
    channel,
    async close() {
      await bot.stop();
      await fake.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
