/**
 * The schema guard's adapter: one catalog query per side (tables, columns with types, constraints,
 * indexes of every user table), validated, normalised, fingerprinted (sha-256) and compared by the
 * domain's diffSchemas(). Cheap: catalog only, one round trip per side.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { z } from 'zod';
import type { SchemaComparison, SchemaGuard } from '../../domain/ports/schema-guard.js';
import { describeDifference, diffSchemas, type SchemaCatalog } from '../../domain/schema-drift.js';
import { CodedError, ErrorCode } from '../../errors.js';
import { settleAll } from '../settle-all.js';
import { USER_SCHEMA } from './common.js';

/** User tables and partitioned parents outside the system schemas. */
const CATALOG_SQL = `
  SELECT format('%I.%I', n.nspname, c.relname) AS "table",
         (SELECT coalesce(json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), 'notNull', a.attnotnull)
                                    ORDER BY a.attname), '[]')
            FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
         (SELECT coalesce(json_object_agg(co.conname, pg_get_constraintdef(co.oid)), '{}')
            FROM pg_constraint co WHERE co.conrelid = c.oid) AS constraints,
         (SELECT coalesce(json_object_agg(ic.relname, pg_get_indexdef(i.indexrelid)), '{}')
            FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid) AS indexes
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p') AND ${USER_SCHEMA}
   ORDER BY 1`;

const Row = z.object({
  table: z.string(),
  columns: z.array(z.object({ name: z.string(), type: z.string(), notNull: z.boolean() })),
  constraints: z.record(z.string(), z.string()),
  indexes: z.record(z.string(), z.string()),
});

const sorted = (record: Record<string, string>) => Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));

/** The catalog of one database, in a canonical order (so equal schemas give equal fingerprints). */
export async function readCatalog(db: Pick<pg.Pool, 'query'>): Promise<SchemaCatalog> {
  const { rows } = await db.query(CATALOG_SQL);
  const parsed = z.array(Row).safeParse(rows);
  if (!parsed.success) throw new CodedError(ErrorCode.Internal, `The catalog query returned an unexpected shape: ${z.prettifyError(parsed.error)}`);
  return { tables: parsed.data.map((t) => ({ ...t, constraints: sorted(t.constraints), indexes: sorted(t.indexes) })) };
}

export function fingerprint(catalog: SchemaCatalog): string {
  return createHash('sha256').update(JSON.stringify(catalog)).digest('hex');
}

export class CatalogSchemaGuard implements SchemaGuard {
  readonly #source: Pick<pg.Pool, 'query'>;
  readonly #target: Pick<pg.Pool, 'query'>;

  constructor(options: { source: Pick<pg.Pool, 'query'>; target: Pick<pg.Pool, 'query'> }) {
    this.#source = options.source;
    this.#target = options.target;
  }

  async compare(): Promise<SchemaComparison> {
    const [source, target] = await Promise.all([readCatalog(this.#source), readCatalog(this.#target)]).catch((cause: unknown) => {
      if (cause instanceof CodedError) throw cause;
      throw new CodedError(ErrorCode.DatabaseUnavailable, `Could not read the schemas of source and target: ${(cause as Error).message}`, { cause });
    });
    return { sourceFingerprint: fingerprint(source), targetFingerprint: fingerprint(target), differences: diffSchemas(source, target) };
  }
}

type Catalogued = Pick<pg.Pool, 'query'>;

/**
 * Source and target compared in every migrated database at once: the differences in words, each naming
 * its database when there are several (the preflight's schema check and the reports' schema guard).
 */
export async function driftInEveryDatabase(
  databases: readonly string[],
  sourceOf: (database: string) => Catalogued,
  targetOf: (database: string) => Catalogued,
): Promise<string[]> {
  const drift = await settleAll(databases, async (database) => {
    const { differences } = await new CatalogSchemaGuard({ source: sourceOf(database), target: targetOf(database) }).compare();
    return differences.map((d) => (databases.length > 1 ? `${database}: ` : '') + describeDifference(d));
  });
  return drift.flat();
}
