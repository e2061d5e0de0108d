/**
 * The approve-first run on the real rig, and a SIGKILL at each of its steps. Both gates are approved
 * through signed Slack requests before anything freezes; the switch approval runs freeze → fence with
 * sequences → repoint → resume in one go, journaling nothing while writes wait. The bot process is
 * killed while it waits in a step (held there by the real parts, not by a hook in the bot):
 *   - the drain: a write transaction left open through PgBouncer, so PAUSE cannot answer;
 *   - the fence: the target's apply blocked by a SHARE lock on the fence table (reads still pass), taken
 *     while PAUSE waits for an open transaction (the catch-up before the freeze must get through);
 *   - the repoint: PgBouncer stopped (SIGSTOP) while the fence is held, then the fence released, so RELOAD hangs;
 *   - right after the switch.
 * And what guards the data around the run: a row removed on the target behind replication's back is
 * caught by the verification at the switch point (Finish refused until acknowledged), and a column
 * added on the source while syncing blocks the run before it freezes (the schema guard).
 * A restarted bot then recovers: writes run again, on the target when the proxy was repointed (the
 * session says switched) or on the source (syncing), and every acknowledged write is where they run.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FENCE_TABLE } from '../../src/adapters/source/fence-table.js';
import { captureLogger } from '../support/capture-log.js';
import { DO_CLUSTER } from '../support/cutover-rig.js';
import { startWriter, type Writer } from '../support/cutover-writer.js';
import { ALICE, startE2eRig, type E2eRig } from '../support/e2e-rig.js';
import { freePort } from '../support/free-port.js';
import type { Cluster } from '../support/pg-cluster.js';
import { sleep, until } from '../support/wait.js';

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
  let rig: E2eRig;
  const cleanups: (() => Promise<unknown>)[] = [];

  /** A fresh rig, a bot, and `/migrate start orders` in the case's channel: the session syncing. */
  const syncingSession = async (key: keyof typeof CHANNEL) => {
    const channel = CHANNEL[key];
    await rig.fresh();
    const port = await freePort();
    const bot = await rig.bots.start(port);
    await rig.people.command(port, channel, ALICE, 'start orders');
    return { channel, port, bot, session: await rig.waitState(channel, 'syncing') };
  };

  /** The first line of `channel`'s thread that matches `pattern`, once there is one. */
  const lineIn = (channel: string, what: string, pattern: RegExp) =>
    until(what, () =>
      rig.people
        .thread(channel)
        .map((m) => m.text)
        .find((t) => pattern.test(t)),
    );

  beforeAll(async () => {
    rig = await startE2eRig({ queryWaitTimeout: 300 }, logger);
    rig.writeProfile({
      channels: Object.values(CHANNEL),
      pauseTimeoutSeconds: 60,
      budgetSeconds: 120,
      more: { replication: { fenceTimeoutSeconds: 60 } },
    });
  }, 120_000);

  afterAll(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup().catch(() => undefined);
    await rig?.stop();
  });

  /** Holds the run in `point` until `kill` resolves; returns what lets it go again. */
  async function holdAt(point: CrashPoint, sessionId: string): Promise<{ kill: () => Promise<void>; release: () => Promise<void> }> {
    const thread = () => rig.people.thread(CHANNEL[point]).map((m) => `  ${m.text}`).join('\n');
    const frozenStarted = () =>
      until('the run journaled its freeze', async () => (await rig.journal.entries(sessionId)).some((e) => e.step === 'freeze' && e.event === 'started') || undefined, 30_000, thread);
    const paused = () => until('PgBouncer paused', async () => ((await rig.entry())?.paused === 1 ? true : undefined), 30_000, thread);
    // A write transaction left open through PgBouncer: PAUSE waits for it (PgBouncer shows the pause at once).
    const open = new pg.Client({ connectionString: rig.bouncer.connectionString('orders') });
    await open.connect();
    await open.query('BEGIN');
    await open.query(`INSERT INTO writes (id, port) VALUES ('open-transaction-${point}', inet_server_port())`);
    cleanups.push(() => open.end());
    const commit = async () => void (await open.query('COMMIT'), await open.end());
    if (point === 'drain') return { kill: async () => void (await frozenStarted(), await sleep(500)), release: commit };
    // The fence waits while the target cannot apply a row into the fence table. The lock is taken once
    // PAUSE waits for the open transaction: the catch-up before the freeze must still get through.
    const lock = new pg.Client({ connectionString: rig.target.connectionString('orders') });
    await lock.connect();
    cleanups.push(() => lock.end());
    const heldInTheFence = async () => {
      await paused();
      await lock.query('BEGIN');
      await lock.query(`LOCK TABLE public.${FENCE_TABLE} IN SHARE MODE`);
      // The drain ends; the run writes its marker, which the target cannot apply.
      await commit();
      await sleep(500);
    };
    const unlock = async () => void (await lock.query('COMMIT'), await lock.end());
    if (point === 'fence') return { kill: heldInTheFence, release: unlock };
    // The repoint: PgBouncer stopped while the fence is held, then the fence let through: RELOAD hangs.
    return {
      kill: async () => {
        await heldInTheFence();
        process.kill(rig.bouncer.pid, 'SIGSTOP');
        await unlock();
        // The fence row arrives; the run goes on to its RELOAD, which the stopped PgBouncer never answers.
        await sleep(1500);
      },
      release: async () => void process.kill(rig.bouncer.pid, 'SIGCONT'),
    };
  }

  for (const point of CRASH_POINTS) {
    it(`killed ${point === 'after the switch' ? point : `in the ${point}`}: the restarted bot ends with writes running and nothing lost`, async () => {
      const started = await syncingSession(point);
      const { channel, port } = started;
      let { bot, session } = started;
      let writer: Writer | undefined = startWriter(rig.bouncer.connectionString('orders'), { prefix: `run-${point.replace(/ /g, '-')}`, workers: 4, maxDurationMs: 180_000 });
      cleanups.push(async () => writer?.stop());
      await until('writes flowing', () => (writer!.acked.length > 50 ? true : undefined));

      await rig.requestBothAndApproveFreeze(port, channel, session.id);
      expect((await rig.sessions.require(session.id)).state).toBe('syncing');
      expect((await rig.entry())?.paused).toBe(0);
      const hold = point === 'after the switch' ? undefined : await holdAt(point, session.id);
      // The bot dies while the run is held: the submission may never be answered.
      void (await rig.approveSwitch(port, channel)).submitted.catch(() => undefined);
      if (hold) await hold.kill();
      else await rig.waitState(channel, 'switched');
      expect(await rig.bots.kill(bot)).toBe('SIGKILL');
      await hold?.release();

      bot = await rig.bots.start(port);
      const settled = await until('the session settled after the restart', async () => {
        const s = await rig.sessions.require(session.id);
        return s.state === 'switched' || s.state === 'syncing' ? s : undefined;
      }, 60_000);
      const row = await until('PgBouncer running again', async () => {
        const r = await rig.entry();
        return r && r.paused === 0 ? r : undefined;
      });
      // Writes run where the session says they do.
      expect(row.port).toBe(settled.state === 'switched' ? rig.target.port : rig.source.port);
      if (point === 'drain' || point === 'fence') expect(settled.state).toBe('syncing');
      if (point === 'after the switch') expect(settled.state).toBe('switched');
      const resumedAt = Date.now();
      await until('writes acknowledged after the restart', () => (writer!.acked.some((a) => a.ackedAt > resumedAt + 200) ? true : undefined), 60_000);
      const load = writer;
      writer = undefined;
      await load.stop();
      expect(load.errors).toEqual([]);
      // Every acknowledged write is where writes run now (the target has the source's by replication).
      const on = settled.state === 'switched' ? rig.target : rig.source;
      const ids = load.acked.map((a) => a.id);
      const rows = await on.query<{ id: string }>('SELECT id FROM writes WHERE id = ANY($1::text[])', [ids], 'orders');
      const present = new Set(rows.map((r) => r.id));
      expect(load.acked.filter((a) => !present.has(a.id))).toEqual([]);
      const thread = rig.people.thread(channel).map((m) => m.text).join('\n');
      if (point !== 'after the switch') expect(thread).toMatch(/after a restart/i);
      console.info(`run crash (${point}): settled ${settled.state}, ${load.acked.length} writes acknowledged, 0 errors, 0 lost`);

      // The next case needs the cluster's migration stopped: finish or abort this session.
      session = await rig.sessions.require(session.id);
      await rig.people.command(port, channel, ALICE, session.state === 'switched' ? 'finish' : 'abort');
      await rig.waitState(channel, session.state === 'switched' ? 'finished' : 'aborted');
      await rig.bots.stop(bot);
    }, 300_000);
  }

  it('a row removed on the target behind replication\'s back is caught at the switch point, the table named; Finish is refused until acknowledged', async () => {
    const { channel, port, bot, session } = await syncingSession('verify');
    await rig.source.query("INSERT INTO writes (id, port) SELECT 'verify-' || g, 0 FROM generate_series(1, 100) g", [], 'orders');
    const count = async (on: Cluster) => (await on.query<{ n: number }>("SELECT count(*)::int AS n FROM writes WHERE id LIKE 'verify-%'", [], 'orders'))[0]?.n;
    await until('the rows on the target', async () => ((await count(rig.target)) === 100 ? true : undefined));
    await rig.target.query("DELETE FROM writes WHERE id = 'verify-42'", [], 'orders');
    await rig.approveBoth(port, channel, session.id);
    await rig.waitState(channel, 'switched');
    const finding = await lineIn(channel, 'the verification in the thread', /Verification at the switch point/);
    expect(finding).toMatch(/`public\.writes` \(\d+ rows on the source, \d+ on the target\)/);

    // Finish is refused (nothing stopped), then goes through once acknowledged.
    await rig.people.command(port, channel, ALICE, 'finish');
    // The refusal itself (the verification's warning above names the same command).
    await lineIn(channel, 'the refusal', /Finish failed: .*acknowledge-differences\W{0,2} finishes anyway/);
    expect((await rig.sessions.require(session.id)).state).toBe('switched');
    expect((await rig.sim.migration(DO_CLUSTER))?.status).toBe('syncing');
    await rig.people.command(port, channel, ALICE, 'finish --acknowledge-differences');
    await rig.waitState(channel, 'finished');
    expect((await rig.journal.latestCutover(session.id))?.verification).toMatchObject({ outcome: 'different', acknowledgedBy: ALICE, differing: [{ table: 'public.writes' }] });
    await rig.bots.stop(bot);
  }, 300_000);

  // Last: it leaves a column on the source the other cases' rig does not expect.
  it('a column added on the source while syncing blocks the run: nothing freezes, the thread names the difference', async () => {
    const { channel, port, bot, session } = await syncingSession('drift');
    await rig.source.query('ALTER TABLE writes ADD COLUMN note text', [], 'orders');
    await rig.approveBoth(port, channel, session.id);
    const refusal = await lineIn(channel, 'the refusal in the thread', /not frozen/i);
    expect(refusal).toMatch(/schema .*public\.writes: column note \(text\) only on the source/);
    expect((await rig.sessions.require(session.id)).state).toBe('syncing');
    expect(readFileSync(rig.bouncer.logFile, 'utf8')).not.toMatch(/PAUSE/i);
    await rig.people.command(port, channel, ALICE, 'abort');
    await rig.waitState(channel, 'aborted');
    await rig.bots.stop(bot);
  }, 300_000);
});
