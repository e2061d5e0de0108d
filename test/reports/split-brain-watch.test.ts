/**
 * The split-brain watch as the report scheduler runs it, on a real source cluster: a switched session's
 * sample ticks look for writes made directly on the source (the production watches on the source
 * registry's pool, the embedded store, a fake clock a minute per step). A direct write raises one alert
 * at the next sample tick naming the client, a tick without new writes raises none, new writes raise
 * the next one, and the housekeeping's sweep removes the slot of a session that ended while nobody
 * stopped its watch (a crash).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceSplitBrainWatches } from '../../src/adapters/replication/split-brain-watches.js';
import { WATCH_PREFIX } from '../../src/adapters/replication/split-brain-watch.js';
import { SlotLagProbe } from '../../src/adapters/source/lag-probe.js';
import { SourceRegistry, type SourceProfile } from '../../src/adapters/source/source-registry.js';
import { openEmbedded, type Database } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { ReportStateStore } from '../../src/adapters/store/report-state.js';
import { ReportTickStore } from '../../src/adapters/store/report-ticks.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import type { Session } from '../../src/domain/session.js';
import type { ReportProfile, SessionObserver } from '../../src/reports/ports.js';
import { ReportScheduler } from '../../src/reports/scheduler.js';
import { Secret } from '../../src/secret.js';
import { captureLogger } from '../support/capture-log.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';
import { RecordingPoster } from '../support/report-recording-poster.js';

/** A whole hour a day ahead of the real clock (the session is created now). */
const T0 = Math.ceil(Date.now() / 3_600_000) * 3_600_000 + 24 * 3_600_000;

/** Switched sessions get no lag report: the scheduler must not measure them. */
const noObserver: SessionObserver = {
  observe: () => Promise.reject(new Error('a switched session was observed for a lag report')),
};

describe('the split-brain watch on the report ticks of a switched session (real source)', () => {
  const { logger } = captureLogger('debug');
  let source: Cluster;
  let db: Database;
  let sessions: SessionStore;
  let sources: SourceRegistry;
  let scheduler: ReportScheduler;
  let session: Session;
  const poster = new RecordingPoster('it-1');
  const clock = { t: new Date(T0), now() { return this.t; } };
  const rogue = () => new pg.Client({ connectionString: source.connectionString('orders'), application_name: 'rogue-client' });

  const step = async (minute: number) => {
    clock.t = new Date(T0 + minute * 60_000);
    const summary = await scheduler.tick(clock.t);
    expect(summary.failures).toEqual([]);
    return summary;
  };
  const alerts = () => poster.log.flatMap((p) => (p.kind === 'alert' ? [p.alert] : []));
  const watchSlots = async () =>
    (await source.query<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots WHERE starts_with(slot_name, $1)', [WATCH_PREFIX])).map((r) => r.slot_name);

  beforeAll(async () => {
    source = await startCluster({ logical: true, databases: ['orders'] });
    await source.query('CREATE TABLE items (id bigserial PRIMARY KEY, note text NOT NULL)', [], 'orders');
    db = await openEmbedded(undefined);
    await migrate(db);
    sessions = new SessionStore(db);
    const created = await sessions.create({ channelId: 'C0WATCH', profile: 'orders', strategy: 'proxy', startedBy: 'U1' });
    let s = await sessions.transition(created.id, created.version, 'migration_started', { doMigrationId: 'do-mig' });
    s = await sessions.transition(s.id, s.version, 'freeze');
    session = await sessions.transition(s.id, s.version, 'switch');

    const profile: ReportProfile & SourceProfile = {
      source: { host: source.host, port: source.port, database: 'orders', user: source.user, password: new Secret(source.password) },
      replication: { slot: 'auto' },
      reports: { schedule: 'every 5m', alerts: { lagBytes: 1024, consecutiveSamples: 1, twoWeekLimitWarningHours: 1 } },
      gates: { operators: ['U0OPS'], maxLagBytesToFreeze: 1024 },
    };
    const profiles = new Map([['orders', profile]]);
    sources = new SourceRegistry({ profiles });
    scheduler = new ReportScheduler({
      sessions,
      ticks: new ReportTickStore(db),
      state: new ReportStateStore(db),
      profiles,
      observer: noObserver,
      poster,
      splitBrain: new SourceSplitBrainWatches({ sources, profiles: ['orders'], sessions, log: logger }),
      log: logger,
      replicaId: 'it-1',
      clock,
      options: { sampleEverySeconds: 60, housekeepingEveryMs: 60_000 },
    });
  }, 120_000);

  afterAll(async () => {
    await scheduler?.stop();
    await sources?.close();
    await db?.close();
    await source?.stop();
  });

  it('alerts once per batch of direct writes, naming the client, and leaves no slot once the session ended', async () => {
    // The first tick of the switched session starts its watch: nothing written yet, nothing said.
    expect((await step(0)).samples).toEqual([session.id]);
    expect(await watchSlots()).toHaveLength(1);
    expect(alerts()).toEqual([]);
    // The watch's slot is never taken for the migration's (`auto`): it is active whenever the watch reads it.
    const probe = new SlotLagProbe({ source: sources.pool('orders'), slot: 'auto' });
    expect(await probe.measure()).toMatchObject({ known: false, reason: expect.stringMatching(/^no logical replication slot on the source database/) });

    const client = rogue();
    await client.connect();
    try {
      // The rig runs with synchronous_commit off; a watch sees what the source has flushed.
      await client.query('SET synchronous_commit = on');
      await client.query("INSERT INTO items (note) VALUES ('one'), ('two')");
      await client.query("INSERT INTO items (note) VALUES ('three')");

      const first = await step(1);
      expect(first.alerts).toEqual([{ sessionId: session.id, kind: 'split_brain', action: 'fire' }]);
      expect(alerts()).toHaveLength(1);
      const [alert] = alerts();
      expect(alert).toMatchObject({ kind: 'split_brain', action: 'fire', title: 'writes on the source after the switch', operators: ['U0OPS'] });
      expect(alert?.text).toContain('2 transactions (3 changes) to public.items committed on the source since the last check');
      expect(alert?.text).toContain(`127.0.0.1, application "rogue-client", user ${source.user}`);

      // Nothing new: no second alert for the same writes.
      expect((await step(2)).alerts).toEqual([]);

      await client.query("UPDATE items SET note = 'changed on the old primary' WHERE note = 'one'");
      expect((await step(3)).alerts).toEqual([{ sessionId: session.id, kind: 'split_brain', action: 'fire' }]);
      expect(alerts()[1]?.text).toContain('1 transaction (1 change) to public.items');
    } finally {
      await client.end();
    }

    // The session ends and nobody stops its watch (the bot died first): the next sweep removes the slot.
    const current = await sessions.require(session.id);
    await sessions.transition(current.id, current.version, 'finish');
    expect(await watchSlots()).toHaveLength(1);
    const last = await step(4);
    expect(last.samples).toEqual([]);
    expect(await watchSlots()).toEqual([]);
    expect(alerts()).toHaveLength(2);
  }, 120_000);
});
