import { describe, expect, it } from 'vitest';
import { compareMeasures, planCheck, type TableMeasure } from '../../src/domain/switch-point.js';

const limits = { fullChecksumMaxRows: 100, samples: 2, rowsPerSample: 10 };
const full = (table: string, rows: number, checksum: string): TableMeasure => ({ table, rows, mode: 'full', checksum, samples: [] });

describe('planCheck', () => {
  it('checksums every row up to the limit, samples key ranges above it, and counts a keyless large table', () => {
    expect(planCheck({ table: 'public.a', columns: ['id'], key: 'id' }, 100, limits)).toEqual({ table: 'public.a', mode: 'full' });
    expect(planCheck({ table: 'public.a', columns: ['id'], key: 'id' }, 101, limits)).toEqual({ table: 'public.a', mode: 'sampled', key: 'id' });
    expect(planCheck({ table: 'public.b', columns: ['x'], key: null }, 101, limits)).toEqual({ table: 'public.b', mode: 'count' });
  });
});

describe('compareMeasures', () => {
  it('passes equal sides and counts the checks', () => {
    const sampled: TableMeasure = { table: 'public.s', rows: 500, mode: 'sampled', checksum: null, samples: [{ from: '1', rows: 10, checksum: '9' }] };
    expect(compareMeasures([full('public.a', 3, '42'), sampled], [full('public.a', 3, '42'), sampled])).toEqual({
      ok: true,
      tables: 2,
      fully: 1,
      sampled: 1,
      countOnly: 0,
      differing: [],
    });
  });

  it('names each differing table with what differs', () => {
    const source: TableMeasure[] = [
      full('public.counted', 3, '1'),
      full('public.changed', 3, '1'),
      full('public.gone', 1, '1'),
      { table: 'public.s', rows: 500, mode: 'sampled', checksum: null, samples: [{ from: '7', rows: 10, checksum: '9' }] },
    ];
    const target: TableMeasure[] = [
      full('public.counted', 2, '0'),
      full('public.changed', 3, '2'),
      full('public.extra', 0, '0'),
      { table: 'public.s', rows: 500, mode: 'sampled', checksum: null, samples: [{ from: '7', rows: 10, checksum: '8' }] },
    ];
    const report = compareMeasures(source, target);
    expect(report.ok).toBe(false);
    expect(report.differing).toEqual([
      { table: 'public.changed', reasons: [{ kind: 'content' }] },
      { table: 'public.counted', reasons: [{ kind: 'row-count', source: 3, target: 2 }] },
      { table: 'public.extra', reasons: [{ kind: 'missing-on-source' }] },
      { table: 'public.gone', reasons: [{ kind: 'missing-on-target' }] },
      { table: 'public.s', reasons: [{ kind: 'sample', from: '7' }] },
    ]);
  });
});
