/**
 * A session covers every database DigitalOcean migrates. The source has three databases: `app` (the
 * profile's), `app2` (migrated too) and `app3` (in ignore_dbs), each behind its own PgBouncer entry. The
 * built bot, driven only through signed Slack requests, cuts over while clients write to app and app2
 * through PgBouncer: nothing acknowledged is lost on either, the sequences of both are ahead on the
 * target, and app3 is untouched (never paused, never repointed, no fence table, not on the target).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Session } from '../../src/domain/session.js';
import { FENCE_TABLE } from '../../src/adapters/source/fence.js';
import { CutoverJournal } from '../../src/adapters/store/cutover-journal.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import { openPostgres, type Database } from '../../src/adapters/store/database.js';
import { Secret } from '../../src/secret.js';
import type { DoSimulator } from '../../src/simulator/digitalocean/index.js';
import { startBotProcess, type BotProcess } from '../support/bot-process.js';
import { captureLogger } from '../support/capture-log.js';
import { DO_CLUSTER, DO_TOKEN, RIG_SCHEMA, startRigSimulator } from '../support/cutover-rig.js';
import { startWriter, type Ack, type Writer } from '../support/cutover-writer.js';
import { startFakeSlack, type FakeSlack } from '../support/fake-slack.js';
import { freePort } from '../support/free-port.js';
import type { Cluster } from '../support/pg-cluster.js';
import { PGBOUNCER_ADMIN_PASSWORD, startPgBouncer, type PgBouncer } from '../support/pgbouncer.js';
import { startReplicationPair } from '../support/replication-pair.js';
import { SlackPeople } from '../support/slack-people.js';
import { sleep, until } from '../support/wait.js';

const SIGNING_SECRET = 'every-db-signing-secret-0123456789';
const SLACK_TOKEN = 'xoxb-every-db-bot-token-0123456789';
const ALICE = 'U0ALICE';
const BOB = 'U0BOB';
const CHANNEL = 'C0EVERYDB';
const MIGRATED = ['app', 'app2'] as const;
/** PgBouncer's entries, one per database (the preflight's temporary probe entries aside). */
const ENTRIES = ['app', 'app2', 'app3'];

describe('every migrated database: Slack → bot process → three databases behind PgBouncer', () => {
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
  const writers: Writer[] = [];

  const people = () => new SlackPeople({ slack, secret: SIGNING_SECRET, latest: async (channel) => (await sessions.listForChannel(channel, 1))[0] });
  const waitState = (state: Session['state'], timeoutMs = 60_000) =>
    people().waitState(CHANNEL, state, timeoutMs, () => readFileSync(bouncer.logFile, 'utf8').slice(-4000));
  const entries = async () => {
    const admin = await bouncer.admin();
    try {
      const { rows } = await admin.query<{ name: string; port: number; paused: number }>('SHOW DATABASES');
      return Object.fromEntries(rows.filter((r) => ENTRIES.includes(r.name)).map((r) => [r.name, { port: Number(r.port), paused: Number(r.paused) }]));
    } finally {
      await admin.end();
    }
  };
  /** How often PgBouncer logged a PAUSE of `entry` (it logs each admin command it runs). */
  const pausesOf = (entry: string) => readFileSync(bouncer.logFile, 'utf8').split(`PAUSE '${entry}' command issued`).length - 1;
  /** Every sequence of `database` on one server, by name, with its last value (null: never used). */
  const sequences = async (cluster: Cluster, database: string) =>
    Object.fromEntries(
      (await cluster.query<{ name: string; last: string | null }>('SELECT sequencename AS name, last_value::text AS last FROM pg_sequences', [], database)).map(
        (r) => [r.name, r.last === null ? null : BigInt(r.last)],
      ),
    );

  beforeAll(async () => {
    [source, target] = await startReplicationPair(['app', 'app2', 'app3', 'store']);
    for (const db of ['app', 'app2', 'app3']) await source.query(RIG_SCHEMA, [], db);
    sim = await startRigSimulator(target, logger);
    bouncer = await startPgBouncer({
      databases: Object.fromEntries(['app', 'app2', 'app3'].map((db) => [db, { host: source.host, port: source.port, dbname: db }])),
      poolMode: 'transaction',
      settings: { query_wait_timeout: 30 },
    });
    slack = await startFakeSlack();
    dir = mkdtempSync(join(tmpdir(), 'pgcutover-every-db-'));
    writeFileSync(
      join(dir, 'pgcutover.yml'),
      `profiles:
  app:
    channels: [${CHANNEL}]
    strategy: proxy
    source: { host: 127.0.0.1, port: ${source.port}, database: app, user: ${source.user}, password: "\${SOURCE_PASSWORD}", sslmode: disable }
    digitalocean:
      clusterUuid: ${DO_CLUSTER}
      database: app
      disableSsl: true
      ignoreDbs: [app3, store, postgres]
    proxy:
      kind: pgbouncer
      admin: { host: 127.0.0.1, port: ${bouncer.port}, user: ${bouncer.adminUser}, password: "\${PGBOUNCER_ADMIN_PASSWORD}" }
      database: app
      databasesFile: ${bouncer.databasesFile}
      pauseTimeoutSeconds: 5
    freeze: { budgetSeconds: 30 }
    gates:
      operators: [${ALICE}, ${BOB}]
      approvers: [${BOB}]
`,
    );
    storeDb = openPostgres(new Secret(source.connectionString('store')), logger);
    sessions = new SessionStore(storeDb);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(writers.map((w) => w.stop().catch(() => undefined)));
    await bot?.stop().catch(() => undefined);
    await storeDb?.close().catch(() => undefined);
    await slack?.close();
    await bouncer?.stop().catch(() => undefined);
    await sim?.stop().catch(() => undefined);
    await Promise.all([source?.stop(), target?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('cuts over app and app2 under writes without losing one, sequences of both ahead, app3 untouched', async () => {
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
      SOURCE_PASSWORD: source.password,
      PGBOUNCER_ADMIN_PASSWORD,
      LOG_LEVEL: 'info',
    });
    await bot.waitForHealth(port);
    const p = people();

    await p.command(port, CHANNEL, ALICE, 'start app');
    await waitState('syncing');
    expect((await sim.migration(DO_CLUSTER))?.databases).toEqual([...MIGRATED]);

    const [appWriter, app2Writer] = MIGRATED.map((db) => startWriter(bouncer.connectionString(db), { prefix: db, workers: 4, maxDurationMs: 180_000 }));
    writers.push(appWriter!, app2Writer!);
    await sleep(1500);

    // The status message shows each migrated database's lag (app3 is not one of them).
    await p.command(port, CHANNEL, ALICE, 'status');
    await until('per-database lag in the status message', () => {
      const text = JSON.stringify(p.status(CHANNEL)?.blocks ?? []);
      return text.includes('app2 ') && !text.includes('app3') ? true : undefined;
    });

    // Both gates (the second with the typed name): app and app2 paused and sent to the target, app3
    // never paused, its line in the databases file as it was.
    const app3Line = readFileSync(bouncer.databasesFile, 'utf8').split('\n').find((l) => l.startsWith('app3 '));
    await p.click(port, CHANNEL, ALICE, 'freeze_request');
    await p.click(port, CHANNEL, BOB, 'freeze_approve');
    // The approval changes the session's version (and, step by step, freezes): click on the message after it.
    await until('the freeze approval in the thread', () => p.thread(CHANNEL).some((m) => m.text.includes('approved the write freeze')) || undefined);
    await p.click(port, CHANNEL, ALICE, 'switch_request');
    const opened = slack.callsTo('views.open').length;
    await p.click(port, CHANNEL, BOB, 'switch_approve');
    await until('the confirmation modal', () => slack.callsTo('views.open').length > opened);
    const view = slack.callsTo('views.open').at(-1)!.body.view as Record<string, unknown>;
    expect((await p.submitModal(port, BOB, view, 'app')).status).toBe(200);
    await waitState('switched');
    expect(pausesOf('app')).toBeGreaterThan(0);
    expect(pausesOf('app2')).toBeGreaterThan(0);
    expect(pausesOf('app3')).toBe(0);
    const file = readFileSync(bouncer.databasesFile, 'utf8').split('\n');
    expect(file.filter((l) => l.includes('app3'))).toEqual([app3Line]);
    expect(await entries()).toEqual({
      app: { port: target.port, paused: 0 },
      app2: { port: target.port, paused: 0 },
      app3: { port: source.port, paused: 0 },
    });

    const onTarget = (w: Writer) => w.acked.filter((a) => a.port === target.port).length;
    await until('writes acknowledged by the target on both databases', () => (onTarget(appWriter!) > 200 && onTarget(app2Writer!) > 200) || undefined, 60_000);
    await p.command(port, CHANNEL, ALICE, 'finish');
    const session = await waitState('finished');
    await Promise.all(writers.map((w) => w.stop()));

    for (const [db, writer] of [
      ['app', appWriter!],
      ['app2', app2Writer!],
    ] as const) {
      // Not one write failed, and every acknowledged one is on the target.
      expect(writer.errors, db).toEqual([]);
      const ids = writer.acked.map((a: Ack) => a.id);
      const present = new Set((await target.query<{ id: string }>('SELECT id FROM writes WHERE id = ANY($1::text[])', [ids], db)).map((r) => r.id));
      expect(writer.acked.filter((a) => !present.has(a.id)), db).toEqual([]);
      const fromSource = writer.acked.filter((a) => a.port === source.port);
      const fromTarget = writer.acked.filter((a) => a.port === target.port);
      expect(fromSource.length, db).toBeGreaterThan(0);
      expect(Math.min(...fromTarget.map((a) => a.n)), db).toBeGreaterThan(Math.max(...fromSource.map((a) => a.n)));
      // Every sequence of the application is ahead on the target (the copy, or new rows after it). The
      // bot's own fence marker sequence is left out: the marker is written while the sequences are copied,
      // and the target never uses it (markers are only ever written on the source).
      const [onSource, onTargetSeq] = await Promise.all([sequences(source, db), sequences(target, db)]);
      delete onSource[`${FENCE_TABLE}_id_seq`];
      const behind = Object.entries(onSource).filter(([name, last]) => last !== null && !((onTargetSeq[name] ?? null) !== null && onTargetSeq[name]! > last));
      expect(behind.map(([name, last]) => `${db}.${name}: source ${last}, target ${onTargetSeq[name]}`)).toEqual([]);
    }

    // app3 was never part of it: no fence table on the source, no database on the target, still on the source.
    expect(await source.query('SELECT to_regclass($1) AS t', ['public.pgcutover_fence'], 'app3')).toEqual([{ t: null }]);
    expect(await target.query('SELECT datname FROM pg_database WHERE datname = $1', ['app3'])).toEqual([]);
    const direct = new pg.Client({ connectionString: bouncer.connectionString('app3') });
    await direct.connect();
    try {
      const { rows } = await direct.query<{ port: number }>('SELECT inet_server_port() AS port');
      expect(rows[0]?.port).toBe(source.port);
    } finally {
      await direct.end();
    }
    const thread = p.thread(CHANNEL).map((m) => m.text);
    expect(thread.filter((t) => t.startsWith(':x:'))).toEqual([]);
    const attempt = await new CutoverJournal(storeDb).latestCutover(session.id);
    expect(attempt?.fence?.databases?.map((d) => d.database)).toEqual([...MIGRATED]);
    console.info(
      `every database: app ${appWriter!.acked.length} writes, app2 ${app2Writer!.acked.length} writes, 0 failed, 0 lost; ` +
        `frozen ${attempt!.resumedAt!.getTime() - attempt!.frozenAt!.getTime()} ms, fences ${attempt?.fence?.databases?.map((d) => `${d.database} ${d.elapsedMs} ms`).join(', ')}`,
    );
  }, 240_000);
});
