/**
 * A session covers every database DigitalOcean migrates. The source has three databases: `app` (the
 * profile's), `app2` (migrated too) and `app3` (in ignore_dbs), each behind its own PgBouncer entry. The
 * built bot, driven only through signed Slack requests, cuts over while clients write to app and app2
 * through PgBouncer: nothing acknowledged is lost on either, the sequences of both are ahead on the
 * target, and app3 is untouched (never paused, never repointed, no fence table, not on the target).
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FENCE_TABLE } from '../../src/adapters/source/fence-table.js';
import { captureLogger } from '../support/capture-log.js';
import { DO_CLUSTER } from '../support/cutover-rig.js';
import { startWriter, type Ack, type Writer } from '../support/cutover-writer.js';
import { ALICE, BOB, startE2eRig, type E2eRig } from '../support/e2e-rig.js';
import { freePort } from '../support/free-port.js';
import type { Cluster } from '../support/pg-cluster.js';
import { sleep, until } from '../support/wait.js';

const CHANNEL = 'C0EVERYDB';
const MIGRATED = ['app', 'app2'] as const;
/** PgBouncer's entries, one per database (the preflight's temporary probe entries aside). */
const ENTRIES = ['app', 'app2', 'app3'];

describe('every migrated database: Slack → bot process → three databases behind PgBouncer', () => {
  const { logger } = captureLogger('info');
  let rig: E2eRig;
  const writers: Writer[] = [];

  const entries = async () =>
    Object.fromEntries((await rig.entries()).filter((r) => ENTRIES.includes(r.name)).map((r) => [r.name, { port: Number(r.port), paused: Number(r.paused) }]));
  /** How often PgBouncer logged a PAUSE of `entry` (it logs each admin command it runs). */
  const pausesOf = (entry: string) => readFileSync(rig.bouncer.logFile, 'utf8').split(`PAUSE '${entry}' command issued`).length - 1;
  /** Every sequence of `database` on one server, by name, with its last value (null: never used). */
  const sequences = async (cluster: Cluster, database: string) =>
    Object.fromEntries(
      (await cluster.query<{ name: string; last: string | null }>('SELECT sequencename AS name, last_value::text AS last FROM pg_sequences', [], database)).map(
        (r) => [r.name, r.last === null ? null : BigInt(r.last)],
      ),
    );

  beforeAll(async () => {
    rig = await startE2eRig({ databases: ['app', 'app2', 'app3'], queryWaitTimeout: 30 }, logger);
    rig.writeProfile({ channels: [CHANNEL], ignoreDbs: ['app3', 'store', 'postgres'], pauseTimeoutSeconds: 5, budgetSeconds: 30 });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(writers.map((w) => w.stop().catch(() => undefined)));
    await rig?.stop('SIGTERM');
  });

  it('cuts over app and app2 under writes without losing one, sequences of both ahead, app3 untouched', async () => {
    const port = await freePort();
    await rig.bots.start(port);
    const p = rig.people;

    await p.command(port, CHANNEL, ALICE, 'start app');
    await rig.waitState(CHANNEL, 'syncing');
    expect((await rig.sim.migration(DO_CLUSTER))?.databases).toEqual([...MIGRATED]);

    const [appWriter, app2Writer] = MIGRATED.map((db) => startWriter(rig.bouncer.connectionString(db), { prefix: db, workers: 4, maxDurationMs: 180_000 }));
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
    const app3Line = readFileSync(rig.bouncer.databasesFile, 'utf8').split('\n').find((l) => l.startsWith('app3 '));
    await p.click(port, CHANNEL, ALICE, 'freeze_request');
    await p.click(port, CHANNEL, BOB, 'freeze_approve');
    // The approval changes the session's version (and, step by step, freezes): click on the message after it.
    await until('the freeze approval in the thread', () => p.thread(CHANNEL).some((m) => m.text.includes('approved the write freeze')) || undefined);
    await p.click(port, CHANNEL, ALICE, 'switch_request');
    const { submitted } = await rig.approveSwitch(port, CHANNEL, 'app');
    expect((await submitted).status).toBe(200);
    await rig.waitState(CHANNEL, 'switched');
    expect(pausesOf('app')).toBeGreaterThan(0);
    expect(pausesOf('app2')).toBeGreaterThan(0);
    expect(pausesOf('app3')).toBe(0);
    const file = readFileSync(rig.bouncer.databasesFile, 'utf8').split('\n');
    expect(file.filter((l) => l.includes('app3'))).toEqual([app3Line]);
    expect(await entries()).toEqual({
      app: { port: rig.target.port, paused: 0 },
      app2: { port: rig.target.port, paused: 0 },
      app3: { port: rig.source.port, paused: 0 },
    });

    const onTarget = (w: Writer) => w.acked.filter((a) => a.port === rig.target.port).length;
    await until('writes acknowledged by the target on both databases', () => (onTarget(appWriter!) > 200 && onTarget(app2Writer!) > 200) || undefined, 60_000);
    await p.command(port, CHANNEL, ALICE, 'finish');
    const session = await rig.waitState(CHANNEL, 'finished');
    await Promise.all(writers.map((w) => w.stop()));

    for (const [db, writer] of [
      ['app', appWriter!],
      ['app2', app2Writer!],
    ] as const) {
      // Not one write failed, and every acknowledged one is on the target.
      expect(writer.errors, db).toEqual([]);
      const ids = writer.acked.map((a: Ack) => a.id);
      const present = new Set((await rig.target.query<{ id: string }>('SELECT id FROM writes WHERE id = ANY($1::text[])', [ids], db)).map((r) => r.id));
      expect(writer.acked.filter((a) => !present.has(a.id)), db).toEqual([]);
      const fromSource = writer.acked.filter((a) => a.port === rig.source.port);
      const fromTarget = writer.acked.filter((a) => a.port === rig.target.port);
      expect(fromSource.length, db).toBeGreaterThan(0);
      expect(Math.min(...fromTarget.map((a) => a.n)), db).toBeGreaterThan(Math.max(...fromSource.map((a) => a.n)));
      // Every sequence of the application is ahead on the target (the copy, or new rows after it). The
      // bot's own fence marker sequence is left out: the marker is written while the sequences are copied,
      // and the target never uses it (markers are only ever written on the source).
      const [onSource, onTargetSeq] = await Promise.all([sequences(rig.source, db), sequences(rig.target, db)]);
      delete onSource[`${FENCE_TABLE}_id_seq`];
      const behind = Object.entries(onSource).filter(([name, last]) => last !== null && !((onTargetSeq[name] ?? null) !== null && onTargetSeq[name]! > last));
      expect(behind.map(([name, last]) => `${db}.${name}: source ${last}, target ${onTargetSeq[name]}`)).toEqual([]);
    }

    // app3 was never part of it: no fence table on the source, no database on the target, still on the source.
    expect(await rig.source.query('SELECT to_regclass($1) AS t', ['public.pgcutover_fence'], 'app3')).toEqual([{ t: null }]);
    expect(await rig.target.query('SELECT datname FROM pg_database WHERE datname = $1', ['app3'])).toEqual([]);
    const direct = new pg.Client({ connectionString: rig.bouncer.connectionString('app3') });
    await direct.connect();
    try {
      const { rows } = await direct.query<{ port: number }>('SELECT inet_server_port() AS port');
      expect(rows[0]?.port).toBe(rig.source.port);
    } finally {
      await direct.end();
    }
    const thread = p.thread(CHANNEL).map((m) => m.text);
    expect(thread.filter((t) => t.startsWith(':x:'))).toEqual([]);
    const attempt = await rig.journal.latestCutover(session.id);
    expect(attempt?.fence?.databases?.map((d) => d.database)).toEqual([...MIGRATED]);
    console.info(
      `every database: app ${appWriter!.acked.length} writes, app2 ${app2Writer!.acked.length} writes, 0 failed, 0 lost; ` +
        `frozen ${attempt!.resumedAt!.getTime() - attempt!.frozenAt!.getTime()} ms, fences ${attempt?.fence?.databases?.map((d) => `${d.database} ${d.elapsedMs} ms`).join(', ')}`,
    );
  }, 240_000);
});
