/**
 * One record per fact, seen from outside: the built bot as a process (`node dist/main.js`), driven only
 * through signed Slack requests, on two real PostgreSQL clusters, the DigitalOcean simulator (real
 * logical replication) and real PgBouncers. For each session the audit rows (`audit_log`, by id) and
 * the lines of its status message's thread (in posting order) are read back as sequences of facts and
 * compared: one audit row and one thread line per fact, in the order the facts happened.
 *
 *   1. Cutover by the README's two gates: UOPS requests the freeze, UAPP approves it; UOPS2 requests
 *      the switch, UAPP2 approves it (typed database name) while writes are frozen; Finish. The summary
 *      names each gate's requester and approver, without "ahead of time".
 *   2. The switch approved before the freeze: it runs as soon as the fence is proven, and the summary
 *      says "(ahead of time)".
 *   3. Abort of a syncing session, and of a frozen one: one `abort:succeeded`, one "Aborted" line.
 *   4. Rollback after a switch: one `rollback:succeeded`, one "Rolled back" line.
 *
 * One rig and one bot process serve all cases. Each case has its own profile, channel, source database,
 * DigitalOcean cluster (all on the same target server) and PgBouncer, so the cases run side by side.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, it, type ExpectStatic } from 'vitest';
import { openPostgres, type Database } from '../../src/adapters/store/database.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import type { Session } from '../../src/domain/session.js';
import { Secret } from '../../src/secret.js';
import { startDoSimulator, type DoSimulator } from '../../src/simulator/digitalocean/index.js';
import { startBotProcess, type BotProcess } from '../support/bot-process.js';
import { captureLogger } from '../support/capture-log.js';
import { BOT_SECRETS, botEnv, slackPeople, SOURCE_PASSWORD_VAR } from '../support/e2e-bot.js';
import { DO_TOKEN, RIG_SCHEMA } from '../support/cutover-rig.js';
import { startWriter, type Writer } from '../support/cutover-writer.js';
import { startFakeSlack, type FakeMessage, type FakeSlack } from '../support/fake-slack.js';
import {
  actorMismatches,
  auditRows,
  describeTrail,
  duplicates,
  trailOf,
  type Trail,
} from '../support/facts-trail.js';
import { freePort } from '../support/free-port.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';
import { startPgBouncer, type PgBouncer } from '../support/pgbouncer.js';
import { until } from '../support/wait.js';

/** Operators request and finish; approvers approve. Two of each, so each gate can have its own pair. */
const UOPS = 'UOPS';
const UOPS2 = 'UOPS2';
const UAPP = 'UAPP';
const UAPP2 = 'UAPP2';

/** One case: its profile (= source and target database name), channel, DigitalOcean cluster and PgBouncer. */
interface Case {
  profile: string;
  channel: string;
  cluster: string;
  bouncer?: PgBouncer;
}
const CASES = {
  cutover: { profile: 'orders_cutover', channel: 'C0FACTCUT', cluster: randomUUID() },
  ahead: { profile: 'orders_ahead', channel: 'C0FACTAHEAD', cluster: randomUUID() },
  abortSyncing: { profile: 'orders_abort', channel: 'C0FACTABRT', cluster: randomUUID() },
  abortFrozen: { profile: 'orders_abortfz', channel: 'C0FACTABFZ', cluster: randomUUID() },
  rollback: { profile: 'orders_rollback', channel: 'C0FACTROLL', cluster: randomUUID() },
} satisfies Record<string, Case>;
const ALL: Case[] = Object.values(CASES);


describe.concurrent('one audit row and one thread line per fact, in order (Slack → bot process → real databases)', () => {
  const { logger } = captureLogger('info');
  let source: Cluster;
  let target: Cluster;
  let sim: DoSimulator;
  let slack: FakeSlack;
  let dir: string;
  let storeDb: Database;
  let storePool: pg.Pool;
  let sessions: SessionStore;
  let bot: BotProcess | undefined;
  let port = 0;
  const writers = new Set<Writer>();

  // ── Slack, as people use it ──────────────────────────────────────────────────────────────────
  const people = () => slackPeople(slack, sessions);
  const command = (c: Case, user: string, text: string) => people().command(port, c.channel, user, text);
  const thread = (c: Case): FakeMessage[] => people().thread(c.channel);
  const click = (c: Case, user: string, action: string) => people().click(port, c.channel, user, action);
  const modalsOf = (c: Case) =>
    slack
      .callsTo('views.open')
      .map((call) => call.body.view as Record<string, unknown>)
      .filter((view) => (JSON.parse(String(view.private_metadata)) as { channelId: string }).channelId === c.channel);
  /** `user` clicks "Approve switch…" and submits the modal with the target database name typed in. */
  const approveSwitch = async (c: Case, user: string) => {
    const opened = modalsOf(c).length;
    await click(c, user, 'switch_approve');
    const view = await until(`the confirmation modal in ${c.channel}`, () => modalsOf(c)[opened]);
    const response = await people().submitModal(port, user, view, c.profile);
    if (response.status !== 200) throw new Error(`modal submission: HTTP ${response.status} ${response.text}`);
    if (response.text && response.text.includes('errors')) throw new Error(`the modal refused the submission: ${response.text}`);
  };
  /** On a timeout the bot's warnings and errors say what happened (the five cases share one bot). */
  const botTrouble = () =>
    (bot?.output() ?? '')
      .split('\n')
      .filter((line) => /"level":(40|50|60)/.test(line))
      .slice(-25)
      .join('\n');
  const waitState = (c: Case, state: Session['state'], timeoutMs = 60_000) => people().waitState(c.channel, state, timeoutMs, botTrouble);
  const waitAudit = (c: Case, session: Session, key: string) =>
    until(`audit row ${key} in ${c.channel}`, async () => (await auditRows(storePool, session.id)).some((r) => `${r.action}:${r.outcome}` === key), 30_000, async () =>
      describeTrail(trailOf(await auditRows(storePool, session.id), thread(c))),
    );

  // ── The gates, as the README describes them ──────────────────────────────────────────────────

  /**
   * Under writes: gate 1 (UOPS requests the freeze, UAPP approves it), the fence proven while the bot
   * waits for gate 2, then gate 2 while frozen (`requester` requests the switch, `approver` approves it
   * in the modal), until writes reach the target. Resolves to the writer, still writing.
   */
  async function switchedWhileFrozen(c: Case, session: Session, requester: string, approver: string) {
    const writer = writerFor(c);
    await until('writes acknowledged through PgBouncer', () => writer.acked.length > 200);
    await freeze(c);
    await waitAudit(c, session, 'switch:info');
    await click(c, requester, 'switch_request');
    await approveSwitch(c, approver);
    await waitState(c, 'switched');
    await until('writes acknowledged by the target', () => writer.acked.some((a) => a.port === target.port));
    return writer;
  }
  /**
   * Every case's session is started (UOPS: `/migrate start <profile>`, the first two facts of each
   * case) in beforeAll, before any case writes: creating a logical slot on the source waits for the
   * transactions running on the whole server, so one case's writers could hold up another case's
   * start until PostgreSQL's next running-transactions record (up to 15 s).
   */
  const started = new Map<Case, Session>();
  const sessionOf = (c: Case) => {
    const session = started.get(c);
    if (!session) throw new Error(`the session of ${c.profile} did not start`);
    return session;
  };
  const freeze = async (c: Case) => {
    await click(c, UOPS, 'freeze_request');
    await click(c, UAPP, 'freeze_approve');
    return waitState(c, 'frozen');
  };
  const writerFor = (c: Case) => {
    const writer = startWriter(c.bouncer!.connectionString(c.profile), { prefix: c.profile, workers: 3 });
    writers.add(writer);
    return writer;
  };
  const stopWriter = async (writer: Writer) => {
    writers.delete(writer);
    return writer.stop();
  };

  /**
   * Both records of the session once they are complete and quiet: `done` holds, and neither the audit
   * rows nor the thread changed for a moment (a late duplicate would still be caught).
   */
  const settledTrail = async (c: Case, session: Session, done: (t: Trail) => boolean): Promise<Trail> => {
    let last = '';
    let stableSince = 0;
    return until(`the records of ${c.channel} to settle`, async () => {
      const t = trailOf(await auditRows(storePool, session.id), thread(c));
      const fingerprint = `${t.audited.join()}|${t.lines.map((l) => l.text).join('\n')}`;
      if (fingerprint !== last) {
        last = fingerprint;
        stableSince = Date.now();
        return undefined;
      }
      return done(t) && Date.now() - stableSince >= 750 ? t : undefined;
    }, 30_000, async () => describeTrail(trailOf(await auditRows(storePool, session.id), thread(c))));
  };

  /** What every case asserts of its two records: one-to-one, same order, nothing doubled, right actors. */
  const expectOneToOne = (expect: ExpectStatic, c: Case, t: Trail, facts: string[]) => {
    const dump = `\n${describeTrail(t)}`;
    expect(t.posted.filter((k) => k === '?'), `thread lines that are no fact line${dump}`).toEqual([]);
    expect(t.audited, `audit rows of the session${dump}`).toEqual(facts);
    expect(t.posted, `thread lines, in order, one per audited fact${dump}`).toEqual(t.expectedLines);
    expect(duplicates(t.lines.map((l) => l.text)), `duplicate thread lines${dump}`).toEqual([]);
    expect(actorMismatches(t), `who the thread says did it vs the audit row${dump}`).toEqual([]);
    // Every fact line is in the status message's thread: the channel has only the status message.
    expect(slack.topLevel(c.channel).map((m) => m.text.slice(0, 80)), 'top-level messages').toHaveLength(1);
  };

  const writeProfiles = () =>
    writeFileSync(
      join(dir, 'pgcutover.yml'),
      `profiles:\n${ALL.map(
        (c) => `  ${c.profile}:
    description: ${c.profile} behind its own PgBouncer
    channels: [${c.channel}]
    strategy: proxy
    source: { host: 127.0.0.1, port: ${source.port}, database: ${c.profile}, user: ${source.user}, password: "\${${SOURCE_PASSWORD_VAR}}", sslmode: disable }
    digitalocean:
      clusterUuid: ${c.cluster}
      database: ${c.profile}
      disableSsl: true
      ignoreDbs: [${['postgres', ...ALL.filter((o) => o !== c).map((o) => o.profile)].join(', ')}]
    proxy:
      kind: pgbouncer
      admin: { host: 127.0.0.1, port: ${c.bouncer!.port}, user: ${c.bouncer!.adminUser}, password: "\${PGBOUNCER_ADMIN_PASSWORD}" }
      database: ${c.profile}
      databasesFile: ${c.bouncer!.databasesFile}
      pauseTimeoutSeconds: 5
    freeze: { budgetSeconds: 30 }
    # The rig's target cannot publish (wal_level replica): accept that a rollback leaves its writes there.
    rollback: { withoutReplicatingBack: accept }
    gates:
      operators: [${UOPS}, ${UOPS2}]
      approvers: [${UAPP}, ${UAPP2}]
      twoPersonRule: true
      flow: step-by-step
    reports: { schedule: "off" }
`,
      ).join('')}`,
    );

  beforeAll(async () => {
    try {
      // test/support/replication-pair.ts's pair, with room for five migrations at once: a slot and a
      // wal sender each on the source; an apply worker and table-sync workers each on the target
      // (PostgreSQL's default of 4 logical replication workers would leave the fifth never syncing).
      [source, target] = await Promise.all([
        startCluster({ logical: true, databases: ALL.map((c) => c.profile), settings: { wal_sender_timeout: "'2s'", max_replication_slots: 20, max_wal_senders: 20 } }),
        startCluster({
          settings: { wal_receiver_status_interval: 1, wal_retrieve_retry_interval: "'200ms'", max_logical_replication_workers: 20, max_worker_processes: 32 },
        }),
      ]);
      await Promise.all(ALL.map((c) => source.query(RIG_SCHEMA, [], c.profile)));
      // The bot's store lives on the target server, so its writes cannot hold up a slot on the source either.
      await target.query('CREATE DATABASE store');
      const connection = { host: target.host, port: target.port, user: target.user, password: new Secret(target.password), database: 'defaultdb' };
      sim = await startDoSimulator({
        token: new Secret(DO_TOKEN),
        logger,
        clusters: Object.fromEntries(ALL.map((c) => [c.cluster, { connection }])),
      });
      slack = await startFakeSlack();
      await Promise.all(
        ALL.map(async (c) => {
          c.bouncer = await startPgBouncer({
            databases: { [c.profile]: { host: source.host, port: source.port, dbname: c.profile } },
            poolMode: 'transaction',
            settings: { query_wait_timeout: 30 },
          });
        }),
      );
      dir = mkdtempSync(join(tmpdir(), 'pgcutover-facts-'));
      writeProfiles();
      storeDb = openPostgres(new Secret(target.connectionString('store')), logger);
      sessions = new SessionStore(storeDb);
      storePool = new pg.Pool({ connectionString: target.connectionString('store'), max: 3 });
      storePool.on('error', () => undefined);
      port = await freePort();
      bot = startBotProcess(botEnv({ slack, doApiUrl: sim.url, storeUrl: target.connectionString('store'), dir, sourcePassword: source.password }, port));
      await bot.waitForHealth(port);
      await Promise.all(ALL.map((c) => command(c, UOPS, `start ${c.profile}`)));
      for (const [c, session] of await Promise.all(ALL.map(async (c) => [c, await waitState(c, 'syncing')] as const))) started.set(c, session);
    } catch (error) {
      await cleanUp();
      throw error;
    }
  }, 120_000);

  const cleanUp = async () => {
    for (const writer of [...writers]) await writer.stop().catch(() => undefined);
    writers.clear();
    await bot?.stop().catch(() => undefined);
    await storePool?.end().catch(() => undefined);
    await storeDb?.close().catch(() => undefined);
    await slack?.close().catch(() => undefined);
    await Promise.all(ALL.map((c) => c.bouncer?.stop().catch(() => undefined)));
    await sim?.stop().catch(() => undefined);
    await Promise.all([source?.stop().catch(() => undefined), target?.stop().catch(() => undefined)]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  };

  afterAll(async () => {
    const output = bot?.output() ?? '';
    await cleanUp();
    for (const secret of BOT_SECRETS) {
      if (output.includes(secret)) throw new Error('a secret appeared in the bot output');
    }
  }, 60_000);

  it('a cutover by the two gates, the switch approved while frozen, then Finish: one row and one line per fact, in order; the summary names who requested and approved each gate', async ({ expect }) => {
    const c = CASES.cutover;
    const session = sessionOf(c);
    const writer = await switchedWhileFrozen(c, session, UOPS2, UAPP2);
    const load = await stopWriter(writer);

    await click(c, UOPS, 'finish');
    await waitState(c, 'finished');
    const t = await settledTrail(c, session, (t) => t.posted.includes('finish:succeeded'));

    expectOneToOne(expect, c, t, [
      'start:requested',
      'start:succeeded',
      'freeze_request:requested',
      'freeze_approve:approved',
      'freeze:succeeded',
      'switch:info',
      'switch_request:requested',
      'switch_approve:approved',
      'switch:succeeded',
      'verify:info',
      'replicate_back:info',
      'finish:succeeded',
    ]);
    const dump = `\n${describeTrail(t)}`;
    const count = (key: string) => t.audited.filter((k) => k === key).length;
    for (const key of ['switch:succeeded', 'freeze:succeeded', 'finish:succeeded']) expect(count(key), `${key} rows${dump}`).toBe(1);

    // Who did what, as the thread says it and as the audit rows record it.
    const row = (key: string) => t.rows.find((r) => `${r.action}:${r.outcome}` === key)!;
    expect(row('freeze_request:requested').actor).toBe(UOPS);
    expect(row('freeze_approve:approved').actor).toBe(UAPP);
    expect(row('switch_request:requested').actor).toBe(UOPS2);
    expect(row('switch_approve:approved')).toMatchObject({ actor: UAPP2, details: { runs: 'now', requestedBy: UOPS2, typedConfirmation: true } });
    expect(row('switch:succeeded')).toMatchObject({ actor: UAPP2, details: { aheadOfTime: false } });
    expect(row('freeze:succeeded')).toMatchObject({ details: { requestedBy: UOPS, approvedBy: UAPP } });
    expect(row('finish:succeeded').actor).toBe(UOPS);

    const line = (key: string) => t.lines.find((l) => l.key === key)!.text;
    const index = (key: string) => t.posted.indexOf(key);
    expect(line('freeze_approve:approved')).toContain(`<@${UAPP}> approved the write freeze requested by <@${UOPS}>`);
    expect(line('freeze:succeeded')).toContain(`Requested by <@${UOPS}>, approved by <@${UAPP}>.`);
    expect(line('switch_approve:approved')).toContain(`<@${UAPP2}> approved the switch requested by <@${UOPS2}> (typed the database name); switching now.`);
    // ":ice_cube: Writes are frozen" comes before "the fence is proven", which comes before the switch.
    expect(index('freeze:succeeded')).toBeLessThan(index('switch:info'));
    expect(index('switch:info')).toBeLessThan(index('switch:succeeded'));
    expect(index('freeze:succeeded')).toBeLessThan(index('switch:succeeded'));

    // The Finish summary names the requester and the approver of each gate, and nothing was ahead of time.
    const summary = line('finish:succeeded');
    expect(summary).toContain(`freeze requested by <@${UOPS}>`);
    expect(summary).toContain(`freeze approved by <@${UAPP}>`);
    expect(summary).toContain(`switch requested by <@${UOPS2}>`);
    expect(summary).toContain(`switch approved by <@${UAPP2}>`);
    expect(summary).not.toMatch(/ahead of time/);
    expect(t.lines.filter((l) => /ahead of time/.test(l.text)).map((l) => l.text)).toEqual([]);

    // The writes went on through PgBouncer: none failed, and the switch moved them to the target.
    expect(load.errors).toBe(0);
    console.info(`facts e2e cutover: ${t.rows.length} audit rows, ${t.lines.length} thread lines; ${load.acked} writes, ${load.errors} errors`);
  });

  it('a switch approved before the freeze runs once the fence is proven, and the summary says "(ahead of time)" for it', async ({ expect }) => {
    const c = CASES.ahead;
    const session = sessionOf(c);
    const writer = writerFor(c);
    await until('writes acknowledged through PgBouncer', () => writer.acked.length > 200);

    // Gate 2 first, while syncing: UOPS2 requests the switch, UAPP2 approves it ahead of time.
    await click(c, UOPS2, 'switch_request');
    await approveSwitch(c, UAPP2);
    await waitAudit(c, session, 'switch_approve:approved');
    // Gate 1: the freeze; the approved switch follows by itself as soon as the fence is proven.
    await click(c, UOPS, 'freeze_request');
    await click(c, UAPP, 'freeze_approve');
    await waitState(c, 'switched');
    await until('writes acknowledged by the target', () => writer.acked.some((a) => a.port === target.port));
    const load = await stopWriter(writer);
    await command(c, UOPS, 'finish');
    await waitState(c, 'finished');
    const t = await settledTrail(c, session, (t) => t.posted.includes('finish:succeeded'));

    expectOneToOne(expect, c, t, [
      'start:requested',
      'start:succeeded',
      'switch_request:requested',
      'switch_approve:approved',
      'freeze_request:requested',
      'freeze_approve:approved',
      'freeze:succeeded',
      'switch:succeeded',
      'verify:info',
      'replicate_back:info',
      'finish:succeeded',
    ]);
    const row = (key: string) => t.rows.find((r) => `${r.action}:${r.outcome}` === key)!;
    expect(row('switch_approve:approved')).toMatchObject({ actor: UAPP2, details: { runs: 'ahead', requestedBy: UOPS2 } });
    expect(row('switch:succeeded')).toMatchObject({ actor: UAPP2, details: { aheadOfTime: true } });
    const line = (key: string) => t.lines.find((l) => l.key === key)!.text;
    expect(line('switch_approve:approved')).toContain(`<@${UAPP2}> approved the switch requested by <@${UOPS2}> ahead of time`);
    expect(line('switch:succeeded')).toContain('(switch approved ahead of time)');
    const summary = line('finish:succeeded');
    expect(summary).toContain(`freeze requested by <@${UOPS}>`);
    expect(summary).toContain(`freeze approved by <@${UAPP}>`);
    expect(summary).toContain(`switch requested by <@${UOPS2}>`);
    expect(summary).toContain(`switch approved by <@${UAPP2}> (ahead of time)`);
    expect(summary.match(/ahead of time/g)).toHaveLength(1);
    expect(load.errors).toBe(0);
    console.info(`facts e2e ahead of time: ${t.rows.length} audit rows, ${t.lines.length} thread lines; ${load.acked} writes, ${load.errors} errors`);
  });

  it('an abort of a syncing session leaves one abort row and one "Aborted" line', async ({ expect }) => {
    const c = CASES.abortSyncing;
    const session = sessionOf(c);
    await command(c, UOPS, 'abort');
    await waitState(c, 'aborted');
    const t = await settledTrail(c, session, (t) => t.posted.includes('abort:succeeded'));

    expectOneToOne(expect, c, t, ['start:requested', 'start:succeeded', 'abort:succeeded']);
    const aborted = t.lines.filter((l) => /Aborted/.test(l.text));
    expect(aborted.map((l) => l.text)).toEqual([`:octagonal_sign: Aborted by <@${UOPS}>: writes go to the source, the DigitalOcean migration is stopped.`]);
    expect(aborted[0]!.broadcast).toBe(true);
    expect(t.rows.find((r) => r.action === 'abort')?.actor).toBe(UOPS);
    expect((await sim.migration(c.cluster))?.status ?? 'none').toMatch(/^(canceled|none)$/);
  });

  it('an abort of a frozen session leaves one abort row and one "Aborted" line, and the held writes go on at the source', async ({ expect }) => {
    const c = CASES.abortFrozen;
    const session = sessionOf(c);
    const writer = writerFor(c);
    await until('writes acknowledged through PgBouncer', () => writer.acked.length > 200);
    await freeze(c);
    await waitAudit(c, session, 'switch:info');
    await click(c, UOPS2, 'abort');
    await waitState(c, 'aborted');
    const abortedAt = Date.now();
    await until('writes acknowledged after the abort', () => writer.acked.some((a) => a.ackedAt > abortedAt));
    const load = await stopWriter(writer);
    const t = await settledTrail(c, session, (t) => t.posted.includes('abort:succeeded'));

    expectOneToOne(expect, c, t, [
      'start:requested',
      'start:succeeded',
      'freeze_request:requested',
      'freeze_approve:approved',
      'freeze:succeeded',
      'switch:info',
      'abort:succeeded',
    ]);
    const aborted = t.lines.filter((l) => /Aborted/.test(l.text));
    expect(aborted.map((l) => l.text)).toEqual([`:octagonal_sign: Aborted by <@${UOPS2}>: writes go to the source, the DigitalOcean migration is stopped.`]);
    expect(aborted[0]!.broadcast).toBe(true);
    expect(load.errors).toBe(0);
    expect(writer.acked.every((a) => a.port === source.port)).toBe(true);
  });

  it('a rollback after a switch leaves one rollback row and one "Rolled back" line', async ({ expect }) => {
    const c = CASES.rollback;
    const session = sessionOf(c);
    const writer = await switchedWhileFrozen(c, session, UOPS, UAPP);
    await click(c, UOPS2, 'rollback');
    await waitState(c, 'rolled_back');
    const rolledBackAt = Date.now();
    await until('writes acknowledged by the source after the rollback', () => writer.acked.some((a) => a.port === source.port && a.sentAt > rolledBackAt));
    const load = await stopWriter(writer);
    const t = await settledTrail(c, session, (t) => t.posted.includes('rollback:succeeded'));

    expectOneToOne(expect, c, t, [
      'start:requested',
      'start:succeeded',
      'freeze_request:requested',
      'freeze_approve:approved',
      'freeze:succeeded',
      'switch:info',
      'switch_request:requested',
      'switch_approve:approved',
      'switch:succeeded',
      'verify:info',
      'replicate_back:info',
      'rollback:succeeded',
    ]);
    const rolledBack = t.lines.filter((l) => /Rolled back/.test(l.text));
    expect(rolledBack).toHaveLength(1);
    expect(rolledBack[0]!.text).toMatch(new RegExp(`^:leftwards_arrow_with_hook: Rolled back by <@${UOPS2}>: writes go to the source again\\.`));
    expect(rolledBack[0]!.broadcast).toBe(true);
    expect(t.rows.find((r) => r.action === 'rollback')?.actor).toBe(UOPS2);
    expect(load.errors).toBe(0);
  });
});
