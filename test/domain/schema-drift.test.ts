import { describe, expect, it } from 'vitest';
import { diffSchemas, type CatalogTable } from '../../src/domain/schema-drift.js';

const orders: CatalogTable = {
  table: 'public.orders',
  columns: [
    { name: 'id', type: 'bigint', notNull: true },
    { name: 'total', type: 'numeric(12,2)', notNull: false },
  ],
  constraints: { orders_pkey: 'PRIMARY KEY (id)' },
  indexes: { orders_pkey: 'CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (id)' },
};

describe('diffSchemas', () => {
  it('finds nothing between equal catalogs, whatever the column order', () => {
    const reordered = { ...orders, columns: [...orders.columns].reverse() };
    expect(diffSchemas({ tables: [orders] }, { tables: [reordered] })).toEqual([]);
  });

  it('names tables, columns, types, nullability, constraints and indexes that differ', () => {
    const target: CatalogTable = {
      table: 'public.orders',
      columns: [
        { name: 'id', type: 'integer', notNull: true },
        { name: 'total', type: 'numeric(12,2)', notNull: true },
        { name: 'legacy', type: 'text', notNull: false },
      ],
      constraints: {},
      indexes: { orders_pkey: orders.indexes.orders_pkey as string, orders_total: 'CREATE INDEX orders_total ON public.orders USING btree (total)' },
    };
    const source = { tables: [{ ...orders, columns: [...orders.columns, { name: 'coupon', type: 'text', notNull: false }] }, { ...orders, table: 'public.new' }] };
    expect(diffSchemas(source, { tables: [target, { ...orders, table: 'public.old' }] })).toEqual([
      { kind: 'table-only-on', side: 'source', table: 'public.new' },
      { kind: 'column-type', table: 'public.orders', column: 'id', source: 'bigint', target: 'integer' },
      { kind: 'column-nullability', table: 'public.orders', column: 'total', sourceNotNull: false },
      { kind: 'column-only-on', side: 'source', table: 'public.orders', column: 'coupon', type: 'text' },
      { kind: 'column-only-on', side: 'target', table: 'public.orders', column: 'legacy', type: 'text' },
      { kind: 'constraint', table: 'public.orders', name: 'orders_pkey', source: 'PRIMARY KEY (id)', target: null },
      { kind: 'index', table: 'public.orders', name: 'orders_total', source: null, target: 'CREATE INDEX orders_total ON public.orders USING btree (total)' },
      { kind: 'table-only-on', side: 'target', table: 'public.old' },
    ]);
  });
});
