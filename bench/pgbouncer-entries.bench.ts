/**
 * What covering every migrated database costs PgBouncer's part of the freeze: freeze → repoint →
 * resume of two entries (PgBouncerEntries: both paused at once, one rewrite and RELOAD, both resumed
 * at once) against the one-entry driver (PgBouncerAdmin), in the same run, on real clusters, while a
 * client writes through each entry. A third entry (an ignored database) is never touched.
 * Run with `npx vitest bench --run bench/pgbouncer-entries.bench.ts`; nothing is asserted.
 */
import pg from 'pg';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { PgBouncerAdmin } from '../src/adapters/proxy/pgbouncer.js';
import { PgBouncerEntries } from '../src/adapters/proxy/pgbouncer-entries.js';
import type { Endpoint } from '../src/domain/ports/writes.js';
import { createLogger } from '../src/log.js';
import { Secret } from '../src/secret.js';
import { startCluster, type Cluster } from '../test/support/pg-cluster.js';
import { startPgBouncer, type PgBouncer } from '../test/support/pgbouncer.js';

const DATABASES = ['orders', 'orders2', 'orders3'];
let source: Cluster;
let target: Cluster;
let bouncer: PgBouncer;
let one: PgBouncerAdmin;
let both: PgBouncerEntries;
let writing = true;
const writes = { done: 0, failed: 0 };
const writers: Promise<void>[] = [];

const endpoint = (cluster: Cluster): Endpoint => ({ host: cluster.host, port: cluster.port, database: 'orders' });

/** One client writing through PgBouncer's entry `database` until the end. */
async function write(database: string): Promise<void> {
  const client = new pg.Client({ connectionString: bouncer.connectionString(database) });
  client.on('error', () => undefined);
  await client.connect();
  while (writing) {
    await client.query('INSERT INTO ticks DEFAULT VALUES').then(
      () => (writes.done += 1),
      () => (writes.failed += 1),
    );
  }
  await client.end().catch(() => undefined);
}

beforeAll(async () => {
  [source, target] = await Promise.all([startCluster({ databases: DATABASES }), startCluster({ databases: DATABASES })]);
  for (const cluster of [source, target]) for (const db of DATABASES) await cluster.query('CREATE TABLE ticks (id bigserial PRIMARY KEY)', [], db);
  bouncer = await startPgBouncer({ databases: Object.fromEntries(DATABASES.map((db) => [db, { host: source.host, port: source.port, dbname: db }])) });
  const options = {
    admin: { host: bouncer.host, port: bouncer.port, user: bouncer.adminUser, password: new Secret(bouncer.adminPassword) },
    database: 'orders',
    databasesFile: bouncer.databasesFile,
    pauseTimeoutSeconds: 5,
    logger: createLogger('silent'),
  };
  one = new PgBouncerAdmin(options);
  both = new PgBouncerEntries({
    ...options,
    profileDatabases: ['orders'],
    selection: async () => ({ migrated: ['orders', 'orders2'], servers: [source, target].map(({ host, port }) => ({ host, port })) }),
  });
  // As the engine does before the freeze: admin connections open, checks done.
  await Promise.all([one.prepare(), both.prepare()]);
  writers.push(write('orders'), write('orders2'));
}, 120_000);

afterAll(async () => {
  writing = false;
  await Promise.all(writers);
  await Promise.all([one?.close(), both?.close()]);
  await bouncer?.stop();
  await Promise.all([source?.stop(), target?.stop()]);
  process.stdout.write(`writes through PgBouncer during the benchmark: ${writes.done}, failed: ${writes.failed}\n`);
});

describe('PgBouncer freeze → repoint → resume under writers', () => {
  /** `driver` is read when the benchmark runs (beforeAll has built it by then). */
  const cycle = (driver: () => PgBouncerAdmin | PgBouncerEntries) => {
    let toTarget = true;
    return async () => {
      await driver().freeze();
      await driver().repoint(endpoint(toTarget ? target : source));
      await driver().resume();
      toTarget = !toTarget;
    };
  };
  const options = { iterations: 40, time: 0, warmupIterations: 5, warmupTime: 0 };
  bench('one entry (PgBouncerAdmin, the baseline)', cycle(() => one), options);
  bench('two entries of migrated databases (PgBouncerEntries)', cycle(() => both), options);
});
