/**
 * Verification at the switch point, as pure rules: which check each table gets (every row's checksum
 * up to a size limit, key-range samples above it, the count alone without a key), and the comparison
 * of what was measured on the source and on the target as of the same instant.
 */

export interface VerifyLimits {
  /** Tables with at most this many rows get a checksum of every row. */
  fullChecksumMaxRows: number;
  /** Key ranges checked in a larger table. */
  samples: number;
  /** Rows per key range. */
  rowsPerSample: number;
}

export const DEFAULT_VERIFY_LIMITS: VerifyLimits = { fullChecksumMaxRows: 100_000, samples: 8, rowsPerSample: 1_000 };

/** A table as the source's catalog describes it (schema-qualified, quoted names are the adapter's business). */
export interface TableShape {
  table: string;
  /** Column names, in a fixed order (by name), so a checksum does not depend on column positions. */
  columns: string[];
  /** The first primary-key column, for key ranges; null without a primary key. */
  key: string | null;
}

export type TableCheck =
  | { table: string; mode: 'full' }
  | { table: string; mode: 'sampled'; key: string }
  | { table: string; mode: 'count' };

/** Full checksum up to the limit; above it key-range samples when the table has a key, else the count alone. */
export function planCheck(shape: TableShape, sourceRows: number, limits: VerifyLimits): TableCheck {
  if (sourceRows <= limits.fullChecksumMaxRows) return { table: shape.table, mode: 'full' };
  if (shape.key !== null) return { table: shape.table, mode: 'sampled', key: shape.key };
  return { table: shape.table, mode: 'count' };
}

/** What one side measured of one table under its check. */
export interface TableMeasure {
  table: string;
  rows: number;
  mode: TableCheck['mode'];
  /** 'full': the checksum of every row. */
  checksum: string | null;
  /** 'sampled': per key range (same starts on both sides), its row count and checksum. */
  samples: { from: string; rows: number; checksum: string }[];
}

export interface TableDifference {
  table: string;
  /** What differs, as data: the channel's wording is the Slack adapter's. */
  reasons: (
    | { kind: 'missing-on-target' | 'missing-on-source' }
    | { kind: 'row-count'; source: number; target: number }
    | { kind: 'content' }
    | { kind: 'sample'; from: string }
  )[];
}

export interface VerificationReport {
  ok: boolean;
  tables: number;
  fully: number;
  sampled: number;
  countOnly: number;
  differing: TableDifference[];
}

/** Compares the two sides' measures: every table named in either, differences listed per table. */
export function compareMeasures(source: readonly TableMeasure[], target: readonly TableMeasure[]): VerificationReport {
  const onTarget = new Map(target.map((m) => [m.table, m]));
  const onSource = new Set(source.map((m) => m.table));
  const differing: TableDifference[] = [];
  for (const s of source) {
    const t = onTarget.get(s.table);
    const reasons: TableDifference['reasons'] = [];
    if (!t) reasons.push({ kind: 'missing-on-target' });
    else {
      if (s.rows !== t.rows) reasons.push({ kind: 'row-count', source: s.rows, target: t.rows });
      if (s.mode === 'full' && s.checksum !== t.checksum && s.rows === t.rows) reasons.push({ kind: 'content' });
      const targetSamples = new Map(t.samples.map((x) => [x.from, x]));
      for (const sample of s.samples) {
        const other = targetSamples.get(sample.from);
        if (!other || other.rows !== sample.rows || other.checksum !== sample.checksum) reasons.push({ kind: 'sample', from: sample.from });
      }
    }
    if (reasons.length > 0) differing.push({ table: s.table, reasons });
  }
  for (const t of target) if (!onSource.has(t.table)) differing.push({ table: t.table, reasons: [{ kind: 'missing-on-source' }] });
  const count = (mode: TableCheck['mode']) => source.filter((m) => m.mode === mode).length;
  return {
    ok: differing.length === 0,
    tables: source.length,
    fully: count('full'),
    sampled: count('sampled'),
    countOnly: count('count'),
    differing: differing.sort((a, b) => a.table.localeCompare(b.table)),
  };
}
