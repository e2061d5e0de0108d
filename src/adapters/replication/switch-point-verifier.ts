/**
 * Verification at the switch point on real connections. Inside the freeze, the fence's own proof takes
 * the snapshots and hands them over with their connections (adopt(): no round trip of their own, see
 * source/fence.ts); when it could not (no marker table), exportSnapshots() right after the fence sends
 * one message per side on a connection held since prepare():
 * `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot()`, both sides at once.
 * Both snapshots then show the same data (the fence proved it, writes are frozen). After the resume,
 * verify() imports each snapshot on a second connection (SET TRANSACTION SNAPSHOT), so neither the
 * applications' writes on the target nor reverse replication onto the source change what is compared,
 * then ends the exporting transactions. Per table: the row count always; a checksum of every row up
 * to the size limit; above it checksums of key ranges starting at keys sampled on the source; the
 * domain's compareMeasures() names the tables that differ.
 *
 * The checksum: the sum over rows of the first 64 bits of md5(ROW(columns by name)::text), as
 * numeric, so it is independent of row order and column positions; text output settings are pinned
 * (time zone, date and interval style, float digits, bytea) so both servers print values alike.
 */
import pg from 'pg';
import type { SwitchPointSnapshots, SwitchPointVerifier } from '../../domain/ports/switch-point.js';
import {
  DEFAULT_VERIFY_LIMITS,
  compareMeasures,
  planCheck,
  type TableCheck,
  type TableMeasure,
  type TableShape,
  type VerificationReport,
  type VerifyLimits,
} from '../../domain/switch-point.js';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { HeldSnapshot, SwitchPointHolder } from '../source/fence.js';
import { USER_SCHEMA, type Pool } from './common.js';

const SHAPES_SQL = `
  SELECT format('%I.%I', n.nspname, c.relname) AS "table",
         (SELECT coalesce(array_agg(a.attname::text ORDER BY a.attname), '{}')
            FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
         (SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
           WHERE i.indrelid = c.oid AND i.indisprimary) AS key
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'r' AND ${USER_SCHEMA}
   ORDER BY 1`;

/** pg_export_snapshot()'s identifiers are hex groups and dashes; anything else is never inlined. */
const SNAPSHOT_ID = /^[0-9A-F]+(-[0-9A-F]+)+$/i;

const PINNED_OUTPUT =
  "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 3; SET LOCAL bytea_output = 'hex'";

type Side = 'source' | 'target';

export class SnapshotSwitchPointVerifier implements SwitchPointVerifier, SwitchPointHolder {
  readonly #pools: Record<Side, Pool>;
  readonly #log: Logger;
  #held: Partial<Record<Side, pg.PoolClient>> = {};
  #snapshots: Record<Side, string> | undefined;

  constructor(options: { source: Pool; target: Pool; logger: Logger }) {
    this.#pools = { source: options.source, target: options.target };
    this.#log = options.logger.child({ name: 'switch-point-verifier' });
  }

  async prepare(): Promise<void> {
    await Promise.all((['source', 'target'] as const).map(async (side) => (this.#held[side] ??= await checkOut(this.#pools[side]))));
  }

  /**
   * The snapshots the fence exported in its proof, with the connections whose open transactions keep
   * them: they replace the ones prepare() held (idle, given back). Identifiers of another form are
   * refused (never inlined): their connections are dropped and exportSnapshots() exports its own.
   */
  adopt(held: { source: HeldSnapshot; target: HeldSnapshot }): void {
    const sides = [held.source, held.target];
    for (const { client } of sides) client.on('error', ignore);
    if (!sides.every((h) => SNAPSHOT_ID.test(h.snapshot))) {
      for (const { client } of sides) client.release(true);
      this.#log.warn('the fence handed over snapshots of an unexpected form; exporting my own');
      return;
    }
    for (const client of Object.values(this.#held)) {
      client.off('error', ignore);
      client.release();
    }
    this.#held = { source: held.source.client, target: held.target.client };
    this.#snapshots = { source: held.source.snapshot, target: held.target.snapshot };
  }

  /** The snapshots the fence handed over, else exported now (one round trip per side, both at once). */
  async exportSnapshots(): Promise<SwitchPointSnapshots> {
    if (this.#snapshots) return { ...this.#snapshots, elapsedMs: 0 };
    const started = performance.now();
    await this.prepare();
    try {
      const [source, target] = await Promise.all((['source', 'target'] as const).map((side) => exportSnapshot(this.#held[side] as pg.PoolClient)));
      this.#snapshots = { source: source as string, target: target as string };
    } catch (cause) {
      await this.close(true);
      throw new CodedError(ErrorCode.CutoverStepFailed, `Could not export the switch-point snapshots: ${(cause as Error).message}`, { cause });
    }
    const result = { ...this.#snapshots, elapsedMs: Math.round(performance.now() - started) };
    this.#log.info(result, 'switch-point snapshots exported');
    return result;
  }

  async verify(limits: VerifyLimits = DEFAULT_VERIFY_LIMITS): Promise<VerificationReport> {
    const snapshots = this.#snapshots;
    if (!snapshots) throw new CodedError(ErrorCode.Internal, 'verify() needs the snapshots exportSnapshots() takes inside the freeze.');
    const readers: Partial<Record<Side, pg.PoolClient>> = {};
    let failed = false;
    try {
      for (const side of ['source', 'target'] as const) {
        const reader = await checkOut(this.#pools[side]);
        readers[side] = reader;
        await reader.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '${snapshots[side]}'; ${PINNED_OUTPUT}`);
      }
      // The readers hold the snapshots now: the exporting transactions can end.
      await this.close();
      const report = await compareSides(readers as Record<Side, pg.PoolClient>, limits);
      this.#log.info({ ok: report.ok, tables: report.tables, differing: report.differing.map((d) => d.table) }, 'switch-point verification');
      return report;
    } catch (cause) {
      failed = true;
      if (cause instanceof CodedError) throw cause;
      throw new CodedError(ErrorCode.DatabaseUnavailable, `Verifying the data at the switch point failed: ${(cause as Error).message}`, { cause });
    } finally {
      // Read-only: nothing to keep. A reader whose query failed is not given back to its pool.
      await Promise.all(
        Object.values(readers).map(async (reader) => {
          const ended = await reader.query('ROLLBACK').then(() => true, () => false);
          reader.off('error', ignore);
          reader.release(failed || !ended ? true : undefined);
        }),
      );
    }
  }

  async close(destroy = false): Promise<void> {
    const held = Object.values(this.#held);
    this.#held = {};
    // The exporting transactions end here: their snapshots can no longer be imported.
    this.#snapshots = undefined;
    for (const client of held) client.off('error', ignore);
    await Promise.all(
      held.map(async (client) => {
        const ended = destroy ? false : await client.query('ROLLBACK').then(() => true, () => false);
        client.release(ended ? undefined : true);
      }),
    );
  }
}

/** One round trip: the transaction and its exported snapshot. */
async function exportSnapshot(client: pg.PoolClient): Promise<string> {
  const results: unknown = await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot() AS id');
  const last = (Array.isArray(results) ? results.at(-1) : results) as pg.QueryResult<{ id: string }> | undefined;
  const id = last?.rows[0]?.id ?? '';
  if (!SNAPSHOT_ID.test(id)) throw new Error(`unexpected snapshot identifier "${id}"`);
  return id;
}

async function compareSides(readers: Record<Side, pg.PoolClient>, limits: VerifyLimits): Promise<VerificationReport> {
  const [sourceShapes, targetShapes] = await Promise.all([shapes(readers.source), shapes(readers.target)]);
  const sourceMeasures: TableMeasure[] = [];
  const targetMeasures: TableMeasure[] = [];
  const onTarget = new Set(targetShapes.map((s) => s.table));
  for (const shape of sourceShapes) {
    const rows = await count(readers.source, shape.table);
    const check = planCheck(shape, rows, limits);
    const starts = check.mode === 'sampled' ? await sampleStarts(readers.source, check, rows, limits) : [];
    const [s, t] = await Promise.all([
      measure(readers.source, shape, check, starts, limits, rows),
      onTarget.has(shape.table) ? measure(readers.target, shape, check, starts, limits) : undefined,
    ]);
    sourceMeasures.push(s);
    if (t) targetMeasures.push(t);
  }
  const onSource = new Set(sourceShapes.map((s) => s.table));
  for (const shape of targetShapes) {
    if (!onSource.has(shape.table)) targetMeasures.push({ table: shape.table, rows: await count(readers.target, shape.table), mode: 'count', checksum: null, samples: [] });
  }
  return compareMeasures(sourceMeasures, targetMeasures);
}

async function shapes(db: pg.PoolClient): Promise<TableShape[]> {
  const { rows } = await db.query<{ table: string; columns: string[]; key: string | null }>(SHAPES_SQL);
  return rows.map((r) => ({ table: r.table, columns: r.columns, key: r.key }));
}

/** `table` comes from format('%I.%I'): already quoted. */
async function count(db: pg.PoolClient, table: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`);
  return Number(rows[0]?.n ?? 0);
}

function rowHash(columns: readonly string[]): string {
  return `('x' || left(md5(ROW(${columns.map((c) => `t.${pg.escapeIdentifier(c)}`).join(', ')})::text), 16))::bit(64)::bigint`;
}

/** Up to `samples` distinct keys from a block sample of the source (its first key when the sample is empty). */
async function sampleStarts(db: pg.PoolClient, check: Extract<TableCheck, { mode: 'sampled' }>, rows: number, limits: VerifyLimits): Promise<string[]> {
  const key = pg.escapeIdentifier(check.key);
  const percent = Math.min(100, (100 * limits.samples * 4) / Math.max(rows, 1));
  const { rows: sampled } = await db.query<{ k: string }>(
    `SELECT DISTINCT ${key}::text AS k FROM ${check.table} TABLESAMPLE SYSTEM ($1) LIMIT $2`,
    [percent, limits.samples],
  );
  if (sampled.length > 0) return sampled.map((r) => r.k).sort();
  const { rows: first } = await db.query<{ k: string | null }>(`SELECT min(${key})::text AS k FROM ${check.table}`);
  return first[0]?.k == null ? [] : [first[0].k];
}

/** One side's measure of one table; `rows` when already counted in the same snapshot. */
async function measure(
  db: pg.PoolClient,
  shape: TableShape,
  check: TableCheck,
  starts: readonly string[],
  limits: VerifyLimits,
  rows?: number,
): Promise<TableMeasure> {
  const base = { table: shape.table, mode: check.mode, checksum: null, samples: [] };
  if (check.mode === 'count') return { ...base, rows: rows ?? (await count(db, shape.table)) };
  const hash = rowHash(shape.columns);
  if (check.mode === 'full') {
    const full = await db.query<{ n: string; sum: string }>(`SELECT count(*)::text AS n, coalesce(sum(${hash}), 0)::text AS sum FROM ${shape.table} t`);
    return { ...base, rows: Number(full.rows[0]?.n ?? 0), checksum: full.rows[0]?.sum ?? null };
  }
  const key = pg.escapeIdentifier(check.key);
  const samples: TableMeasure['samples'] = [];
  for (const from of starts) {
    const range = await db.query<{ n: string; sum: string }>(
      `SELECT count(*)::text AS n, coalesce(sum(h), 0)::text AS sum
         FROM (SELECT ${hash} AS h FROM ${shape.table} t WHERE t.${key} >= $1 ORDER BY t.${key} LIMIT $2) s`,
      [from, limits.rowsPerSample],
    );
    samples.push({ from, rows: Number(range.rows[0]?.n ?? 0), checksum: range.rows[0]?.sum ?? '' });
  }
  return { ...base, rows: rows ?? (await count(db, shape.table)), samples };
}

/** A checked-out client's error event needs a listener, or a connection lost meanwhile crashes the process. */
const ignore = () => undefined;
async function checkOut(pool: Pool): Promise<pg.PoolClient> {
  const client = await pool.connect();
  client.on('error', ignore);
  return client;
}
