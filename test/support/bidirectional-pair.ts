/**
 * A source and a target that can both publish (wal_level=logical on each), with the same schema and
 * DigitalOcean-like forward replication: a publication FOR ALL TABLES on the source and a
 * subscription on the target, initial copy done. For reverse replication and the switch-point checks.
 */
import pg from 'pg';
import { installFence } from '../../src/adapters/source/fence-table.js';
import { startCluster, type Cluster } from './pg-cluster.js';
import { until } from './wait.js';

export const FORWARD = 'do_forward';
export const DATABASE = 'orders';

export const SCHEMA = `
  CREATE TABLE public.items (id bigserial PRIMARY KEY, note text NOT NULL, amount numeric(12, 2), at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE public.big (id int PRIMARY KEY, payload text);
  CREATE INDEX items_note ON public.items (note);`;

export interface BidirectionalPair {
  source: Cluster;
  target: Cluster;
  sourcePool: pg.Pool;
  targetPool: pg.Pool;
  /** Stops the forward stream as DigitalOcean's "stop migration" does: the subscription (and its slot) go. */
  stopForward(): Promise<void>;
  stop(): Promise<void>;
}

const settings = { wal_sender_timeout: "'2s'", wal_receiver_status_interval: 1, wal_retrieve_retry_interval: "'200ms'" };

export async function startBidirectionalPair(seed: (source: pg.Pool) => Promise<void>): Promise<BidirectionalPair> {
  const clusters = await Promise.allSettled([
    startCluster({ logical: true, databases: [DATABASE], settings }),
    startCluster({ logical: true, databases: [DATABASE], settings }),
  ]);
  const [source, target] = clusters.map((c) => (c.status === 'fulfilled' ? c.value : undefined));
  const pools: pg.Pool[] = [];
  const stop = async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await Promise.all([source?.stop(), target?.stop()]);
  };
  try {
    if (!source || !target) throw new Error('a cluster did not start');
    const open = (c: Cluster) => {
      const p = new pg.Pool({ connectionString: c.connectionString(DATABASE), max: 6, application_name: 'pgcutover' });
      p.on('error', () => undefined);
      pools.push(p);
      return p;
    };
    const [sourcePool, targetPool] = [open(source), open(target)];
    for (const p of [sourcePool, targetPool]) {
      await p.query(SCHEMA);
      await installFence(p);
    }
    await seed(sourcePool);
    await sourcePool.query(`CREATE PUBLICATION ${FORWARD} FOR ALL TABLES`);
    await targetPool.query(`CREATE SUBSCRIPTION ${FORWARD} CONNECTION '${source.connectionString(DATABASE)}' PUBLICATION ${FORWARD}`);
    await until('the forward initial copy', async () => {
      const { rows } = await targetPool.query<{ pending: string }>("SELECT count(*) AS pending FROM pg_subscription_rel WHERE srsubstate NOT IN ('r', 's')");
      const { rows: tables } = await targetPool.query<{ n: string }>('SELECT count(*) AS n FROM pg_subscription_rel');
      return Number(rows[0]?.pending) === 0 && Number(tables[0]?.n) > 0;
    }, 60_000);
    return {
      source,
      target,
      sourcePool,
      targetPool,
      stopForward: async () => {
        await targetPool.query(`DROP SUBSCRIPTION IF EXISTS ${FORWARD}`);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Our objects on one side: slots, subscriptions and publications whose name starts with `pgcutover_`. */
export async function ourObjects(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ what: string }>(
    `SELECT 'slot ' || slot_name AS what FROM pg_replication_slots WHERE starts_with(slot_name, 'pgcutover_')
     UNION ALL SELECT 'subscription ' || subname FROM pg_subscription WHERE starts_with(subname, 'pgcutover_')
     UNION ALL SELECT 'publication ' || pubname FROM pg_publication WHERE starts_with(pubname, 'pgcutover_')`,
  );
  return rows.map((r) => r.what).sort();
}
