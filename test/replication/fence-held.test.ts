/**
 * The fence inside the freeze on real logical replication (a publication of the marker table on the
 * source, a subscription on the target): prepare() opens its connections before the freeze, so
 * prove() opens none, writes the marker in one round trip and polls on the held target connection.
 * Counted through a wrapper around each pool.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplicationFence } from '../../src/adapters/source/fence.js';
import { FENCE_TABLE, installFence } from '../../src/adapters/source/fence-table.js';
import { lsnToBigInt } from '../../src/adapters/source/lag-probe.js';
import { sequenceCopier } from '../../src/adapters/source/sequences.js';
import { captureLogger } from '../support/capture-log.js';
import type { Cluster } from '../support/pg-cluster.js';
import { startReplicationPair } from '../support/replication-pair.js';

interface Counted {
  pool: pg.Pool;
  connects: number;
  /** Statements sent on connections the fence checked out. */
  onHeld: string[];
  /** Statements sent through the pool's own query(). */
  onPool: string[];
  reset(): void;
}

/** A pool whose connect() and query() are counted, as are the queries on the clients it hands out. */
function counted(pool: pg.Pool): Counted & { as: pg.Pool } {
  const c: Counted = {
    pool,
    connects: 0,
    onHeld: [],
    onPool: [],
    reset() {
      c.connects = 0;
      c.onHeld = [];
      c.onPool = [];
    },
  };
  const textOf = (arg: unknown) => (typeof arg === 'string' ? arg : String((arg as { text?: unknown }).text));
  const as = {
    query: (text: unknown, values?: unknown[]) => {
      c.onPool.push(textOf(text));
      return pool.query(text as string, values);
    },
    connect: async () => {
      c.connects++;
      const client = await pool.connect();
      return new Proxy(client, {
        get(target, prop, receiver) {
          if (prop === 'query') {
            return (text: unknown, values?: unknown[]) => {
              c.onHeld.push(textOf(text));
              return target.query(text as string, values);
            };
          }
          const value: unknown = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
  } as unknown as pg.Pool;
  return Object.assign(c, { as });
}

describe('the fence on held connections (real logical replication)', () => {
  let source: Cluster;
  let target: Cluster;
  let sourcePool: pg.Pool;
  let targetPool: pg.Pool;
  const { logger } = captureLogger('debug');

  beforeAll(async () => {
    [source, target] = await startReplicationPair();
    sourcePool = new pg.Pool({ connectionString: source.connectionString('orders'), max: 3 });
    targetPool = new pg.Pool({ connectionString: target.connectionString('postgres'), max: 3 });
    await installFence(sourcePool);
    await installFence(targetPool);
    await sourcePool.query(`CREATE PUBLICATION fence_pub FOR TABLE public.${FENCE_TABLE}`);
    await targetPool.query(
      `CREATE SUBSCRIPTION fence_sub CONNECTION '${source.connectionString('orders')}' PUBLICATION fence_pub WITH (copy_data = false)`,
    );
  });
  afterAll(async () => {
    await targetPool?.query('DROP SUBSCRIPTION IF EXISTS fence_sub').catch(() => undefined);
    await sourcePool?.end();
    await targetPool?.end();
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('prepare() opens the connections before the freeze; prove() opens none, writes the marker in one round trip and gives them back', async () => {
    const src = counted(sourcePool);
    const tgt = counted(targetPool);
    const fence = new ReplicationFence({ source: src.as, target: tgt.as, slot: 'auto', logger });
    await fence.prepare();
    expect([src.connects, tgt.connects]).toEqual([1, 1]);
    const markersBefore = Number((await targetPool.query(`SELECT count(*) AS n FROM ${FENCE_TABLE}`)).rows[0].n);
    src.reset();
    tgt.reset();

    const proved = await fence.prove(10_000);

    expect(proved.method).toBe('marker');
    expect([src.connects, tgt.connects]).toEqual([0, 0]);
    expect(src.onHeld).toHaveLength(1); // BEGIN READ WRITE; …; INSERT …; COMMIT; SELECT pg_current_wal_lsn()
    expect(src.onHeld[0]).toMatch(/^BEGIN READ WRITE;.*INSERT INTO public\.pgcutover_fence.*COMMIT; SELECT pg_current_wal_lsn/);
    // The polls, all on the held connection, each one indexed lookup of the marker's token.
    expect(tgt.onHeld.length).toBeGreaterThan(0);
    expect(tgt.onHeld.every((q) => q.startsWith(`SELECT pg_current_wal_insert_lsn()::text AS at FROM public.${FENCE_TABLE} WHERE token = `))).toBe(true);
    // The target's position read as the marker was found: at most where the target is now.
    const now = (await targetPool.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
    expect(lsnToBigInt(proved.targetLsn as string)).toBeLessThanOrEqual(lsnToBigInt(now));
    // No trigger notifies on either side: a notifying commit is slow inside the freeze.
    for (const pool of [sourcePool, targetPool]) expect((await pool.query(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'public.${FENCE_TABLE}'::regclass AND NOT tgisinternal`)).rows).toEqual([]);
    expect([src.onPool, tgt.onPool]).toEqual([[], []]);
    expect(Number((await targetPool.query(`SELECT count(*) AS n FROM ${FENCE_TABLE}`)).rows[0].n)).toBe(markersBefore + 1);
    // Both connections are back in their pools: nothing is left checked out.
    for (const pool of [sourcePool, targetPool]) expect(pool.totalCount - pool.idleCount).toBe(0);

    // Without prepare() it connects on first use, and still writes the marker in one round trip.
    src.reset();
    await fence.prove(10_000);
    expect(src.connects).toBe(1);
    expect(src.onHeld).toHaveLength(1);
  });

  it('catchUp() proves once before the freeze and keeps the connections: prove() then opens none and gives them back', async () => {
    const src = counted(sourcePool);
    const tgt = counted(targetPool);
    const fence = new ReplicationFence({ source: src.as, target: tgt.as, slot: 'auto', logger });
    const markersBefore = Number((await targetPool.query(`SELECT count(*) AS n FROM ${FENCE_TABLE}`)).rows[0].n);

    const caughtUp = await fence.catchUp(10_000);

    expect(caughtUp.method).toBe('marker');
    expect([src.connects, tgt.connects]).toEqual([1, 1]);
    // Its marker arrived, and the connections are still checked out for the proof inside the freeze.
    expect(Number((await targetPool.query(`SELECT count(*) AS n FROM ${FENCE_TABLE}`)).rows[0].n)).toBe(markersBefore + 1);
    for (const pool of [sourcePool, targetPool]) expect(pool.totalCount - pool.idleCount).toBe(1);
    src.reset();
    tgt.reset();

    const proved = await fence.prove(10_000);

    expect([src.connects, tgt.connects]).toEqual([0, 0]);
    expect(src.onHeld).toHaveLength(1);
    expect(lsnToBigInt(proved.lsn)).toBeGreaterThan(lsnToBigInt(caughtUp.lsn));
    expect(Number((await targetPool.query(`SELECT count(*) AS n FROM ${FENCE_TABLE}`)).rows[0].n)).toBe(markersBefore + 2);
    for (const pool of [sourcePool, targetPool]) expect(pool.totalCount - pool.idleCount).toBe(0);
  });

  it('catchUp() on a stalled stream times out and gives the connections back', async () => {
    await targetPool.query('ALTER SUBSCRIPTION fence_sub DISABLE');
    try {
      const fence = new ReplicationFence({ source: sourcePool, target: targetPool, slot: 'auto', logger });
      const error = await fence.catchUp(300).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'fence_timeout' });
      for (const pool of [sourcePool, targetPool]) expect(pool.totalCount - pool.idleCount).toBe(0);
    } finally {
      await targetPool.query('ALTER SUBSCRIPTION fence_sub ENABLE');
    }
    // Once the stream flows again, every marker written meanwhile arrives, and a new proof passes.
    expect((await new ReplicationFence({ source: sourcePool, target: targetPool, slot: 'auto', logger }).prove(20_000)).method).toBe('marker');
  });

  it("looks for the marker on the target from the moment it is sent, not after the source's answer", async () => {
    const events: string[] = [];
    /** A pool whose checked-out clients note when a statement matching `noted` is sent and when it is answered. */
    const watched = (pool: pg.Pool, noted: (text: string) => string | undefined) =>
      ({
        query: pool.query.bind(pool),
        connect: async () => {
          const client = await pool.connect();
          return new Proxy(client, {
            get(target, prop, receiver) {
              if (prop === 'query') {
                return async (text: string, values?: unknown[]) => {
                  const name = noted(text);
                  if (name) events.push(`${name} sent`);
                  const result = await target.query(text, values);
                  if (name) events.push(`${name} answered`);
                  return result;
                };
              }
              const value: unknown = Reflect.get(target, prop, receiver);
              return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
            },
          });
        },
      }) as unknown as pg.Pool;
    const fence = new ReplicationFence({
      source: watched(sourcePool, (text) => (text.startsWith('BEGIN READ WRITE') ? 'marker' : undefined)),
      target: watched(targetPool, (text) => (text.includes("token = '") ? 'poll' : undefined)),
      slot: 'auto',
      logger,
    });
    await fence.prepare();

    expect((await fence.prove(10_000)).method).toBe('marker');

    // The first poll leaves with the marker, before the source has answered it.
    expect(events.slice(0, 2)).toEqual(['marker sent', 'poll sent']);
    expect(events.indexOf('poll sent')).toBeLessThan(events.indexOf('marker answered'));
    for (const pool of [sourcePool, targetPool]) expect(pool.totalCount - pool.idleCount).toBe(0);
  });

  it('writes the marker under a read-only-database freeze', async () => {
    await source.query('ALTER DATABASE orders SET default_transaction_read_only = on');
    const frozen = new pg.Pool({ connectionString: source.connectionString('orders'), max: 1 });
    try {
      await expect(frozen.query('CREATE TABLE nope (x int)')).rejects.toThrow(/read-only/);
      const fence = new ReplicationFence({ source: frozen, target: targetPool, slot: 'auto', logger });
      await fence.prepare();
      expect((await fence.prove(10_000)).method).toBe('marker');
      expect(frozen.totalCount - frozen.idleCount).toBe(0);
    } finally {
      await frozen.end();
      await source.query('ALTER DATABASE orders RESET default_transaction_read_only');
    }
  });

  it('a failed marker rolls back, gives the connection back and leaves the pool usable', async () => {
    await source.query(`ALTER TABLE public.${FENCE_TABLE} ADD CONSTRAINT never CHECK (false) NOT VALID`, [], 'orders');
    const fence = new ReplicationFence({ source: sourcePool, target: targetPool, slot: 'auto', logger });
    try {
      await fence.prepare();
      await expect(fence.prove(2000)).rejects.toThrow(/Could not write the fence marker/);
      expect(sourcePool.totalCount - sourcePool.idleCount).toBe(0);
      // The pool still works (the aborted transaction did not come back with a connection).
      expect((await sourcePool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    } finally {
      await source.query(`ALTER TABLE public.${FENCE_TABLE} DROP CONSTRAINT never`, [], 'orders');
    }
  });
  describe('the sequences read in the marker’s message', () => {
    const MARGIN = 10;
    /** A sequence on both sides, pushed ahead while "syncing", then used past the margin on the source. */
    async function sequencePastTheMargin(name: string) {
      for (const pool of [sourcePool, targetPool]) await pool.query(`CREATE SEQUENCE ${name}`);
      await sourcePool.query(`SELECT nextval('${name}')`);
      const src = counted(sourcePool);
      const copier = sequenceCopier({ source: src.as, target: targetPool, margin: MARGIN });
      await copier.pushAhead();
      await sourcePool.query(`SELECT nextval('${name}') FROM generate_series(1, 50)`);
      return { src, copier };
    }
    const targetValue = async (name: string) => Number((await targetPool.query(`SELECT last_value FROM ${name}`)).rows[0].last_value);

    it('a proof inside the freeze carries the copy’s read: nothing else goes to the source, and the target is set past it', async () => {
      const { src, copier } = await sequencePastTheMargin('along_ok');
      const fence = new ReplicationFence({ source: src.as, target: targetPool, slot: 'auto', logger, alongTheMarker: copier.alongTheMarker });
      await fence.prepare();
      src.reset();

      // As a run starts them: the proof first, the copy beside it.
      const [proved, copied] = await Promise.all([fence.prove(10_000), copier.copy()]);

      expect(proved.method).toBe('marker');
      expect(src.onHeld).toHaveLength(1);
      expect(src.onHeld[0]).toMatch(/COMMIT; SELECT pg_current_wal_lsn.*FROM pg_sequences/s);
      expect(copied).toMatchObject({ set: 1 });
      expect(await targetValue('along_ok')).toBe(51 + MARGIN);
      await copier.close();
    });

    it('a proof that fails before its marker leaves the copy to read the source itself', async () => {
      const { src, copier } = await sequencePastTheMargin('along_failed');
      const fence = new ReplicationFence({ source: src.as, target: targetPool, slot: 'no_such_slot', method: 'slot-lsn', logger, alongTheMarker: copier.alongTheMarker });

      const [proof, copied] = await Promise.all([fence.prove(1_000).catch((e: unknown) => e), copier.copy()]);

      expect(proof).toBeInstanceOf(Error);
      expect(copied).toMatchObject({ set: 1 });
      expect(await targetValue('along_failed')).toBe(51 + MARGIN);
      await copier.close();
    });
  });
});
