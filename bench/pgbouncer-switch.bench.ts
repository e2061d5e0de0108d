/**
 * How long a PgBouncer switch holds writes: PAUSE (drained) → repoint (file rewrite, RELOAD, verify)
 * → RESUME, alternating between two real clusters, while a client keeps writing through PgBouncer.
 * Run with `npm run bench`; the suite asserts only loose bounds, the numbers live here.
 */
import pg from 'pg';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { createLogger } from '../src/log.js';
import type { Endpoint } from '../src/domain/ports/writes.js';
import { PgBouncerAdmin } from '../src/adapters/proxy/pgbouncer.js';
import { Secret } from '../src/secret.js';
import { startCluster, type Cluster } from '../test/support/pg-cluster.js';
import { startPgBouncer, type PgBouncer } from '../test/support/pgbouncer.js';

let source: Cluster;
let target: Cluster;
let bouncer: PgBouncer;
let admin: PgBouncerAdmin;
let writer: pg.Client;
let writing = true;
let writes = 0;
let writeErrors = 0;
let writerLoop: Promise<void>;
let nextIsTarget = true;

const endpoint = (cluster: Cluster): Endpoint => ({ host: cluster.host, port: cluster.port, database: 'orders' });

beforeAll(async () => {
  [source, target] = await Promise.all([
    startCluster({ databases: ['orders'] }),
    startCluster({ databases: ['orders'] }),
  ]);
  for (const cluster of [source, target]) await cluster.query('CREATE TABLE ticks (id bigserial PRIMARY KEY)', [], 'orders');
  bouncer = await startPgBouncer({ databases: { orders: { host: source.host, port: source.port, dbname: 'orders' } } });
  admin = new PgBouncerAdmin({
    admin: { host: bouncer.host, port: bouncer.port, user: bouncer.adminUser, password: new Secret(bouncer.adminPassword) },
    database: 'orders',
    databasesFile: bouncer.databasesFile,
    pauseTimeoutSeconds: 5,
    logger: createLogger('silent'),
  });
  // As the engine does before the freeze: the admin connections are open and the checks done.
  await admin.prepare();
  writer = new pg.Client({ connectionString: bouncer.connectionString('orders') });
  await writer.connect();
  writerLoop = (async () => {
    while (writing) {
      try {
        await writer.query('INSERT INTO ticks DEFAULT VALUES');
        writes++;
      } catch {
        writeErrors++;
      }
    }
  })();
});

afterAll(async () => {
  writing = false;
  await writerLoop;
  await writer?.end().catch(() => undefined);
  await admin?.close();
  await bouncer?.stop();
  await Promise.all([source?.stop(), target?.stop()]);
  process.stdout.write(`writes through PgBouncer during the benchmark: ${writes}, failed: ${writeErrors}\n`);
});

describe('PgBouncer switch under a continuous writer', () => {
  bench(
    'freeze → repoint → resume',
    async () => {
      await admin.freeze();
      await admin.repoint(endpoint(nextIsTarget ? target : source));
      await admin.resume();
      nextIsTarget = !nextIsTarget;
    },
    { iterations: 20, time: 0 },
  );
});
