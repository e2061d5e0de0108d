/**
 * A rollback that loses nothing, on the real rig, driven through signed Slack requests to the bot
 * process: the target is logical (as DigitalOcean's clusters are), so after an approve-first cutover
 * behind PgBouncer the bot stops DigitalOcean's migration and subscribes the source to the target from
 * the switch point. Writes continue through PgBouncer onto the target, then a rollback (reverse fence,
 * sequences back, repoint, resume), then more writes on the source: every acknowledged write, before
 * the switch, on the target after it and after the rollback, is on the source, and no id was handed
 * out twice. The session stays open after the rollback; ending it leaves no replication slot,
 * subscription or publication of ours on either side.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WATCH_PREFIX } from '../../src/adapters/replication/split-brain-watch.js';
import { captureLogger } from '../support/capture-log.js';
import { DO_CLUSTER } from '../support/cutover-rig.js';
import { startWriter, type Writer } from '../support/cutover-writer.js';
import { ALICE, BOB, startE2eRig, type E2eRig } from '../support/e2e-rig.js';
import { freePort } from '../support/free-port.js';
import { until } from '../support/wait.js';

const CHANNEL = 'C0ROLLBACK';
const DATABASES = ['orders', 'orders2'] as const;

/** Our replication objects on one side: slots, publications and subscriptions named pgcutover… */
const OURS = `
  SELECT 'slot ' || slot_name AS name FROM pg_replication_slots WHERE slot_name LIKE 'pgcutover%'
  UNION ALL SELECT 'publication ' || pubname FROM pg_publication WHERE pubname LIKE 'pgcutover%'
  UNION ALL SELECT 'subscription ' || subname FROM pg_subscription WHERE subname LIKE 'pgcutover%'`;

describe('a rollback that loses nothing, on the real rig through Slack', () => {
  const { logger } = captureLogger('info');
  let rig: E2eRig;
  let writers: Writer[] = [];

  const thread = () => rig.people.thread(CHANNEL).map((m) => m.text);
  const threadText = () => thread().join('\n');

  beforeAll(async () => {
    rig = await startE2eRig({ databases: [...DATABASES], queryWaitTimeout: 120, replicateBack: true }, logger);
    rig.writeProfile({ channels: [CHANNEL], pauseTimeoutSeconds: 60, budgetSeconds: 120, more: { replication: { fenceTimeoutSeconds: 60 } } });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(writers.map((w) => w.stop().catch(() => undefined)));
    await rig?.stop();
  });

  it('every acknowledged write ends on the source; ending the session leaves nothing of ours', async () => {
    const port = await freePort();
    const bot = await rig.bots.start(port);
    await rig.people.command(port, CHANNEL, ALICE, 'start orders');
    const session = await rig.waitState(CHANNEL, 'syncing');
    writers = DATABASES.map((db) => startWriter(rig.bouncer.connectionString(db), { prefix: db, workers: 3, maxDurationMs: 300_000 }));
    const onPort = (w: Writer, port: number, after = 0) => w.acked.filter((a) => a.port === port && a.sentAt > after).length;
    await until('writes flowing', () => (writers.every((w) => w.acked.length > 50) ? true : undefined));

    await rig.approveBoth(port, CHANNEL, session.id);
    await rig.waitState(CHANNEL, 'switched');
    await until('replicating back', () => thread().find((t) => t.startsWith(':repeat: Replicating back')), 60_000, threadText);
    // DigitalOcean's migration is stopped: the forward stream must end before the reverse one starts.
    expect((await rig.sim.migration(DO_CLUSTER))?.status).not.toMatch(/^(running|syncing)$/);
    await until('a few hundred writes on the target in each database', () => (writers.every((w) => onPort(w, rig.target.port) > 200) ? true : undefined), 60_000);

    await rig.people.click(port, CHANNEL, BOB, 'rollback');
    await rig.waitState(CHANNEL, 'rolled_back');
    const rolledBack = await until('the rollback told', () => thread().find((t) => t.includes('Rolled back by')), 60_000, threadText);
    expect(rolledBack).toContain('was on the source before writes went back');
    const rolledBackAt = Date.now();
    // The split-brain watch ends with the rollback: writes belong on the source again.
    const watchSlots = () => rig.source.query("SELECT slot_name FROM pg_replication_slots WHERE starts_with(slot_name, $1)", [WATCH_PREFIX], 'orders');
    await until('the split-brain watch removed', async () => ((await watchSlots()).length === 0 ? true : undefined), 30_000);
    await until('writes on the source after the rollback', () => (writers.every((w) => onPort(w, rig.source.port, rolledBackAt) > 100) ? true : undefined), 60_000);

    const loads = writers;
    writers = [];
    await Promise.all(loads.map((w) => w.stop()));
    for (const [i, db] of DATABASES.entries()) {
      const load = loads[i]!;
      expect(load.errors).toEqual([]);
      const onTarget = load.acked.filter((a) => a.port === rig.target.port);
      expect(onTarget.length).toBeGreaterThan(200);
      // Every acknowledged write is on the source: before the switch, on the target after it, after the rollback.
      const rows = await rig.source.query<{ id: string }>('SELECT id FROM writes', [], db);
      const onSource = new Set(rows.map((r) => r.id));
      expect(load.acked.filter((a) => !onSource.has(a.id)).map((a) => `${db}: ${a.id} (port ${a.port})`)).toEqual([]);
      // No id handed out twice: the source's sequence went past every id the target handed out.
      expect(new Set(load.acked.map((a) => a.n)).size).toBe(load.acked.length);
      const lastOnTarget = Math.max(...onTarget.map((a) => a.n));
      expect(load.acked.filter((a) => a.port === rig.source.port && a.sentAt > rolledBackAt).every((a) => a.n > lastOnTarget)).toBe(true);
    }

    // The session stays open after the rollback, with a way to end it.
    expect((await rig.sessions.require(session.id)).state).toBe('rolled_back');
    await rig.people.click(port, CHANNEL, ALICE, 'abort');
    await rig.waitState(CHANNEL, 'aborted');
    for (const db of DATABASES) {
      expect(await rig.source.query(OURS, [], db)).toEqual([]);
      expect(await rig.target.query(OURS, [], db)).toEqual([]);
    }
    await rig.bots.stop(bot);
  }, 420_000);
});
