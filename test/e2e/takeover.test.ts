/**
 * A dead freeze holder, with the built bot as real processes on one PostgreSQL store, a real PgBouncer
 * in front of the source, the DO simulator and a fake Slack, while a client writes through PgBouncer:
 *
 *   1. Two replicas: the one holding the freeze is SIGKILLed; the survivor resumes writes on the
 *      source before the freeze budget ends (its lock went with the dead process's connection).
 *   2. One replica: SIGKILLed while frozen, then restarted: writes are resumed before it answers
 *      /healthz (recovery runs before the slower start-up).
 *
 * Either way the held writes complete and nothing acknowledged is lost.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CutoverJournal } from '../../src/adapters/store/cutover-journal.js';
import { openPostgres, type Database } from '../../src/adapters/store/database.js';
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
import { RIG_PASSWORD, type Cluster } from '../support/pg-cluster.js';
import { PGBOUNCER_ADMIN_PASSWORD, startPgBouncer, type PgBouncer } from '../support/pgbouncer.js';
import { startReplicationPair } from '../support/replication-pair.js';
import { SlackPeople } from '../support/slack-people.js';
import { sleep, until } from '../support/wait.js';

const SIGNING_SECRET = 'takeover-signing-secret-0123456789';
const SLACK_TOKEN = 'xoxb-takeover-bot-token-0123456789';
const ALICE = 'U0ALICE';
const BOB = 'U0BOB';
const CHANNEL = 'C0TAKEOVER';
/** Long enough for a slow machine to start a process within it, short enough to matter. */
const BUDGET_SECONDS = 20;


describe('a dead freeze holder: writes resume without it', () => {
  const { logger } = captureLogger('info');
  let source: Cluster;
  let target: Cluster;
  let sim: DoSimulator;
  let bouncer: PgBouncer;
  let slack: FakeSlack;
  let dir: string;
  let storeDb: Database;
  let sessions: SessionStore;
  let journal: CutoverJournal;
  const bots: BotProcess[] = [];
  const outputs: string[] = [];
  let writer: Writer | undefined;

  const env = (port: number): Record<string, string> => ({
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
  const spawnBot = (port: number) => {
    const bot = startBotProcess(env(port));
    bots.push(bot);
    return bot;
  };
  const kill = async (bot: BotProcess) => {
    bot.child.kill('SIGKILL');
    expect(await bot.exited).toBe('SIGKILL');
    outputs.push(bot.output());
    bots.splice(bots.indexOf(bot), 1);
  };

  const people = () => new SlackPeople({ slack, secret: SIGNING_SECRET, latest: async (channel) => (await sessions.listForChannel(channel, 1))[0] });
  const command = (port: number, user: string, text: string) => people().command(port, CHANNEL, user, text);
  const click = (port: number, user: string, action: string) => people().click(port, CHANNEL, user, action);
  const waitState = (state: Session['state'], timeoutMs?: number) => people().waitState(CHANNEL, state, timeoutMs);
  const session = async () => (await sessions.listForChannel(CHANNEL, 1))[0];
  const paused = async (): Promise<number | undefined> => {
    const admin = await bouncer.admin();
    try {
      const { rows } = await admin.query<{ name: string; paused: number }>('SHOW DATABASES');
      return rows.find((r) => r.name === 'orders')?.paused;
    } finally {
      await admin.end();
    }
  };
  /** Freezes writes through the bot on `port` (Alice requests, Bob approves); resolves once frozen. */
  const freeze = async (port: number) => {
    await click(port, ALICE, 'freeze_request');
    await click(port, BOB, 'freeze_approve');
    const frozen = await waitState('frozen');
    expect(await paused()).toBe(1);
    return frozen;
  };
  /** Every acknowledged write is on the source, none failed, and some were held across the dead holder. */
  const nothingLost = async (load: Writer, killedAt: number) => {
    expect(load.errors).toEqual([]);
    expect(load.acked.filter((a) => a.sentAt < killedAt && a.ackedAt > killedAt).length).toBeGreaterThan(0);
    const rows = await source.query<{ id: string }>('SELECT id FROM writes WHERE id = ANY($1::text[])', [load.acked.map((a) => a.id)], 'orders');
    const present = new Set(rows.map((r) => r.id));
    expect(load.acked.filter((a) => !present.has(a.id))).toEqual([]);
  };

  beforeAll(async () => {
    [source, target] = await startReplicationPair(['orders', 'store']);
    await source.query(RIG_SCHEMA, [], 'orders');
    sim = await startDoSimulator({
      token: new Secret(DO_TOKEN),
      logger,
      clusters: {
        [DO_CLUSTER]: { connection: { host: target.host, port: target.port, user: target.user, password: new Secret(target.password), database: 'defaultdb' } },
      },
    });
    bouncer = await startPgBouncer({
      databases: { orders: { host: source.host, port: source.port, dbname: 'orders' } },
      poolMode: 'transaction',
      settings: { query_wait_timeout: 60 },
    });
    slack = await startFakeSlack();
    dir = mkdtempSync(join(tmpdir(), 'pgcutover-takeover-'));
    writeFileSync(
      join(dir, 'pgcutover.yml'),
      `profiles:
  orders:
    channels: [${CHANNEL}]
    strategy: proxy
    source: { host: 127.0.0.1, port: ${source.port}, database: orders, user: ${source.user}, password: "\${ORDERS_SOURCE_PASSWORD}", sslmode: disable }
    digitalocean: { clusterUuid: ${DO_CLUSTER}, database: orders, disableSsl: true, ignoreDbs: [store, postgres] }
    proxy:
      kind: pgbouncer
      admin: { host: 127.0.0.1, port: ${bouncer.port}, user: ${bouncer.adminUser}, password: "\${PGBOUNCER_ADMIN_PASSWORD}" }
      database: orders
      databasesFile: ${bouncer.databasesFile}
      pauseTimeoutSeconds: 5
    freeze: { budgetSeconds: ${BUDGET_SECONDS} }
    gates: { operators: [${ALICE}, ${BOB}], approvers: [${BOB}], twoPersonRule: true, flow: step-by-step }
`,
    );
    storeDb = openPostgres(new Secret(source.connectionString('store')), logger);
    sessions = new SessionStore(storeDb);
    journal = new CutoverJournal(storeDb);
  }, 120_000);

  afterAll(async () => {
    await writer?.stop().catch(() => undefined);
    for (const bot of [...bots]) {
      await bot.stop('SIGKILL').catch(() => undefined);
      outputs.push(bot.output());
    }
    await storeDb?.close().catch(() => undefined);
    await slack?.close();
    await bouncer?.stop().catch(() => undefined);
    await sim?.stop().catch(() => undefined);
    await Promise.all([source?.stop(), target?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
    const logs = outputs.join('\n');
    for (const secret of [SLACK_TOKEN, SIGNING_SECRET, DO_TOKEN, RIG_PASSWORD, PGBOUNCER_ADMIN_PASSWORD]) expect(logs).not.toContain(secret);
  });

  it('two replicas: the holder is SIGKILLed while frozen, the survivor resumes writes within the budget', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = spawnBot(portA);
    const b = spawnBot(portB);
    await Promise.all([a.waitForHealth(portA), b.waitForHealth(portB)]);
    await command(portA, ALICE, 'start orders');
    await waitState('syncing', 60_000);
    const load = (writer = startWriter(bouncer.connectionString('orders'), { prefix: 'takeover', workers: 4 }));
    await sleep(500);

    // A runs the freeze, so A holds it (its budget timer, its lock); then A dies.
    const frozen = await freeze(portA);
    await kill(a);
    const killedAt = Date.now();

    const resumed = await waitState('syncing', BUDGET_SECONDS * 1000);
    expect(resumed.id).toBe(frozen.id);
    expect(await paused()).toBe(0);
    const attempt = await journal.latestCutover(frozen.id);
    expect(attempt).toMatchObject({ resumedOn: 'source', freezeBudgetSeconds: BUDGET_SECONDS });
    // The outcome that matters: writes came back before the budget ran out, with nobody restarted.
    expect(attempt!.resumedAt!.getTime()).toBeLessThan(attempt!.frozenAt!.getTime() + BUDGET_SECONDS * 1000);
    expect((await journal.entries(frozen.id)).filter((e) => e.step === 'freeze').map((e) => e.event)).toEqual(['started', 'done', 'undone']);
    await until('writes acknowledged after the takeover', () => load.acked.some((w) => w.ackedAt > killedAt + 200));
    await load.stop();
    writer = undefined;
    await nothingLost(load, killedAt);
    expect(b.child.exitCode).toBeNull();
    expect(people().thread(CHANNEL).map((m) => m.text).join('\n')).toMatch(/found writes frozen/i);
    await b.stop('SIGTERM');
    outputs.push(b.output());
    bots.splice(bots.indexOf(b), 1);
  }, 180_000);

  it('one replica: SIGKILLed while frozen and restarted, writes are resumed before it answers /healthz', async () => {
    const port = await freePort();
    const first = spawnBot(port);
    await first.waitForHealth(port);
    const load = (writer = startWriter(bouncer.connectionString('orders'), { prefix: 'restart', workers: 4 }));
    await sleep(500);
    const frozen = await freeze(port);
    await kill(first);
    const killedAt = Date.now();
    expect(await paused()).toBe(1);

    const restarted = spawnBot(port);
    await restarted.waitForHealth(port);
    // Looked at the moment /healthz first answers: the freeze was already undone.
    expect(await paused()).toBe(0);
    expect((await session())?.state).toBe('syncing');
    expect((await journal.entries(frozen.id)).filter((e) => e.step === 'freeze').map((e) => e.event)).toEqual(['started', 'done', 'undone', 'started', 'done', 'undone']);
    await until('writes acknowledged after the restart', () => load.acked.some((w) => w.ackedAt > killedAt + 200));
    await load.stop();
    writer = undefined;
    await nothingLost(load, killedAt);
  }, 180_000);
});
