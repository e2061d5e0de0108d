/**
 * The schema guard on the report ticks of a syncing session, on real replication: a source and a target
 * with the same schema and a subscription carrying the source's rows, the production guard (the source
 * registry's pools, one-connection pools to the target) and observer, the embedded store, a fake clock
 * (a minute per step). A column added on the source while syncing is announced once at the next tick,
 * naming it; the following tick says nothing; the same column added on the target ends the drift, once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogSchemaDriftChecks } from '../../src/adapters/replication/schema-drift-checks.js';
import { SourceObserver, type ObservedProfile } from '../../src/adapters/source/session-observer.js';
import { SourceRegistry, type SourceProfile } from '../../src/adapters/source/source-registry.js';
import { openEmbedded, type Database } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { ReportStateStore } from '../../src/adapters/store/report-state.js';
import { ReportTickStore } from '../../src/adapters/store/report-ticks.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import type { Session } from '../../src/domain/session.js';
import { ReportScheduler } from '../../src/reports/scheduler.js';
import { Secret } from '../../src/secret.js';
import { DATABASE, FORWARD, startBidirectionalPair, type BidirectionalPair } from '../support/bidirectional-pair.js';
import { captureLogger } from '../support/capture-log.js';
import { RecordingPoster } from '../support/report-recording-poster.js';
import { until } from '../support/wait.js';

/** A whole hour a day ahead of the real clock (the session is created now). */
const T0 = Math.ceil(Date.now() / 3_600_000) * 3_600_000 + 24 * 3_600_000;

describe('schema drift announced on the report ticks of a syncing session (real replication)', () => {
  const { logger } = captureLogger('debug');
  let pair: BidirectionalPair;
  let db: Database;
  let sources: SourceRegistry;
  let checks: CatalogSchemaDriftChecks;
  let scheduler: ReportScheduler;
  let session: Session;
  const poster = new RecordingPoster('it-1');
  const clock = { t: new Date(T0), now() { return this.t; } };

  const step = async (minute: number) => {
    clock.t = new Date(T0 + minute * 60_000);
    const summary = await scheduler.tick(clock.t);
    expect(summary.failures).toEqual([]);
    expect(summary.samples).toEqual([session.id]);
    return summary.alerts.filter((a) => a.kind === 'schema_drift');
  };
  const driftAlerts = () => poster.log.flatMap((p) => (p.kind === 'alert' && p.alert.kind === 'schema_drift' ? [p.alert] : []));

  beforeAll(async () => {
    pair = await startBidirectionalPair(async () => undefined);
    db = await openEmbedded(undefined);
    await migrate(db);
    const sessions = new SessionStore(db);
    const created = await sessions.create({ channelId: 'C0SCHEMA', profile: 'orders', strategy: 'proxy', startedBy: 'U1' });
    session = await sessions.transition(created.id, created.version, 'migration_started', { doMigrationId: 'do-mig' });

    const { source, target } = pair;
    const profile: ObservedProfile & SourceProfile = {
      source: { host: source.host, port: source.port, database: DATABASE, user: source.user, password: new Secret(source.password) },
      replication: { slot: FORWARD },
      reports: { schedule: 'every 5m', alerts: { lagBytes: 1 << 30, consecutiveSamples: 3, twoWeekLimitWarningHours: 1 } },
      gates: { operators: ['U0OPS'], maxLagBytesToFreeze: 1 << 24 },
      digitalocean: { clusterUuid: 'c0ffee00-0000-4000-8000-000000000000' },
    };
    const profiles = new Map([['orders', profile]]);
    sources = new SourceRegistry({ profiles, now: () => clock.now() });
    const targetConnection = { host: target.host, port: target.port, database: DATABASE, user: target.user, password: new Secret(target.password), sslmode: 'disable' as const };
    checks = new CatalogSchemaDriftChecks({ sources, target: async () => targetConnection });
    scheduler = new ReportScheduler({
      sessions,
      ticks: new ReportTickStore(db),
      state: new ReportStateStore(db),
      profiles,
      observer: new SourceObserver({ sources, profiles, digitalocean: { getOnlineMigration: async () => undefined }, log: logger, now: () => clock.now() }),
      poster,
      schemaDrift: checks,
      log: logger,
      replicaId: 'it-1',
      clock,
      options: { sampleEverySeconds: 60 },
    });
  }, 120_000);

  afterAll(async () => {
    await scheduler?.stop();
    await checks?.close();
    await sources?.close();
    await db?.close();
    await pair?.stop();
  });

  it('a column added on the source while syncing: one alert naming it at the next tick, none on the following, one when resolved', async () => {
    // Replication runs: a row written on the source arrives on the target.
    await pair.sourcePool.query("INSERT INTO items (note) VALUES ('before the change')");
    await until('the row on the target', async () => (await pair.targetPool.query('SELECT 1 FROM items')).rowCount === 1);
    expect(await step(0)).toEqual([]);

    await pair.sourcePool.query('ALTER TABLE items ADD COLUMN discount numeric(5, 2)');
    expect(await step(1)).toEqual([{ sessionId: session.id, kind: 'schema_drift', action: 'fire' }]);
    expect(driftAlerts()).toHaveLength(1);
    expect(driftAlerts()[0]).toMatchObject({ title: 'schema drift between source and target', operators: ['U0OPS'] });
    expect(driftAlerts()[0]?.text).toMatch(/^public\.items: column discount \(numeric\(5,2\)\) only on the source\. /);

    expect(await step(2)).toEqual([]);
    expect(driftAlerts()).toHaveLength(1);

    await pair.targetPool.query('ALTER TABLE items ADD COLUMN discount numeric(5, 2)');
    expect(await step(3)).toEqual([{ sessionId: session.id, kind: 'schema_drift', action: 'clear' }]);
    expect(await step(4)).toEqual([]);
    expect(driftAlerts().map((a) => a.action)).toEqual(['fire', 'clear']);
  }, 120_000);
});
