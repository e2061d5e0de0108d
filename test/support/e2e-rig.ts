/**
 * The real rig the end-to-end tests drive the built bot on: two PostgreSQL clusters (the source with
 * wal_level=logical, the application's databases on it with the rig's schema), the DO simulator serving
 * the target (real logical replication), a real PgBouncer in front of every application database, a
 * fake Slack Web API, the bot's store (database `store` on the source cluster), a profiles file, and
 * the bot processes (see e2e-bot.ts). Alice operates; Bob operates and approves.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CutoverJournal } from '../../src/adapters/store/cutover-journal.js';
import { openPostgres, type Database } from '../../src/adapters/store/database.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import type { Session } from '../../src/domain/session.js';
import type { Logger } from '../../src/log.js';
import { Secret } from '../../src/secret.js';
import type { DoSimulator } from '../../src/simulator/digitalocean/index.js';
import type { SlackResponse } from '../../src/sandbox/slack-requests.js';
import { DO_CLUSTER, RIG_SCHEMA, startRigSimulator } from './cutover-rig.js';
import { BotFleet, botEnv, slackPeople, SOURCE_PASSWORD_VAR } from './e2e-bot.js';
import { startFakeSlack, type FakeSlack } from './fake-slack.js';
import type { Cluster } from './pg-cluster.js';
import { startPgBouncer, type PgBouncer } from './pgbouncer.js';
import { startReplicationPair } from './replication-pair.js';
import type { SlackPeople } from './slack-people.js';
import { until } from './wait.js';

export const ALICE = 'U0ALICE';
export const BOB = 'U0BOB';

export interface E2eRigOptions {
  /** The application's databases on the source, each behind PgBouncer (default: `orders`). */
  databases?: string[];
  /** PgBouncer's query_wait_timeout, seconds: how long a write may wait in a pause. */
  queryWaitTimeout: number;
  /** The target with wal_level=logical, as on DigitalOcean: the bot replicates back after the switch. */
  replicateBack?: boolean;
}

/** A profile of the first application database behind PgBouncer, as the profiles file says it. */
export interface ProfileOptions {
  channels: readonly string[];
  ignoreDbs?: string[];
  pauseTimeoutSeconds: number;
  budgetSeconds: number;
  flow?: 'step-by-step';
  /** More of the profile: description, replication, reports. */
  more?: Record<string, unknown>;
}

/** One of PgBouncer's entries (SHOW DATABASES). */
export interface BouncerEntry {
  name: string;
  port: number;
  paused: number;
}

export interface E2eRig {
  source: Cluster;
  target: Cluster;
  sim: DoSimulator;
  /** The current PgBouncer (fresh() starts another). */
  readonly bouncer: PgBouncer;
  slack: FakeSlack;
  storeDb: Database;
  sessions: SessionStore;
  journal: CutoverJournal;
  people: SlackPeople;
  bots: BotFleet;
  /** Writes the profiles file with one profile; fresh() writes it again for its PgBouncer. */
  writeProfile(options: ProfileOptions): void;
  /**
   * A fresh migration: the target without the application's databases, a new PgBouncer pointing at
   * the source, the profile written again for it. (PgBouncer 1.18 does not survive being put back by
   * hand after a switch: RELOAD after the forced user of the switch, then the next preflight probe:
   * FATAL put_in_order; so the next migration gets a fresh one.)
   */
  fresh(): Promise<void>;
  entries(): Promise<BouncerEntry[]>;
  entry(name?: string): Promise<BouncerEntry | undefined>;
  /** Waits for the channel's session in `state`; on a timeout the thread and PgBouncer's log say what happened. */
  waitState(channel: string, state: Session['state'], timeoutMs?: number): Promise<Session>;
  /**
   * Approve-first, as people click (one at a time, each waiting for the session to move): Alice
   * requests the freeze and the switch, Bob approves the freeze. Nothing freezes yet.
   */
  requestBothAndApproveFreeze(port: number, channel: string, sessionId: string): Promise<void>;
  /**
   * Bob approves the switch in the modal, typing `typed`. Resolves once the modal is open, with the
   * submission (when the approval starts the run, its answer may come only after it).
   */
  approveSwitch(port: number, channel: string, typed?: string): Promise<{ submitted: Promise<SlackResponse> }>;
  /** Both gates approved, approve-first: the two above; resolves with the answer to the modal's submission. */
  approveBoth(port: number, channel: string, sessionId: string): Promise<SlackResponse>;
  /** Stops the bots still running (with `botSignal`), then everything else, and removes the directory. */
  stop(botSignal?: NodeJS.Signals): Promise<void>;
}

/** Starts the rig; on a failure, stops what it started and throws. */
export async function startE2eRig(options: E2eRigOptions, logger: Logger): Promise<E2eRig> {
  const databases = options.databases ?? ['orders'];
  const dir = mkdtempSync(join(tmpdir(), 'pgcutover-e2e-'));
  const stops: (() => Promise<unknown>)[] = [async () => rmSync(dir, { recursive: true, force: true })];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
  };
  try {
    const [source, target] = await startReplicationPair([...databases, 'store'], { targetLogical: options.replicateBack ?? false });
    stops.push(() => Promise.all([source.stop(), target.stop()]));
    for (const db of databases) await source.query(RIG_SCHEMA, [], db);
    const sim = await startRigSimulator(target, logger);
    stops.push(() => sim.stop());
    const startBouncer = () =>
      startPgBouncer({
        databases: Object.fromEntries(databases.map((db) => [db, { host: source.host, port: source.port, dbname: db }])),
        poolMode: 'transaction',
        settings: { query_wait_timeout: options.queryWaitTimeout },
      });
    let bouncer = await startBouncer();
    stops.push(async () => {
      // A PgBouncer a test stopped (SIGSTOP) is let go first, so that it can stop.
      try {
        process.kill(bouncer.pid, 'SIGCONT');
      } catch {
        // already gone
      }
      await bouncer.stop();
    });
    const slack = await startFakeSlack();
    stops.push(() => slack.close());
    const storeDb = openPostgres(new Secret(source.connectionString('store')), logger);
    stops.push(() => storeDb.close());
    const sessions = new SessionStore(storeDb);
    const bots = new BotFleet((port) =>
      botEnv({ slack, doApiUrl: sim.url, storeUrl: source.connectionString('store'), dir, sourcePassword: source.password }, port),
    );
    let profile: ProfileOptions | undefined;
    const people = slackPeople(slack, sessions);

    const rig: E2eRig = {
      source,
      target,
      sim,
      get bouncer() {
        return bouncer;
      },
      slack,
      storeDb,
      sessions,
      journal: new CutoverJournal(storeDb),
      people,
      bots,
      writeProfile(wanted) {
        profile = wanted;
        writeFileSync(join(dir, 'pgcutover.yml'), profilesFile(databases[0]!, wanted, source, bouncer, options.replicateBack ?? false));
      },
      async fresh() {
        for (const db of databases) await target.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
        await bouncer.stop();
        bouncer = await startBouncer();
        if (profile) rig.writeProfile(profile);
      },
      async entries() {
        const admin = await bouncer.admin();
        try {
          return (await admin.query<BouncerEntry>('SHOW DATABASES')).rows;
        } finally {
          await admin.end();
        }
      },
      async entry(name = databases[0]) {
        return (await rig.entries()).find((r) => r.name === name);
      },
      waitState(channel, state, timeoutMs = 60_000) {
        return people.waitState(channel, state, timeoutMs, () => readFileSync(bouncer.logFile, 'utf8').slice(-4000));
      },
      async requestBothAndApproveFreeze(port, channel, sessionId) {
        for (const [user, action] of [[ALICE, 'freeze_request'], [ALICE, 'switch_request'], [BOB, 'freeze_approve']] as const) {
          const before = (await sessions.require(sessionId)).version;
          await people.click(port, channel, user, action);
          await until(`${action} done`, async () => ((await sessions.require(sessionId)).version > before ? true : undefined));
        }
      },
      async approveSwitch(port, channel, typed = databases[0]!) {
        const opened = slack.callsTo('views.open').length;
        await people.click(port, channel, BOB, 'switch_approve');
        await until('the confirmation modal', () => slack.callsTo('views.open').length > opened || undefined);
        return { submitted: people.submitModal(port, BOB, slack.callsTo('views.open').at(-1)!.body.view as Record<string, unknown>, typed) };
      },
      async approveBoth(port, channel, sessionId) {
        await rig.requestBothAndApproveFreeze(port, channel, sessionId);
        return (await rig.approveSwitch(port, channel)).submitted;
      },
      async stop(botSignal = 'SIGKILL') {
        await bots.stopAll(botSignal);
        await stopAll();
      },
    };
    return rig;
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** The profiles file: one profile named after its database; secrets as `${VAR}` references. */
function profilesFile(database: string, o: ProfileOptions, source: Cluster, bouncer: PgBouncer, replicatesBack: boolean): string {
  const profile = {
    channels: [...o.channels],
    strategy: 'proxy',
    source: { host: '127.0.0.1', port: source.port, database, user: source.user, password: `\${${SOURCE_PASSWORD_VAR}}`, sslmode: 'disable' },
    digitalocean: { clusterUuid: DO_CLUSTER, database, disableSsl: true, ignoreDbs: o.ignoreDbs ?? ['store', 'postgres'] },
    proxy: {
      kind: 'pgbouncer',
      admin: { host: '127.0.0.1', port: bouncer.port, user: bouncer.adminUser, password: '${PGBOUNCER_ADMIN_PASSWORD}' },
      database,
      databasesFile: bouncer.databasesFile,
      pauseTimeoutSeconds: o.pauseTimeoutSeconds,
    },
    freeze: { budgetSeconds: o.budgetSeconds },
    gates: { operators: [ALICE, BOB], approvers: [BOB], twoPersonRule: true, ...(o.flow ? { flow: o.flow } : {}) },
    // A target that cannot publish (wal_level replica) cannot replicate back: these rigs accept it.
    ...(replicatesBack ? {} : { rollback: { withoutReplicatingBack: 'accept' } }),
    ...o.more,
  };
  return stringify({ profiles: { [database]: profile } });
}
