/**
 * The split-brain guard on the real rig, driven through signed Slack requests to the bot process:
 * an approve-first cutover behind PgBouncer (writes continuing through it onto the target), then a
 * client that bypasses the proxy writes on the old source. The first sample tick after that write
 * raises the alert in the thread naming the client's address, application name and user; legitimate
 * writes through PgBouncer raise none. After /migrate finish nothing of the watch is left on the
 * source (a slot left behind would retain WAL for ever).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WATCH_PREFIX } from '../../src/adapters/replication/split-brain-watch.js';
import { ReportTickStore } from '../../src/adapters/store/report-ticks.js';
import { captureLogger } from '../support/capture-log.js';
import { startWriter, type Writer } from '../support/cutover-writer.js';
import { ALICE, startE2eRig, type E2eRig } from '../support/e2e-rig.js';
import { freePort } from '../support/free-port.js';
import { until } from '../support/wait.js';

const CHANNEL = 'C0SPLITBRAIN';

describe('the split-brain guard on the real rig, through Slack', () => {
  const { logger } = captureLogger('info');
  let rig: E2eRig;
  let writer: Writer | undefined;
  let rogue: pg.Client | undefined;

  const thread = () => rig.people.thread(CHANNEL).map((m) => m.text);
  const watchSlots = async () =>
    (await rig.source.query<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots WHERE starts_with(slot_name, $1)', [WATCH_PREFIX])).map((r) => r.slot_name);

  beforeAll(async () => {
    rig = await startE2eRig({ queryWaitTimeout: 120 }, logger);
    // Reports as often as they go (every minute); the alerts' sample tick is every minute too.
    rig.writeProfile({
      channels: [CHANNEL],
      pauseTimeoutSeconds: 60,
      budgetSeconds: 120,
      more: { replication: { fenceTimeoutSeconds: 60 }, reports: { schedule: 'every 1m' } },
    });
  }, 120_000);

  afterAll(async () => {
    await rogue?.end().catch(() => undefined);
    await writer?.stop().catch(() => undefined);
    await rig?.stop();
  });

  it('a direct write on the source after the switch raises the alert at the next tick; finish leaves no slot', async () => {
    const port = await freePort();
    const bot = await rig.bots.start(port);
    await rig.people.command(port, CHANNEL, ALICE, 'start orders');
    const session = await rig.waitState(CHANNEL, 'syncing');
    writer = startWriter(rig.bouncer.connectionString('orders'), { prefix: 'split-brain', workers: 2, maxDurationMs: 300_000 });
    await until('writes flowing', () => (writer!.acked.length > 20 ? true : undefined));

    // Approve first: Alice requests both gates, Bob approves the freeze, then the switch with the typed name.
    await rig.approveBoth(port, CHANNEL, session.id);
    await rig.waitState(CHANNEL, 'switched');
    // The switch started the watch: from here on every write on the source is seen.
    await until('the watch on the source', async () => ((await watchSlots()).length === 1 ? true : undefined), 60_000, () => thread().join('\n'));
    await until('writes continuing on the target', () => (writer!.acked.some((a) => a.port === rig.target.port) ? true : undefined), 60_000);

    // A client that bypasses PgBouncer writes on the old source, and stays connected.
    rogue = new pg.Client({ connectionString: rig.source.connectionString('orders'), application_name: 'rogue-client' });
    await rogue.connect();
    // The rig runs with synchronous_commit off; the watch sees what the source has flushed.
    await rogue.query('SET synchronous_commit = on');
    await rogue.query("INSERT INTO writes (id, port) VALUES ('rogue-1', inet_server_port())");
    await rogue.query("INSERT INTO writes (id, port) VALUES ('rogue-2', inet_server_port()), ('rogue-3', inet_server_port())");
    const writtenAt = Date.now();

    // Within one tick: no sample tick of the session completes after the write without the alert in
    // the thread (the scheduler posts before it completes the tick).
    const ticks = new ReportTickStore(rig.storeDb);
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
    expect(alert).toContain(`127.0.0.1, application "rogue-client", user ${rig.source.user}`);
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

    await rig.people.command(port, CHANNEL, ALICE, 'finish');
    await rig.waitState(CHANNEL, 'finished');
    await until('no watch slot left on the source', async () => ((await watchSlots()).length === 0 ? true : undefined), 60_000);
    const ours = await rig.source.query<{ slot_name: string }>("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'pgcutover%'");
    expect(ours).toEqual([]);
    await rig.bots.stop(bot);
  }, 420_000);
});
