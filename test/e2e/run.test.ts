/**
 * The approve-first run on the real rig, and a SIGKILL at each of its steps. Both gates are approved
 * through signed Slack requests before anything freezes; the switch approval runs freeze → fence with
 * sequences → repoint → resume in one go, journaling nothing while writes wait. The bot process is
 * killed while it waits in a step (held there by the real parts, not by a hook in the bot):
 *   - the drain: a write transaction left open through PgBouncer, so PAUSE cannot answer;
 *   - the fence: the target's apply blocked by a SHARE lock on the fence table (reads still pass);
 *   - the repoint: PgBouncer stopped (SIGSTOP) once paused and the fence released, so RELOAD hangs;
 *   - right after the switch.
 * And what guards the data around the run: a row removed on the target behind replication's back is
 * caught by the verification at the switch point (Finish refused until acknowledged), and a column
 * added on the source while syncing blocks the run before it freezes (the schema guard).
 * A restarted bot then recovers: writes run again, on the target when the proxy was repointed (the
 * session says switched) or on the source (syncing), and every acknowledged write is where they run.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Session } from '../../src/domain/session.js';
import { FENCE_TABLE } from '../../src/adapters/source/fence.js';
import { openPostgres, type Database } from '../../src/adapters/store/database.js';
import { CutoverJournal } from '../../src/adapters/store/cutover-journal.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
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
import { sleep, until } from '../support/wait.js';

const SIGNING_SECRET = 'run-crash-signing-secret-0123456789';
const SLACK_TOKEN = 'xoxb-run-crash-token-0123456789';
const ALICE = 'U0ALICE';
const BOB = 'U0BOB';

type CrashPoint = 'drain' | 'fence' | 'repoint' | 'after the switch';
const CRASH_POINTS: CrashPoint[] = ['drain', 'fence', 'repoint', 'after the switch'];
const CHANNEL: Record<CrashPoint | 'drift' | 'verify', string> = {
  drain: 'C0RUNDRAIN',
  fence: 'C0RUNFENCE',
  repoint: 'C0RUNREPOINT',
  'after the switch': 'C0RUNAFTER',
  drift: 'C0RUNDRIFT',
  verify: 'C0RUNVERIFY',
};

describe("the approve-first run on real parts: a SIGKILL at each step, the verification at the switch point, the schema guard", () => {
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
  const cleanups: (() => Promise<unknown>)[] = [];

  const startBot = async (port: number) => {
    const bot = startBotProcess({
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
    bots.push(bot);
    await bot.waitForHealth(port);
    return bot;
  };
  const people = () => new SlackPeople({ slack, secret: SIGNING_SECRET, latest: async (channel) => (await sessions.listForChannel(channel, 1))[0] });
  const waitState = (channel: string, state: Session['state'], timeoutMs = 60_000) =>
    people().waitState(channel, state, timeoutMs, () => readFileSync(bouncer.logFile, 'utf8').slice(-4000));
  const bouncerRow = async () => {
    const admin = await bouncer.admin();
    try {
      const { rows } = await admin.query<{ name: string; port: number; paused: number }>('SHOW DATABASES');
      return rows.find((r) => r.name === 'orders');
    } finally {
      await admin.end();
    }
  };

  /**
   * Approve-first, as people click (one at a time, each waiting for the session to move): Alice
   * requests the freeze and the switch, Bob approves the freeze. Nothing freezes yet.
   */
  const requestBothAndApproveFreeze = async (port: number, channel: string, sessionId: string) => {
    for (const [user, action] of [[ALICE, 'freeze_request'], [ALICE, 'switch_request'], [BOB, 'freeze_approve']] as const) {
      const before = (await sessions.require(sessionId)).version;
      await people().click(port, channel, user, action);
      await until(`${action} done`, async () => ((await sessions.require(sessionId)).version > before ? true : undefined));
    }
  };
  /**
   * Bob approves the switch in the typed-name modal: the approval completing the pair starts the run.
   * Resolves once the modal is open, with the submission (its answer may come only after the run).
   */
  const approveSwitch = async (port: number, channel: string): Promise<{ submitted: Promise<unknown> }> => {
    const opened = slack.callsTo('views.open').length;
    await people().click(port, channel, BOB, 'switch_approve');
    await until('the confirmation modal', () => slack.callsTo('views.open').length > opened || undefined);
    return { submitted: people().submitModal(port, BOB, slack.callsTo('views.open').at(-1)!.body.view as Record<string, unknown>, 'orders') };
  };

  /** A fresh rig, a bot, and `/migrate start orders` in `channel`: the session syncing. */
  const syncingSession = async (channel: string) => {
    await freshRig();
    const port = await freePort();
    const bot = await startBot(port);
    await people().command(port, channel, ALICE, 'start orders');
    return { port, bot, session: await waitState(channel, 'syncing') };
  };

  /** A fresh migration: an empty target database and a PgBouncer pointing at the source. */
  const freshRig = async () => {
    await target.query('DROP DATABASE IF EXISTS orders WITH (FORCE)');
    await bouncer?.stop();
    bouncer = await startPgBouncer({
      databases: { orders: { host: source.host, port: source.port, dbname: 'orders' } },
      poolMode: 'transaction',
      settings: { query_wait_timeout: 300 },
    });
    writeFileSync(
      join(dir, 'pgcutover.yml'),
      `profiles:
  orders:
    channels: [${Object.values(CHANNEL).join(', ')}]
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
`,
    );
  };

  beforeAll(async () => {
    [source, target] = await startReplicationPair(['orders', 'store']);
    await source.query(RIG_SCHEMA, [], 'orders');
    sim = await startDoSimulator({
      token: new Secret(DO_TOKEN),
      logger,
      clusters: { [DO_CLUSTER]: { connection: { host: target.host, port: target.port, user: target.user, password: new Secret(target.password), database: 'defaultdb' } } },
    });
    slack = await startFakeSlack();
    dir = mkdtempSync(join(tmpdir(), 'pgcutover-run-crash-'));
    storeDb = openPostgres(new Secret(source.connectionString('store')), logger);
    sessions = new SessionStore(storeDb);
    journal = new CutoverJournal(storeDb);
  }, 120_000);

  afterAll(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup().catch(() => undefined);
    for (const bot of bots.splice(0)) await bot.stop('SIGKILL').catch(() => undefined);
    await storeDb?.close().catch(() => undefined);
    await slack?.close();
    if (bouncer) {
      process.kill(bouncer.pid, 'SIGCONT');
      await bouncer.stop().catch(() => undefined);
    }
    await sim?.stop().catch(() => undefined);
    await Promise.all([source?.stop(), target?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Holds the run in `point` until `kill` resolves; returns what lets it go again. */
  async function holdAt(point: CrashPoint, sessionId: string): Promise<{ kill: () => Promise<void>; release: () => Promise<void> }> {
    const thread = () => people().thread(CHANNEL[point]).map((m) => `  ${m.text}`).join('\n');
    const frozenStarted = () =>
      until('the run journaled its freeze', async () => (await journal.entries(sessionId)).some((e) => e.step === 'freeze' && e.event === 'started') || undefined, 30_000, thread);
    const paused = () => until('PgBouncer paused', async () => ((await bouncerRow())?.paused === 1 ? true : undefined), 30_000, thread);
    if (point === 'drain') {
      // A write transaction left open through PgBouncer: PAUSE waits for it.
      const open = new pg.Client({ connectionString: bouncer.connectionString('orders') });
      await open.connect();
      await open.query('BEGIN');
      await open.query("INSERT INTO writes (id, port) VALUES ('open-transaction', inet_server_port())");
      cleanups.push(() => open.end());
      return { kill: async () => void (await frozenStarted(), await sleep(500)), release: async () => void (await open.query('COMMIT'), await open.end()) };
    }
    // The fence waits while the target cannot apply a row into the fence table.
    const lock = new pg.Client({ connectionString: target.connectionString('orders') });
    await lock.connect();
    await lock.query('BEGIN');
    await lock.query(`LOCK TABLE public.${FENCE_TABLE} IN SHARE MODE`);
    cleanups.push(() => lock.end());
    const unlock = async () => void (await lock.query('COMMIT'), await lock.end());
    if (point === 'fence') return { kill: async () => void (await paused(), await sleep(500)), release: unlock };
    // The repoint: PgBouncer stopped once paused, then the fence let through: RELOAD hangs.
    return {
      kill: async () => {
        await paused();
        process.kill(bouncer.pid, 'SIGSTOP');
        await unlock();
        // The fence row arrives; the run goes on to its RELOAD, which the stopped PgBouncer never answers.
        await sleep(1500);
      },
      release: async () => void process.kill(bouncer.pid, 'SIGCONT'),
    };
  }

  for (const point of CRASH_POINTS) {
    it(`killed ${point === 'after the switch' ? point : `in the ${point}`}: the restarted bot ends with writes running and nothing lost`, async () => {
      const channel = CHANNEL[point];
      const started = await syncingSession(channel);
      const port = started.port;
      let { bot, session } = started;
      let writer: Writer | undefined = startWriter(bouncer.connectionString('orders'), { prefix: `run-${point.replace(/ /g, '-')}`, workers: 4, maxDurationMs: 180_000 });
      cleanups.push(async () => writer?.stop());
      await until('writes flowing', () => (writer!.acked.length > 50 ? true : undefined));

      await requestBothAndApproveFreeze(port, channel, session.id);
      expect((await sessions.require(session.id)).state).toBe('syncing');
      expect((await bouncerRow())?.paused).toBe(0);
      const hold = point === 'after the switch' ? undefined : await holdAt(point, session.id);
      // The bot dies while the run is held: the submission may never be answered.
      void (await approveSwitch(port, channel)).submitted.catch(() => undefined);
      if (hold) await hold.kill();
      else await waitState(channel, 'switched');
      bot.child.kill('SIGKILL');
      expect(await bot.exited).toBe('SIGKILL');
      bots.splice(bots.indexOf(bot), 1);
      await hold?.release();

      bot = await startBot(port);
      const settled = await until('the session settled after the restart', async () => {
        const s = await sessions.require(session.id);
        return s.state === 'switched' || s.state === 'syncing' ? s : undefined;
      }, 60_000);
      const row = await until('PgBouncer running again', async () => {
        const r = await bouncerRow();
        return r && r.paused === 0 ? r : undefined;
      });
      // Writes run where the session says they do.
      expect(row.port).toBe(settled.state === 'switched' ? target.port : source.port);
      if (point === 'drain' || point === 'fence') expect(settled.state).toBe('syncing');
      if (point === 'after the switch') expect(settled.state).toBe('switched');
      const resumedAt = Date.now();
      await until('writes acknowledged after the restart', () => (writer!.acked.some((a) => a.ackedAt > resumedAt + 200) ? true : undefined), 60_000);
      const load = writer;
      writer = undefined;
      await load.stop();
      expect(load.errors).toEqual([]);
      // Every acknowledged write is where writes run now (the target has the source's by replication).
      const on = settled.state === 'switched' ? target : source;
      const ids = load.acked.map((a) => a.id);
      const rows = await on.query<{ id: string }>('SELECT id FROM writes WHERE id = ANY($1::text[])', [ids], 'orders');
      const present = new Set(rows.map((r) => r.id));
      expect(load.acked.filter((a) => !present.has(a.id))).toEqual([]);
      const thread = people().thread(channel).map((m) => m.text).join('\n');
      if (point !== 'after the switch') expect(thread).toMatch(/after a restart/i);
      console.info(`run crash (${point}): settled ${settled.state}, ${load.acked.length} writes acknowledged, 0 errors, 0 lost`);

      // The next case needs the cluster's migration stopped: finish or abort this session.
      session = await sessions.require(session.id);
      await people().command(port, channel, ALICE, session.state === 'switched' ? 'finish' : 'abort');
      await waitState(channel, session.state === 'switched' ? 'finished' : 'aborted');
      await bot.stop();
      bots.splice(bots.indexOf(bot), 1);
    }, 300_000);
  }

  it('a row removed on the target behind replication\'s back is caught at the switch point, the table named; Finish is refused until acknowledged', async () => {
    const channel = CHANNEL.verify;
    const { port, bot, session } = await syncingSession(channel);
    await source.query("INSERT INTO writes (id, port) SELECT 'verify-' || g, 0 FROM generate_series(1, 100) g", [], 'orders');
    const count = async (on: Cluster) => (await on.query<{ n: number }>("SELECT count(*)::int AS n FROM writes WHERE id LIKE 'verify-%'", [], 'orders'))[0]?.n;
    await until('the rows on the target', async () => ((await count(target)) === 100 ? true : undefined));
    await target.query("DELETE FROM writes WHERE id = 'verify-42'", [], 'orders');
    await requestBothAndApproveFreeze(port, channel, session.id);
    await (await approveSwitch(port, channel)).submitted;
    await waitState(channel, 'switched');
    const finding = await until('the verification in the thread', () =>
      people()
        .thread(channel)
        .map((m) => m.text)
        .find((t) => /Verification at the switch point/.test(t)),
    );
    expect(finding).toMatch(/`public\.writes` \(\d+ rows on the source, \d+ on the target\)/);

    // Finish is refused (nothing stopped), then goes through once acknowledged.
    await people().command(port, channel, ALICE, 'finish');
    await until('the refusal', () => people().thread(channel).some((m) => /acknowledge-differences\W{0,2} finishes anyway/.test(m.text)) || undefined);
    expect((await sessions.require(session.id)).state).toBe('switched');
    expect((await sim.migration(DO_CLUSTER))?.status).toBe('syncing');
    await people().command(port, channel, ALICE, 'finish --acknowledge-differences');
    await waitState(channel, 'finished');
    expect((await journal.latestCutover(session.id))?.verification).toMatchObject({ outcome: 'different', acknowledgedBy: ALICE, differing: [{ table: 'public.writes' }] });
    await bot.stop();
    bots.splice(bots.indexOf(bot), 1);
  }, 300_000);

  // Last: it leaves a column on the source the other cases' rig does not expect.
  it('a column added on the source while syncing blocks the run: nothing freezes, the thread names the difference', async () => {
    const channel = CHANNEL.drift;
    const { port, bot, session } = await syncingSession(channel);
    await source.query('ALTER TABLE writes ADD COLUMN note text', [], 'orders');
    await requestBothAndApproveFreeze(port, channel, session.id);
    await (await approveSwitch(port, channel)).submitted;
    const refusal = await until('the refusal in the thread', () =>
      people()
        .thread(channel)
        .map((m) => m.text)
        .find((t) => /not frozen/i.test(t)),
    );
    expect(refusal).toMatch(/schema .*public\.writes: column note \(text\) only on the source/);
    expect((await sessions.require(session.id)).state).toBe('syncing');
    expect(readFileSync(bouncer.logFile, 'utf8')).not.toMatch(/PAUSE/i);
    await people().command(port, channel, ALICE, 'abort');
    await waitState(channel, 'aborted');
    await bot.stop();
    bots.splice(bots.indexOf(bot), 1);
  }, 300_000);
});
