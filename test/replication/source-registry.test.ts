/**
 * The source registry on a real logical source: one pool per profile, one probe per (profile, slot),
 * and a reading served again within its window, so the status message, the report observer and the
 * engine asking at once cost one query. The probe's queries are counted at the pool.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pool } from '../../src/adapters/source/connect.js';
import { SourceObserver } from '../../src/adapters/source/session-observer.js';
import { SourceRegistry, type SourceProfile } from '../../src/adapters/source/source-registry.js';
import type { Session } from '../../src/domain/session.js';
import { createLogger } from '../../src/log.js';
import { Secret } from '../../src/secret.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';

let source: Cluster;
const SLOT = 'registry_slot';

beforeAll(async () => {
  source = await startCluster({ logical: true, databases: ['orders'] });
  await source.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [SLOT], 'orders');
});
afterAll(() => source?.stop());

const session = (profile: string): Session => ({
  id: '00000000-0000-4000-8000-000000000001',
  channelId: 'C0REG',
  profile,
  strategy: 'connection-parameters',
  state: 'syncing',
  version: 2,
  doMigrationId: 'do-mig-1',
  startedBy: 'U0OPS',
  statusMessageTs: null,
  createdAt: new Date(),
  updatedAt: new Date(),
});

function rig(reuseMs = 1000) {
  const clock = { t: Date.now(), now: () => new Date(clock.t) };
  const queries: string[] = [];
  let pools = 0;
  const profile: SourceProfile = {
    source: { host: source.host, port: source.port, database: 'orders', user: source.user, password: new Secret(source.password) },
    replication: { slot: SLOT },
  };
  const registry = new SourceRegistry({
    profiles: new Map([
      ['orders', profile],
      ['orders-too', profile],
    ]),
    reuseMs,
    now: clock.now,
    openPool: (p) => {
      pools++;
      const real = pool(p.source, { max: 2 });
      const query = real.query.bind(real) as (text: string, values?: unknown[]) => Promise<unknown>;
      real.query = ((text: string, values?: unknown[]) => {
        queries.push(text);
        return query(text, values);
      }) as typeof real.query;
      return real;
    },
  });
  return { registry, clock, queries, pools: () => pools };
}

describe('the source registry', () => {
  it('serves two lag reads within the window from one probe query, and asks again after it', async () => {
    const { registry, clock, queries } = rig(1000);
    try {
      const first = await registry.lag(session('orders'));
      expect(first).toMatchObject({ known: true, slot: SLOT, slotActive: false });
      clock.t += 999;
      expect(await registry.lag(session('orders'))).toBe(first);
      expect(queries).toHaveLength(1);
      clock.t += 1;
      const second = await registry.lag(session('orders'));
      expect(second).not.toBe(first);
      expect(queries).toHaveLength(2);
    } finally {
      await registry.close();
    }
  });

  it('gives twenty concurrent callers one query, and one pool per profile', async () => {
    const { registry, queries, pools } = rig();
    try {
      const readings = await Promise.all(Array.from({ length: 20 }, () => registry.lag(session('orders'))));
      expect(new Set(readings).size).toBe(1);
      expect(queries).toHaveLength(1);
      expect(registry.probe('orders')).toBe(registry.probe('orders'));
      expect(registry.pool('orders')).toBe(registry.pool('orders'));
      await registry.lag(session('orders-too'));
      expect(pools()).toBe(2);
      expect(() => registry.probe('nowhere')).toThrow(/not configured/);
    } finally {
      await registry.close();
    }
  });

  it('lets the report observer and the status message share one reading, WAL position included', async () => {
    const { registry, queries } = rig();
    const observer = new SourceObserver({
      sources: registry,
      profiles: new Map([['orders', { reports: { schedule: 'every 5m', alerts: { lagBytes: 1, consecutiveSamples: 1, twoWeekLimitWarningHours: 1 } }, gates: { operators: [], maxLagBytesToFreeze: 1 }, digitalocean: { clusterUuid: 'c' } }]]),
      digitalocean: { getOnlineMigration: async () => undefined },
      log: createLogger('silent'),
    });
    try {
      const { observation, doView } = await observer.observe(session('orders'));
      expect(observation).toMatchObject({ known: true, slot: SLOT });
      expect(observation.walPosition).toBeGreaterThan(0);
      expect(doView).toEqual({ known: true, status: 'none' });
      const status = await registry.lag(session('orders'));
      expect(status.at).toEqual(observation.at);
      expect(queries).toHaveLength(1);
    } finally {
      await registry.close();
    }
  });
});
