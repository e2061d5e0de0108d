/**
 * The preflight gatherer on real clusters, the DO simulator and a real PgBouncer: it flags a source
 * with wal_level=replica and a table without a primary key, and passes a prepared source.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalOceanClient } from '../../src/adapters/digitalocean/digitalocean-client.js';
import { preflightVerdict, type PreflightItem } from '../../src/domain/preflight.js';
import { createLogger } from '../../src/log.js';
import type { ProxyAdmin } from '../../src/adapters/proxy/proxy-admin.js';
import { runPreflight, type PreflightDeps } from '../../src/adapters/source/preflight-gatherer.js';
import { Secret } from '../../src/secret.js';
import { startDoSimulator, type DoSimulator } from '../../src/simulator/digitalocean/index.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';
import { startPgBouncer, type PgBouncer } from '../support/pgbouncer.js';

const TOKEN = 'dop_v1_preflight';
const CLUSTER = '22222222-3333-4444-8555-666666666666';
const log = createLogger('silent');

/** Just enough of a ProxyAdmin for the preflight: inspect() reads the real PgBouncer's SHOW DATABASES. */
function bouncerInspector(bouncer: PgBouncer, database: string): ProxyAdmin {
  const unused = () => Promise.reject(new Error('not used by the preflight'));
  return {
    kind: 'pgbouncer',
    canPause: true,
    clientImpact: 'queries-wait',
    limitations: [],
    async inspect() {
      const admin = await bouncer.admin();
      try {
        const { rows } = await admin.query<{ name: string; host: string; port: number; database: string }>('SHOW DATABASES');
        const row = rows.find((r) => r.name === database);
        return {
          pointsTo: row ? { host: row.host, port: Number(row.port), database: row.database } : null,
          frozen: false,
          healthy: true,
          detail: 'pgbouncer',
        };
      } finally {
        await admin.end();
      }
    },
    freeze: unused,
    resume: unused,
    repoint: unused,
    close: () => Promise.resolve(),
  };
}

describe('preflight on real clusters', () => {
  let replicaSource: Cluster;
  let logicalSource: Cluster;
  let bouncer: PgBouncer;
  let sim: DoSimulator;
  const pools: pg.Pool[] = [];

  beforeAll(async () => {
    [replicaSource, logicalSource] = await Promise.all([
      startCluster({ databases: ['orders'] }),
      startCluster({ logical: true, databases: ['orders'] }),
    ]);
    await replicaSource.query(
      `CREATE TABLE orders (id bigserial PRIMARY KEY, note text);
       CREATE TABLE events (at timestamptz, payload text);
       CREATE UNLOGGED TABLE cache (k text PRIMARY KEY, v text);
       SELECT lo_create(0);`,
      [],
      'orders',
    );
    await logicalSource.query('CREATE TABLE orders (id bigserial PRIMARY KEY, note text)', [], 'orders');
    await logicalSource.query("CREATE ROLE do_migration LOGIN SUPERUSER PASSWORD 'x'");
    bouncer = await startPgBouncer({ databases: { orders: { host: '127.0.0.1', port: logicalSource.port, dbname: 'orders' } } });
    sim = await startDoSimulator({
      token: new Secret(TOKEN),
      logger: log,
      clusters: {
        // Any PG 15 serves as the target's version here.
        [CLUSTER]: {
          connection: { host: logicalSource.host, port: logicalSource.port, user: logicalSource.user, password: new Secret(logicalSource.password), database: 'defaultdb' },
          firewallRules: [{ type: 'ip_addr', value: '203.0.113.0/24' }],
        },
      },
    });
  });

  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
    await sim?.stop();
    await bouncer?.stop();
    await Promise.all([replicaSource?.stop(), logicalSource?.stop()]);
  });

  const deps = (source: Cluster, overrides: Partial<PreflightDeps> = {}): PreflightDeps => {
    const pool = new pg.Pool({ connectionString: source.connectionString('orders'), max: 2 });
    pools.push(pool);
    return {
      source: pool,
      migrationUser: 'do_migration',
      api: new DigitalOceanClient({ token: new Secret(TOKEN), baseUrl: sim.url, logger: log }),
      clusterUuid: CLUSTER,
      // DigitalOcean sees public addresses: the source's and the proxy's, as their names resolve.
      sourceHost: 'db.example.test',
      proxyHost: 'proxy.example.test',
      resolve: async (host) => (host === 'db.example.test' ? ['203.0.113.7'] : ['203.0.113.8']),
      proxy: { admin: bouncerInspector(bouncer, 'orders'), expected: { host: '127.0.0.1', port: logicalSource.port, database: 'orders' } },
      ...overrides,
    };
  };
  const byCheck = (items: PreflightItem[]) => Object.fromEntries(items.map((i) => [i.check, i]));

  it('flags wal_level=replica, the table without a primary key, the unlogged table, the large object and a missing role', async () => {
    const items = byCheck(await runPreflight(deps(replicaSource), 'before-migration'));
    expect(items.wal_level).toMatchObject({ status: 'fail' });
    expect(items.wal_level?.detail).toMatch(/"replica"/);
    expect(items.replica_identity).toMatchObject({ status: 'fail' });
    expect(items.replica_identity?.detail).toMatch(/public\.events/);
    expect(items.replica_identity?.detail).not.toMatch(/public\.orders/);
    expect(items.unlogged_tables).toMatchObject({ status: 'warn' });
    expect(items.unlogged_tables?.detail).toMatch(/public\.cache/);
    expect(items.large_objects).toMatchObject({ status: 'warn' });
    expect(items.source_user).toMatchObject({ status: 'fail' });
    expect(items.sequences?.detail).toMatch(/1 sequence/);
  });

  it('passes a prepared source with the proxy pointing at it and the target admitting it', async () => {
    const items = await runPreflight(deps(logicalSource), 'before-migration');
    expect(items.filter((i) => i.status !== 'pass')).toEqual([]);
    expect(preflightVerdict(items)).toBe('pass');
    expect(byCheck(items).do_cluster?.detail).toMatch(/online/);
    expect(byCheck(items).versions?.detail).toMatch(/15 ≤ target PostgreSQL 15/);
  });

  it('fails the postgres user and a proxy pointing at another server', async () => {
    const items = byCheck(
      await runPreflight(
        deps(logicalSource, {
          migrationUser: 'postgres',
          proxy: { admin: bouncerInspector(bouncer, 'orders'), expected: { host: '127.0.0.1', port: replicaSource.port, database: 'orders' } },
        }),
        'before-freeze',
      ),
    );
    expect(items.source_user).toMatchObject({ status: 'fail' });
    expect(items.source_user?.detail).toMatch(/default `postgres` user/);
    expect(items.proxy).toMatchObject({ status: 'fail' });
    expect(items.proxy?.detail).toContain(String(logicalSource.port));
  });

  it('reports DO being unreachable without losing the source checks', async () => {
    const items = byCheck(
      await runPreflight(
        deps(logicalSource, { api: new DigitalOceanClient({ token: new Secret('wrong'), baseUrl: sim.url, logger: log }) }),
        'before-migration',
      ),
    );
    expect(items.do_cluster).toMatchObject({ status: 'fail' });
    expect(items.do_cluster?.detail).toMatch(/Unable to authenticate/);
    expect(items.trusted_sources).toMatchObject({ status: 'warn' });
    expect(items.wal_level).toMatchObject({ status: 'pass' });
  });
});
