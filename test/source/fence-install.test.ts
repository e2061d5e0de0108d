/**
 * installFence under concurrency on a real cluster: two `/migrate start` whose profiles share one
 * source database install the fence at the same moment; every install must succeed (no
 * `duplicate key value violates unique constraint "pg_type_typname_nsp_index"`).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FENCE_TABLE, installFence } from '../../src/adapters/source/fence-table.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';

describe('installFence (real PostgreSQL)', () => {
  let cluster: Cluster;
  const pools: pg.Pool[] = [];

  beforeAll(async () => {
    cluster = await startCluster({ databases: ['orders'] });
    // One pool per concurrent start, as two profiles each have their own pool to the source.
    for (let i = 0; i < 8; i++) pools.push(new pg.Pool({ connectionString: cluster.connectionString('orders'), max: 1 }));
  }, 120_000);
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await cluster?.stop();
  });

  it('concurrent installs on one source all succeed and leave one table', async () => {
    for (let round = 0; round < 10; round++) {
      await cluster.query(`DROP TABLE IF EXISTS public.${FENCE_TABLE}`, [], 'orders');
      const results = await Promise.allSettled(pools.map((p) => installFence(p)));
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      const tables = await cluster.query(`SELECT to_regclass('public.${FENCE_TABLE}')::text AS t`, [], 'orders');
      expect(tables).toEqual([{ t: FENCE_TABLE }]);
    }
  });
});
