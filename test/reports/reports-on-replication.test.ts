/**
 * Reports and alerts end to end on real replication: two rig clusters with a real subscription made
 * by the DigitalOcean simulator, write load on the source, the production observer (SlotLagProbe on
 * the migration slot, WAL position, DO status through the real HTTP client), the Slack adapter on a
 * real @slack/web-api WebClient against a local fake Slack API, and the scheduler under a fake clock
 * (one minute per step). Replication is held (subscription disabled) while the load runs, so the lag
 * rises; then it is released and the lag falls.
 */
import { webApi } from '@slack/bolt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalOceanClient } from '../../src/adapters/digitalocean/digitalocean-client.js';
import { startAndConfirm } from '../../src/adapters/digitalocean/start-migration.js';
import { pool } from '../../src/adapters/source/connect.js';
import { SlotLagProbe } from '../../src/adapters/source/lag-probe.js';
import { ReportScheduler, type TickSummary } from '../../src/reports/scheduler.js';
import { SlackReportPoster } from '../../src/adapters/slack/report-poster.js';
import { SourceObserver, type ObservedProfile } from '../../src/adapters/source/session-observer.js';
import { SourceRegistry, type SourceProfile } from '../../src/adapters/source/source-registry.js';
import { Secret } from '../../src/secret.js';
import { startDoSimulator, type DoSimulator } from '../../src/simulator/digitalocean/index.js';
import { openEmbedded, type Database } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { ReportStateStore } from '../../src/adapters/store/report-state.js';
import { ReportTickStore } from '../../src/adapters/store/report-ticks.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import { captureLogger } from '../support/capture-log.js';
import type { Cluster } from '../support/pg-cluster.js';
import { startFakeSlack, type FakeSlack, type SlackCall } from '../support/report-fake-slack.js';
import { startWriteLoad } from '../support/write-load.js';
import { migrationRequest, startReplicationPair } from '../support/replication-pair.js';
import { until } from '../support/wait.js';

const TOKEN = 'dop_v1_reports_token_0123456789abcdef';
const SLACK_TOKEN = 'xoxb-reports-test-token';
const CLUSTER = '5d0c1e7a-2b7f-4f3e-9a0d-6c1f2e3d4b5a';
const STATUS_TS = '1700000000.000100';
const MB = 1024 * 1024;
const PACE_MS = 250;
/** A whole hour a day ahead of the real clock (the session is created now). */
const T0 = Math.ceil(Date.now() / 3_600_000) * 3_600_000 + 24 * 3_600_000;

describe('periodic reports on real replication under write load', () => {
  let source: Cluster;
  let target: Cluster;
  let sim: DoSimulator;
  let slack: FakeSlack;
  let db: Database;
  let sources: SourceRegistry;
  let observer: SourceObserver;
  let scheduler: ReportScheduler;
  let slot = '';
  let subscription = '';
  let sourcePool: pg.Pool;
  const clock = { t: new Date(T0), now() { return this.t; } };
  const { logger, output } = captureLogger('debug');
  const summaries: TickSummary[] = [];

  /** One step of the fake clock: a minute later, then a scheduler pass. */
  const step = async (minute: number) => {
    clock.t = new Date(T0 + minute * 60_000);
    summaries.push(await scheduler.tick(clock.t));
  };
  const posts = () => slack.calls.filter((c) => c.method === 'chat.postMessage' && c.status === 200);
  const reports = () => posts().filter((c) => c.fields.thread_ts === STATUS_TS && c.fields.reply_broadcast === undefined);
  const alerts = () => posts().filter((c) => c.fields.reply_broadcast === 'true');

  beforeAll(async () => {
    [source, target] = await startReplicationPair();
    await source.query('CREATE TABLE orders (id bigserial PRIMARY KEY, note text NOT NULL)', [], 'orders');
    sim = await startDoSimulator({
      token: new Secret(TOKEN),
      logger,
      clusters: {
        [CLUSTER]: {
          connection: { host: target.host, port: target.port, user: target.user, password: new Secret(target.password), database: 'defaultdb' },
        },
      },
    });
    const doClient = new DigitalOceanClient({ token: new Secret(TOKEN), baseUrl: sim.url, logger });
    const migration = await startAndConfirm(
      doClient,
      CLUSTER,
      migrationRequest(source),
      { pollIntervalMs: 100, watchMs: 20_000 },
    );
    slot = (await sim.migration(CLUSTER))?.slotName ?? '';
    subscription = (await sim.migration(CLUSTER))?.replicationName ?? '';
    expect(slot).not.toBe('');

    db = await openEmbedded(undefined);
    await migrate(db);
    const sessions = new SessionStore(db);
    const created = await sessions.create({ channelId: 'C0REPORTS', profile: 'orders', strategy: 'proxy', startedBy: 'U1' });
    const syncing = await sessions.transition(created.id, created.version, 'migration_started', { doMigrationId: migration.id });
    await sessions.setStatusMessage(syncing.id, STATUS_TS);

    const sourceTarget = { host: source.host, port: source.port, database: 'orders', user: source.user, password: new Secret(source.password) };
    sourcePool = pool(sourceTarget, { max: 1 });
    const profile: ObservedProfile & SourceProfile = {
      source: sourceTarget,
      reports: { schedule: 'every 2m', alerts: { lagBytes: MB, consecutiveSamples: 2, twoWeekLimitWarningHours: 1 } },
      gates: { operators: ['U0OPS', 'S0ONCALL'], maxLagBytesToFreeze: 256 * 1024 },
      // The named slot: while the subscription is disabled it is inactive, and `auto` would find none.
      replication: { slot },
      digitalocean: { clusterUuid: CLUSTER },
    };
    sources = new SourceRegistry({ profiles: new Map([['orders', profile]]), now: () => clock.now() });
    observer = new SourceObserver({
      sources,
      profiles: new Map([['orders', profile]]),
      digitalocean: doClient,
      log: logger,
      now: () => clock.now(),
    });
    slack = await startFakeSlack();
    const client = new webApi.WebClient(SLACK_TOKEN, {
      slackApiUrl: `${slack.url}/api/`,
      retryConfig: { retries: 2, factor: 1, minTimeout: 10, maxTimeout: 10 },
      logLevel: webApi.LogLevel.ERROR,
    });
    scheduler = new ReportScheduler({
      sessions,
      ticks: new ReportTickStore(db),
      state: new ReportStateStore(db),
      profiles: new Map([['orders', profile]]),
      observer,
      poster: new SlackReportPoster({ client, log: logger, minIntervalMs: PACE_MS }),
      log: logger,
      replicaId: 'it-1',
      clock,
      options: { sampleEverySeconds: 60, maxConcurrentSessions: 2 },
    });
  }, 120_000);

  afterAll(async () => {
    await scheduler?.stop();
    await sources?.close();
    await sourcePool?.end();
    await db?.close();
    await slack?.close();
    await sim?.stop();
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('posts reports in the thread showing rising then falling lag, and one lag alert that fires and clears once', async () => {
    const started = performance.now();
    // The Slack API rate-limits the very first post: the Web API client waits Retry-After and retries.
    slack.rateLimitNext(1, 1);
    await step(0);
    await step(1);

    // Hold replication and write: the slot's confirmed position stands still while WAL grows.
    await target.query(`ALTER SUBSCRIPTION ${pg.escapeIdentifier(subscription)} DISABLE`, [], 'orders');
    const load = await startWriteLoad(source.connectionString('orders'), { table: 'orders', rowsPerBatch: 2000 });
    const probe = new SlotLagProbe({ source: sourcePool, slot });
    // More than 64 KiB/s in fake time (a minute per step): the shared trend counts slower growth as steady.
    for (let minute = 2; minute <= 5; minute++) {
      const before = await probe.measure();
      await until('the lag to grow', async () => {
        const now = await probe.measure();
        return now.known && before.known && now.bytes > before.bytes + 8 * MB;
      });
      await step(minute);
    }
    const written = await load.stop();
    const peak = await probe.measure();

    // Release replication: the lag falls back under the threshold, then to zero.
    await target.query(`ALTER SUBSCRIPTION ${pg.escapeIdentifier(subscription)} ENABLE`, [], 'orders');
    await until('the lag to fall under 1 MB', async () => {
      const now = await probe.measure();
      return now.known && now.slotActive && now.bytes < MB;
    });
    for (let minute = 6; minute <= 8; minute++) await step(minute);
    const elapsed = performance.now() - started;

    expect(summaries.flatMap((s) => s.failures)).toEqual([]);
    // Reports: minutes 0, 2, 4, 6, 8 (every 2m), all replies in the session's thread.
    const reportCalls = reports();
    expect(reportCalls).toHaveLength(5);
    const texts = reportCalls.map((c) => c.fields.blocks ?? '');
    expect(texts[1]).toMatch(/rising/);
    expect(texts[2]).toMatch(/rising/);
    expect(texts[2]).toMatch(/Freeze gate:\* would be closed: lag [\d.]+ MiB is above 256 KiB/);
    expect(texts[3]).toMatch(/falling −[\d.]+ MiB since the last report/);
    expect(texts[2]).toMatch(/Writes on the source:\* [\d.]+ (KiB|MiB)\/s of WAL/);
    expect(JSON.parse(texts[2] ?? '[]')).toMatchObject([{ type: 'section' }, { type: 'context' }]);
    expect(reportCalls.every((c) => c.fields.channel === 'C0REPORTS')).toBe(true);

    // Alerts: broadcast from the thread to the channel; lag-high fires once (mentioning the operators) and clears once.
    const lagAlerts = alerts().filter((c) => (c.fields.text ?? '').includes('replication lag is high'));
    expect(lagAlerts).toHaveLength(2);
    expect(lagAlerts[0]?.fields.text).toMatch(/:rotating_light: \*orders\* replication lag is high: Lag is [\d.]+ MiB, above 1\.0 MiB \(2 samples in a row\)\. <@U0OPS> <!subteam\^S0ONCALL>/);
    expect(lagAlerts[1]?.fields.text).toMatch(/:white_check_mark: .*Cleared after \d+m \d+s: lag is back to/);
    expect(lagAlerts[1]?.fields.text).not.toContain('<@U0OPS>');
    const kinds = summaries.flatMap((s) => s.alerts.map((a) => `${a.kind}:${a.action}`));
    expect(kinds.filter((k) => k.startsWith('lag_high'))).toEqual(['lag_high:fire', 'lag_high:clear']);
    // The disabled subscription left the slot inactive for the same minutes: its own episode.
    expect(kinds.filter((k) => k.startsWith('slot_inactive'))).toEqual(['slot_inactive:fire', 'slot_inactive:clear']);

    // 429 handled: the first post was refused, retried after Retry-After, and went through once.
    const first = slack.calls.filter((c) => c.method === 'chat.postMessage').slice(0, 2);
    expect(first.map((c) => c.status)).toEqual([429, 200]);
    expect((first[1]?.at ?? 0) - (first[0]?.at ?? 0)).toBeGreaterThanOrEqual(950);
    // Per-channel pacing: no two posts to the channel closer than the configured gap.
    const gaps = posts()
      .slice(1)
      .map((c: SlackCall, i) => c.at - (posts()[i]?.at ?? 0));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(PACE_MS - 15);
    // The token and the database password never reach the logs.
    expect(output()).not.toContain(SLACK_TOKEN);
    expect(output()).not.toContain(source.password);
    console.info(
      `reports on replication: ${reportCalls.length} reports, ${alerts().length} alerts, peak lag ${peak.known ? peak.bytes : '?'} B under ${written} rows, ${elapsed.toFixed(0)} ms`,
    );
  });
});
