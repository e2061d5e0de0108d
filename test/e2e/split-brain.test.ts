/**
 * The split-brain guard on the real rig, driven through signed Slack requests to the bot process:
 * an approve-first cutover behind PgBouncer (writes continuing through it onto the target), then a
 * client that bypasses the proxy writes on the old source. The first sample tick after that write
 * raises the alert in the thread naming the client's address, application name and user; legitimate
 * writes through PgBouncer raise none. After /migrate finish nothing of the watch is left on the
 * source (a slot left behind would retain WAL for ever).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WATCH_PREFIX } from '../../src/adapters/replication/split-brain-watch.js';
import { openPostgres, type Database } from '../../src/adapters/store/database.js';
import { ReportTickStore } from '../../src/adapters/store/report-ticks.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import type { Session } from '../../src/domain/session.js';
import { Secret } from '../../src/secret.js';
import { startDoSimulator, type DoSimulator } from '../../src/simulator/digitalocean/index.js';
import { startBotProcess, type BotProcess } from '../support/bot-process.js';
import { captureLogger } from '../support/capture-log.js';
import { DO_CLUSTER, DO_TOKEN, RIG_SCHEMA } from '../support/cutover-rig.js';
import { startWriter, type Writer } from '../support/cutover-writer.js';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack.js';
import { freePort } from '../support/free-port.js';
import type { Cluster } from '../support/pg-cluster.js';
import { PGBOUNCER_ADMIN_PASSWORD, startPgBouncer, type PgBouncer } from '../support/pgbouncer.js';
import { startReplicationPair } from '../support/replication-pair.js';
import { SlackPeople } from '../support/slack-people.js';
import { until } from '../support/wait.js';

const SIGNING_SECRET = 'split-brain-signing-secret-0123456789';
const SLACK_TOKEN = 'xoxb-split-brain-token-0123456789';
const ALICE = 'U0ALICE';
const BOB = 'U0BOB';
const CHANNEL = 'C0SPLITBRAIN';

describe('the split-brain guard on the real rig, through Slack', () => {
  const { logger } = captureLogger('info');
  let source: Cluster;
  let target: Cluster;
  let sim: DoSimulator;
  let bouncer: PgBouncer;
  let slack: FakeSlack;
  let dir: string;
  let storeDb: Database;
  let sessions: SessionStore;
  let bot: BotProcess | undefined;
  let writer: Writer | undefined;
  let rogue: pg.Client | undefined;

  const people = () => new SlackPeople({ slack, secret: SIGNING_SECRET, latest: async (channel) => (await sessions.listForChannel(channel, 1))[0] });
  const thread = () => people().thread(CHANNEL).map((m) => m.text);
  const waitState = (state: Session['state'], timeoutMs = 60_000) =>
    people().waitState(CHANNEL, state, timeoutMs, () => readFileSync(bouncer.logFile, 'utf8').slice(-4000));
  const watchSlots = async () =>
    (await source.query<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots WHERE starts_with(slot_name, $1)', [WATCH_PREFIX])).map((r) => r.slot_name);

  beforeAll(async () => {
    [source, target] = await startReplicationPair(['orders', 'store']);
    await source.query(RIG_SCHEMA, [], 'orders');
    sim = await startDoSimulator({
      token: new Secret(DO_TOKEN),
      logger,
      clusters: { [DO_CLUSTER]: { connection: { host: target.host, port: target.port, user: target.user, password: new Secret(target.password), database: 'defaultdb' } } },
    });
    bouncer = await startPgBouncer({
      databases: { orders: { host: source.host, port: source.port, dbname: 'orders' } },
      poolMode: 'transaction',
      settings: { query_wait_timeout: 120 },
    });
    slack = await startFakeSlack();
    dir = mkdtempSync(join(tmpdir(), 'pgcutover-split-brain-'));
    // Reports as often as they go (every minute); the alerts' sample tick is every minute too.
    writeFileSync(
      join(dir, 'pgcutover.yml'),
      `profiles:
  orders:
    channels: [${CHANNEL}]
    strategy: proxy
    source: { host: 127.0.0.1, port: ${source.port}, database: orders, user: ${source.user}, password: "\${ORDERS_SOURCE_PASSWORD}", sslmode: disable }
    digitalocean: { clusterUuid: ${DO_CLUSTER}, database: orders, disableSsl: true, ignoreDbs: [store, postgres] }
    replication: { fenceTimeoutSeconds: 60 }
    proxy:
      kind: pgbouncer
      admin: { host: 127.0.0.1, port: ${bouncer.port}, user: ${bouncer.adminUser}, password: "\${PGBOUNCER_ADMIN_PASSWORD}" }
      database: orders
      databasesFile: ${bouncer.databasesFile}
      pauseTimeoutSeconds: 60
    freeze: { budgetSeconds: 120 }
    gates: { operators: [${ALICE}, ${BOB}], approvers: [${BOB}], twoPersonRule: true }
    reports: { schedule: every 1m }
`,
    );
    storeDb = openPostgres(new Secret(source.connectionString('store')), logger);
    sessions = new SessionStore(storeDb);
  }, 120_000);

  afterAll(async () => {
    await rogue?.end().catch(() => undefined);
    await writer?.stop().catch(() => undefined);
    await bot?.stop('SIGKILL').catch(() => undefined);
    await storeDb?.close().catch(() => undefined);
    await slack?.close();
    await bouncer?.stop().catch(() => undefined);
    await sim?.stop().catch(() => undefined);
    await Promise.all([source?.stop(), target?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a direct write on the source after the switch raises the alert at the next tick; finish leaves no slot', async () => {
    const port = await freePort();
    bot = startBotProcess({
      SLACK_BOT_TOKEN: SLACK_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: slack.apiUrl,
      PORT: String(port),
      DIGITALOCEAN_TOKEN: DO_TOKEN,
      DIGITALOCEAN_API_URL: sim.url,
      DATABASE_URL: source.connectionString('store'),
      DATA_DIR: join(dir, 'data'),
      PGCUTOVER_CONFIG: join(dir, 'pgcutover.yml'),
      ORDERS_SOURCE_PASSWORD: source.password,
      PGBOUNCER_ADMIN_PASSWORD,
      LOG_LEVEL: 'info',
    });
    await bot.waitForHealth(port);
    const slackPeople = people();
    await slackPeople.command(port, CHANNEL, ALICE, 'start orders');
    const session = await waitState('syncing');
    writer = startWriter(bouncer.connectionString('orders'), { prefix: 'split-brain', workers: 2, maxDurationMs: 300_000 });
    await until('writes flowing', () => (writer!.acked.length > 20 ? true : undefined));

    // Approve first: Alice requests both gates, Bob approves the freeze, then the switch with the typed name.
    const clickAndWait = async (user: string, action: string) => {
      const before = (await sessions.require(session.id)).version;
      await slackPeople.click(port, CHANNEL, user, action);
      await until(`${action} done`, async () => ((await sessions.require(session.id)).version > before ? true : undefined));
    };
    await clickAndWait(ALICE, 'freeze_request');
    await clickAndWait(ALICE, 'switch_request');
    await clickAndWait(BOB, 'freeze_approve');
    const opened = slack.callsTo('views.open').length;
    await slackPeople.click(port, CHANNEL, BOB, 'switch_approve');
    await until('the confirmation modal', () => slack.callsTo('views.open').length > opened || undefined);
    await slackPeople.submitModal(port, BOB, slack.callsTo('views.open').at(-1)!.body.view as Record<string, unknown>, 'orders');
    await waitState('switched');
    // The switch started the watch: from here on every write on the source is seen.
    await until('the watch on the source', async () => ((await watchSlots()).length === 1 ? true : undefined), 60_000, () => thread().join('\n'));
    await until('writes continuing on the target', () => (writer!.acked.some((a) => a.port === target.port) ? true : undefined), 60_000);

    // A client that bypasses PgBouncer writes on the old source, and stays connected.
    rogue = new pg.Client({ connectionString: source.connectionString('orders'), application_name: 'rogue-client' });
    await rogue.connect();
    // The rig runs with synchronous_commit off; the watch sees what the source has flushed.
    await rogue.query('SET synchronous_commit = on');
    await rogue.query("INSERT INTO writes (id, port) VALUES ('rogue-1', inet_server_port())");
    await rogue.query("INSERT INTO writes (id, port) VALUES ('rogue-2', inet_server_port()), ('rogue-3', inet_server_port())");
    const writtenAt = Date.now();

    // Within one tick: no sample tick of the session completes after the write without the alert in
    // the thread (the scheduler posts before it completes the tick).
    const ticks = new ReportTickStore(storeDb);
    const isAlert = (text: string) => text.includes('writes on the source after the switch');
    const alert = await until(
      'the split-brain alert in the thread',
      async () => {
        const tick = (await ticks.lastTicks('sample', [session.id])).get(session.id);
        const found = thread().find(isAlert);
        if (!found && tick?.doneAt && tick.lastTick.getTime() > writtenAt) {
          throw new Error(`the sample tick of ${tick.lastTick.toISOString()} came after the write without the alert:\n${thread().join('\n')}`);
        }
        return found;
      },
      180_000,
      () => thread().join('\n'),
    );
    expect(alert).toContain('2 transactions (3 changes) to public.writes');
    expect(alert).toContain(`127.0.0.1, application "rogue-client", user ${source.user}`);
    // Broadcast to the channel, mentioning the operators.
    expect(alert).toContain(`<@${ALICE}>`);
    // The writes through PgBouncer (on the target) raised nothing.
    expect(thread().filter(isAlert)).toHaveLength(1);

    const load = writer;
    writer = undefined;
    await load.stop();
    expect(load.errors).toEqual([]);
    await rogue.end();
    rogue = undefined;

    await slackPeople.command(port, CHANNEL, ALICE, 'finish');
    await waitState('finished');
    await until('no watch slot left on the source', async () => ((await watchSlots()).length === 0 ? true : undefined), 60_000);
    const ours = await source.query<{ slot_name: string }>("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'pgcutover%'");
    expect(ours).toEqual([]);
    await bot.stop();
    bot = undefined;
  }, 420_000);
});
