/**
 * The DigitalOcean-aware preflight on real clusters and the DO simulator: DO's slots and publications
 * (aiven-db-migrate names) on a source with two migrated databases and two ignored, a slot whose WAL
 * is past max_slot_wal_keep_size (`unreserved`), an application role whose login to the target fails
 * (a placeholder password), a migrated database missing on the target, and a source on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalOceanClient } from '../../src/adapters/digitalocean/digitalocean-client.js';
import { databaseRunner, loginAs } from '../../src/adapters/source/do-preflight-facts.js';
import { pool } from '../../src/adapters/source/connect.js';
import { runPreflight, type PreflightDeps } from '../../src/adapters/source/preflight-gatherer.js';
import type { PreflightItem } from '../../src/domain/preflight.js';
import { createLogger } from '../../src/log.js';
import { Secret } from '../../src/secret.js';
import { startDoSimulator, type DoSimulator } from '../../src/simulator/digitalocean/index.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';

const TOKEN = 'dop_v1_do_preflight';
const CLUSTER = '33333333-4444-4555-8666-777777777777';
const APP_PASSWORD = 'the-password-the-app-uses';
const log = createLogger('silent');

describe('DigitalOcean-aware preflight on real clusters', () => {
  let source: Cluster;
  let target: Cluster;
  let sim: DoSimulator;
  let sourcePool: ReturnType<typeof pool>;

  beforeAll(async () => {
    [source, target] = await Promise.all([
      // A tiny max_slot_wal_keep_size and no checkpoint: a slot behind a few WAL segments is `unreserved`.
      startCluster({
        logical: true,
        databases: ['orders', 'reports', 'scratch'],
        settings: { max_slot_wal_keep_size: "'1MB'", checkpoint_timeout: "'1h'", max_wal_size: "'1GB'" },
      }),
      startCluster({ databases: ['orders'] }),
    ]);
    // What DO's engine leaves on the source for each migrated database (ignored: scratch, postgres).
    for (const db of ['orders', 'reports']) {
      await source.query(`CREATE PUBLICATION aiven_db_migrate_${db}_pub FOR ALL TABLES`, [], db);
      await source.query(`SELECT pg_create_logical_replication_slot('aiven_db_migrate_${db}_slot', 'pgoutput')`, [], db);
    }
    // DO's migration creates roles on the target with placeholder passwords.
    await target.query("CREATE ROLE app LOGIN PASSWORD 'placeholder_0123456789abcdef'");
    sim = await startDoSimulator({
      token: new Secret(TOKEN),
      logger: log,
      clusters: {
        [CLUSTER]: { connection: { host: target.host, port: target.port, user: target.user, password: new Secret(target.password), database: 'defaultdb' } },
      },
    });
    sourcePool = pool({ host: source.host, port: source.port, database: 'orders', user: source.user, password: new Secret(source.password) });
  });

  afterAll(async () => {
    await sourcePool?.end();
    await sim?.stop();
    await Promise.all([source?.stop(), target?.stop()]);
  });

  const deps = (overrides: Partial<PreflightDeps> = {}): PreflightDeps => ({
    source: sourcePool,
    migrationUser: source.user,
    ignoreDbs: ['scratch', 'postgres'],
    api: new DigitalOceanClient({ token: new Secret(TOKEN), baseUrl: sim.url, logger: log }),
    clusterUuid: CLUSTER,
    sourceHost: '127.0.0.1',
    digitalocean: {
      sourceIn: databaseRunner({ host: source.host, port: source.port, database: 'orders', user: source.user, password: new Secret(source.password) }),
      targetDatabase: 'orders',
      appLogin: { user: 'app', login: loginAs({ host: target.host, port: target.port, database: 'orders', user: 'app', password: new Secret(APP_PASSWORD) }) },
      doIsRemote: true,
    },
    ...overrides,
  });
  const checks = (items: PreflightItem[], check: string) => items.filter((i) => i.check === check);

  it('finds DO\'s slot and publication for each migrated database, none for the ignored ones', async () => {
    const replication = checks(await runPreflight(deps(), 'before-freeze'), 'do_replication');
    // Nobody consumes the slots here: found, but not active.
    expect(replication.map((i) => [i.status, i.detail])).toEqual([
      ['warn', 'orders: slot aiven_db_migrate_orders_slot is not active: DigitalOcean is not connected to it right now.'],
      ['warn', 'reports: slot aiven_db_migrate_reports_slot is not active: DigitalOcean is not connected to it right now.'],
    ]);
    await source.query('DROP PUBLICATION aiven_db_migrate_reports_pub', [], 'reports');
    try {
      const broken = checks(await runPreflight(deps(), 'before-freeze'), 'do_replication');
      expect(broken[1]).toMatchObject({ status: 'fail', detail: expect.stringMatching(/publication aiven_db_migrate_reports_pub does not/) });
    } finally {
      await source.query('CREATE PUBLICATION aiven_db_migrate_reports_pub FOR ALL TABLES', [], 'reports');
    }
    // Before the migration, a slot of that name is a leftover that holds WAL back.
    const leftover = checks(await runPreflight(deps(), 'before-migration'), 'do_replication');
    expect(leftover[0]).toMatchObject({ status: 'warn', fix: expect.stringMatching(/pg_drop_replication_slot\('aiven_db_migrate_orders_slot'\)/) });
  });

  it('flags a slot whose wal_status is unreserved, with a fix that keeps the slot', async () => {
    await source.query('CREATE TABLE IF NOT EXISTS filler (x int)', [], 'orders');
    for (let i = 0; i < 3; i += 1) await source.query('INSERT INTO filler SELECT generate_series(1, 1000); SELECT pg_switch_wal()', [], 'orders');
    const [status] = await source.query<{ wal_status: string }>("SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'aiven_db_migrate_orders_slot'");
    expect(status?.wal_status).toBe('unreserved');

    const wal = checks(await runPreflight(deps(), 'before-freeze'), 'slot_wal').find((i) => i.detail.startsWith('orders:'));
    expect(wal).toMatchObject({ status: 'fail' });
    expect(wal?.detail).toMatch(/wal_status unreserved/);
    expect(wal?.fix).toMatch(/max_slot_wal_keep_size/);
  });

  it('flags the application role that cannot log in to the target, and passes it once its password is set', async () => {
    const [failed] = checks(await runPreflight(deps(), 'before-freeze'), 'app_login');
    expect(failed).toMatchObject({ status: 'fail' });
    expect(failed?.detail).toMatch(/"app" cannot log in.*password authentication failed/);
    expect(failed?.fix).toMatch(/placeholder passwords.*ALTER ROLE app PASSWORD/);

    await target.query(`ALTER ROLE app PASSWORD '${APP_PASSWORD}'`);
    expect(checks(await runPreflight(deps(), 'before-freeze'), 'app_login')).toEqual([expect.objectContaining({ status: 'pass' })]);
  });

  it('flags a migrated database missing on the target, and a target database DO never fills', async () => {
    const missing = checks(await runPreflight(deps(), 'before-freeze'), 'target_databases');
    expect(missing.map((i) => [i.status, i.detail])).toEqual([
      ['pass', 'orders exists on the target.'],
      ['fail', 'reports does not exist on the target cluster.'],
    ]);
    const elsewhere = deps();
    const wrongName = await runPreflight({ ...elsewhere, digitalocean: { ...elsewhere.digitalocean!, targetDatabase: 'shop' } }, 'before-migration');
    expect(checks(wrongName, 'target_databases')[0]).toMatchObject({ status: 'fail', detail: expect.stringMatching(/"shop" is not a database DigitalOcean migrates/) });
  });

  it('flags a source on loopback as unreachable for DigitalOcean, and does not suggest admitting 127.0.0.1', async () => {
    const items = await runPreflight({ ...deps(), proxyHost: '127.0.0.1' }, 'before-migration');
    const [reach] = checks(items, 'source_reachable_by_do');
    expect(reach).toMatchObject({ status: 'fail' });
    expect(reach?.detail).toMatch(/127\.0\.0\.1 is a loopback address/);
    expect(reach?.fix).toMatch(/sourceForMigration\.host/);
    // A loopback address is never a trusted source to add.
    for (const item of items) expect(item.fix ?? '').not.toMatch(/ip_addr:127|add.*127\.0\.0\.1/);

    // Behind a simulator (not DigitalOcean's API) the same source is only flagged, never refused.
    const local = deps();
    const simulated = await runPreflight({ ...local, digitalocean: { ...local.digitalocean!, doIsRemote: false } }, 'before-migration');
    expect(checks(simulated, 'source_reachable_by_do')[0]).toMatchObject({ status: 'warn' });
  });
});
