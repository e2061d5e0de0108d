/**
 * Reports degrade, they never stall the buttons: DigitalOcean's status is asked within a short budget
 * and not at all while its rate limit holds (every later session's report says "unknown" at once),
 * and Slack calls of reports go through their own Web API client, which fails a rate-limited call
 * instead of pausing a queue that a button's call would wait behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBoltApp, createReportsClient } from '../../src/adapters/slack/bolt-app.js';
import { StatusMessages } from '../../src/adapters/slack/status-message.js';
import { SourceObserver, type ObservedProfile } from '../../src/adapters/source/session-observer.js';
import { ApprovalStore, ReportScheduleStore } from '../../src/adapters/store/approvals.js';
import { AuditLog } from '../../src/adapters/store/audit-log.js';
import { openEmbedded } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import { loadEnv } from '../../src/config/env.js';
import { parseProfiles } from '../../src/config/profiles.js';
import type { LagSample } from '../../src/domain/ports/replication.js';
import type { Session } from '../../src/domain/session.js';
import { DoApiError, ErrorCode } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack.js';

const log = createLogger('silent');
const session = (id: string): Session => ({
  id,
  channelId: 'C0REPORTS',
  profile: 'orders',
  strategy: 'proxy',
  state: 'syncing',
  version: 2,
  doMigrationId: 'mig-1',
  startedBy: 'U0ALICE',
  statusMessageTs: null,
  createdAt: new Date(),
  updatedAt: new Date(),
});

function observer(getOnlineMigration: () => Promise<never>, now: () => Date) {
  const sample: LagSample = { known: false, at: now(), reason: 'no slot in this test' };
  return new SourceObserver({
    sources: {
      probe: () => ({ read: async () => ({ sample, walPosition: 1 }) }) as never,
      pool: () => ({ query: async () => ({ rows: [] }) }) as never,
    },
    profiles: new Map([['orders', { digitalocean: { clusterUuid: 'c0ffee00-0000-4000-8000-000000000000' } } as unknown as ObservedProfile]]),
    digitalocean: { getOnlineMigration },
    log,
    now,
    doBudgetMs: 50,
  });
}

describe('the report observer and DigitalOcean', () => {
  it("after a 429 with retry-after, no session's report asks DigitalOcean again until it has passed", async () => {
    let current = new Date('2026-12-07T12:00:00Z');
    let calls = 0;
    const observe = observer(async () => {
      calls++;
      throw new DoApiError(ErrorCode.DoRateLimited, 'rate limited', { status: 429, retryAfterMs: 490_000 });
    }, () => current);
    const first = await observe.observe(session('s-1'));
    expect(first.doView.known).toBe(false);
    for (let i = 2; i <= 100; i++) {
      const later = await observe.observe(session(`s-${i}`));
      expect(later.doView).toMatchObject({ known: false, reason: expect.stringContaining('rate limit') });
    }
    expect(calls).toBe(1);
    current = new Date(current.getTime() + 491_000);
    await observe.observe(session('s-after'));
    expect(calls).toBe(2);
  });

  it('a DigitalOcean call that never answers leaves the report with an unknown status, not waiting', async () => {
    const observe = observer(() => new Promise<never>(() => undefined), () => new Date());
    const result = await observe.observe(session('s-hang'));
    expect(result.doView).toMatchObject({ known: false, reason: expect.stringContaining('did not answer') });
  });
});

describe("reports' own Slack client", () => {
  let slack: FakeSlack;
  beforeAll(async () => {
    slack = await startFakeSlack();
  });
  afterAll(async () => {
    await slack.close();
  });

  it('a rate-limited report call fails at once, and a button call on the interactive client is answered meanwhile', async () => {
    const env = loadEnv({ SLACK_BOT_TOKEN: 'xoxb-isolation', SLACK_SIGNING_SECRET: 'secret', SLACK_API_URL: slack.apiUrl, DIGITALOCEAN_TOKEN: 'do-token', LOG_LEVEL: 'silent' });
    const reports = createReportsClient(env, log);
    const app = createBoltApp({ env, log, health: async () => ({ ok: true, detail: {} }), botIdentity: { botId: 'B_BOT', botUserId: 'U_BOT' } });
    // Slack asks for a minute's pause: the interactive client would hold every call for it.
    slack.failNext('chat.update', 1, { status: 429, retryAfterSeconds: 60 });
    const report = reports.chat.update({ channel: 'C0REPORTS', ts: '1.1', text: 'lag report' });
    await expect(report).rejects.toMatchObject({ code: 'slack_webapi_rate_limited_error' });
    const click = await app.client.chat.postEphemeral({ channel: 'C0REPORTS', user: 'U0ALICE', text: 'answer to a click' });
    expect(click.ok).toBe(true);
  });
});

describe('the status message redrawn by a report', () => {
  it("goes through the reports' client (rate limited: that redraw is skipped); a button's redraw through the interactive one", async () => {
    const db = await openEmbedded(undefined);
    try {
      await migrate(db);
      const sessions = new SessionStore(db);
      const created = await sessions.create({ channelId: 'C0REPORTS', profile: 'orders', strategy: 'connection-parameters', startedBy: 'U0ALICE' });
      const syncing = await sessions.transition(created.id, created.version, 'migration_started', { doMigrationId: 'mig-1' });
      await sessions.setStatusMessage(syncing.id, '1700000000.000001');
      const interactive: string[] = [];
      const reports: string[] = [];
      const lag: LagSample = { known: true, at: new Date(), slot: 'do_slot', slotActive: true, bytes: 4096, seconds: 1 };
      const status = new StatusMessages({
        client: {
          chat: {
            postMessage: async () => ({ ok: true, ts: '1700000000.000001' }),
            update: async (args: { ts: string }) => (interactive.push(args.ts), { ok: true }),
          },
        } as never,
        reportsClient: {
          chat: {
            update: async (args: { ts: string }) => {
              reports.push(args.ts);
              throw Object.assign(new Error('rate limited'), { code: 'slack_webapi_rate_limited_error', retryAfter: 60 });
            },
          },
        } as never,
        store: { db, sessions, audit: new AuditLog(db) },
        approvals: new ApprovalStore(db),
        schedules: new ReportScheduleStore(db),
        config: parseProfiles(
          `profiles:
  orders:
    channels: [C0REPORTS]
    strategy: connection-parameters
    source: { host: 127.0.0.1, database: orders, user: migrator, password: "\${PW}" }
    digitalocean: { clusterUuid: 9cc10173-e9ea-4176-9dbc-a4cee4c4ff30, database: orders }
    proxy: { kind: none }
    freeze: { method: read-only-database }
    gates: { operators: [U0ALICE] }
`,
          'isolation.yml',
          { PW: 'not-a-real-password' },
        ),
        log,
        now: () => new Date(),
        lag: async () => lag,
      });
      await status.refresh(syncing.id, { lag, lagTrend: 'steady', doView: { known: false, reason: 'rate limit' } });
      expect(reports).toHaveLength(1);
      expect(interactive).toHaveLength(0);
      await status.refresh(syncing.id);
      expect(interactive).toHaveLength(1);
    } finally {
      await db.close();
    }
  });
});
