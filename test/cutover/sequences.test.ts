import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSequences, sequenceCopier, targetValue } from '../../src/adapters/source/sequences.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';

const SCHEMA = `
  CREATE SCHEMA "Sales Dept";
  CREATE TABLE orders (id bigserial PRIMARY KEY, note text);
  CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);
  CREATE SEQUENCE "Sales Dept"."invoice-no" INCREMENT 5 START 100;
  CREATE SEQUENCE countdown INCREMENT -1 MINVALUE -100000 MAXVALUE 0 START 0;
  CREATE SEQUENCE never_used;
  CREATE SEQUENCE almost_full MAXVALUE 1000010;
`;

describe('copying sequences from the source to the target (two real clusters)', () => {
  let source: Cluster;
  let target: Cluster;
  let sourcePool: pg.Pool;
  let targetPool: pg.Pool;

  beforeAll(async () => {
    [source, target] = await Promise.all([startCluster({ databases: ['orders'] }), startCluster({ databases: ['orders'] })]);
    sourcePool = new pg.Pool({ connectionString: source.connectionString('orders'), max: 2 });
    targetPool = new pg.Pool({ connectionString: target.connectionString('orders'), max: 2 });
    await sourcePool.query(SCHEMA);
    await targetPool.query(SCHEMA);
    await sourcePool.query(`
      INSERT INTO orders (note) SELECT 'o' FROM generate_series(1, 42);
      INSERT INTO events (note) SELECT 'e' FROM generate_series(1, 7);
      SELECT nextval('"Sales Dept"."invoice-no"'), nextval('"Sales Dept"."invoice-no"');
      SELECT nextval('countdown') FROM generate_series(1, 3);
      SELECT setval('almost_full', 1000000);
    `);
  });
  afterAll(async () => {
    await sourcePool?.end();
    await targetPool?.end();
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('reads every user sequence with its last value (null when never used)', async () => {
    const seqs = await readSequences(sourcePool);
    const byName = Object.fromEntries(seqs.map((s) => [`${s.schema}.${s.name}`, s.lastValue]));
    expect(byName).toEqual({
      'Sales Dept.invoice-no': '105',
      'public.almost_full': '1000000',
      'public.countdown': '-2',
      'public.events_id_seq': '7',
      'public.never_used': null,
      'public.orders_id_seq': '42',
    });
  });

  it('sets the target to source + margin in the sequence direction, clamped, and new rows do not collide', async () => {
    const result = await sequenceCopier({ source: sourcePool, target: targetPool, margin: 1000 }).copy();
    expect(result).toMatchObject({ copied: 5, unused: 1 });
    const { rows } = await targetPool.query<{ o: string; e: string; i: string; c: string; n: string; f: string }>(`
      SELECT nextval('orders_id_seq')::text AS o, nextval('events_id_seq')::text AS e,
             nextval('"Sales Dept"."invoice-no"')::text AS i, nextval('countdown')::text AS c,
             nextval('never_used')::text AS n, (SELECT last_value::text FROM almost_full) AS f`);
    expect(rows[0]).toEqual({ o: '1043', e: '1008', i: '5110', c: '-1003', n: '1', f: '1000010' });
    // The source's rows arrive on the target by replication; copy them here and insert new ones.
    await targetPool.query("INSERT INTO orders (id, note) SELECT g, 'replicated' FROM generate_series(1, 42) g");
    await expect(targetPool.query("INSERT INTO orders (note) VALUES ('after switch')")).resolves.toBeDefined();
  });

  it('is idempotent and never moves the target backward: a target already past the source is left', async () => {
    const copier = sequenceCopier({ source: sourcePool, target: targetPool, margin: 10 });
    expect((await copier.copy()).set).toBe(0);
    expect((await copier.copy()).set).toBe(0);
    const { rows } = await targetPool.query<{ v: string }>('SELECT last_value::text AS v FROM orders_id_seq');
    expect(rows[0]?.v).toBe('1044'); // 1042 set by the copy above, then two rows inserted on the target
  });

  it('pushAhead while syncing: the in-freeze copy then sends no target statement, and still catches a source past the margin', async () => {
    await sourcePool.query('CREATE SEQUENCE pushed; SELECT nextval(\'pushed\') FROM generate_series(1, 5)');
    await targetPool.query('CREATE SEQUENCE pushed');
    const statements: string[] = [];
    const countingTarget = {
      query: ((text: string, values?: unknown[]) => {
        statements.push(text);
        return targetPool.query(text, values);
      }) as pg.Pool['query'],
    };
    const targetValueOf = async (name: string) =>
      (await targetPool.query<{ v: string }>(`SELECT last_value::text AS v FROM ${name}`)).rows[0]?.v;
    const copier = sequenceCopier({ source: sourcePool, target: countingTarget, margin: 100 });

    const pushed = await copier.pushAhead();
    expect(pushed).toMatchObject({ sequences: 6, pushed: 1 }); // only "pushed" was behind source + 100
    expect(await targetValueOf('pushed')).toBe('105');
    expect(statements).toHaveLength(1);

    // The source moves on within the margin: the copy inside the freeze has nothing to do on the target.
    await sourcePool.query("SELECT nextval('pushed') FROM generate_series(1, 100)"); // source at 105
    statements.length = 0;
    expect(await copier.copy()).toMatchObject({ copied: 6, set: 0 });
    expect(statements).toEqual([]);
    expect(await targetValueOf('pushed')).toBe('105');

    // One step beyond the margin: caught, in one target statement, set to source + margin.
    await sourcePool.query("SELECT nextval('pushed')"); // source at 106
    expect(await copier.copy()).toMatchObject({ set: 1 });
    expect(statements).toHaveLength(1);
    expect(await targetValueOf('pushed')).toBe('206');
    expect((await targetPool.query<{ v: string }>("SELECT nextval('pushed')::text AS v")).rows[0]?.v).toBe('207');

    // A fresh copier (a restarted bot) knows nothing: one target statement, which moves nothing backward.
    statements.length = 0;
    expect(await sequenceCopier({ source: sourcePool, target: countingTarget, margin: 100 }).copy()).toMatchObject({ set: 0 });
    expect(statements).toHaveLength(1);
    expect(await targetValueOf('pushed')).toBe('207');
  });

  it('computes values within bounds', () => {
    const seq = { schema: 's', name: 'n', increment: '1', minValue: '1', maxValue: '10', startValue: '1' };
    expect(targetValue({ ...seq, lastValue: '5' }, 3)).toEqual({ value: 8n, isCalled: true });
    expect(targetValue({ ...seq, lastValue: '9' }, 3)).toEqual({ value: 10n, isCalled: true });
    expect(targetValue({ ...seq, lastValue: null }, 3)).toEqual({ value: 1n, isCalled: false });
    expect(targetValue({ ...seq, increment: '-2', minValue: '-5', maxValue: '0', lastValue: '-2' }, 3)).toEqual({
      value: -5n,
      isCalled: true,
    });
  });
});
