/**
 * The schema guard's rule: a catalog of the tables logical replication carries (columns with their
 * types, keys and constraints, indexes) on each side, and the differences between them, named. Logical
 * replication applies rows by column name, so column positions are not compared.
 */
import type { AlertNotice } from './alerts.js';

export interface CatalogColumn {
  name: string;
  /** format_type(): e.g. "character varying(20)", "bigint". */
  type: string;
  notNull: boolean;
}

export interface CatalogTable {
  /** Schema-qualified, e.g. "public.orders". */
  table: string;
  columns: CatalogColumn[];
  /** Constraint definitions by name (pg_get_constraintdef): primary key, unique, foreign keys, checks. */
  constraints: Record<string, string>;
  /** Index definitions by name (pg_get_indexdef). */
  indexes: Record<string, string>;
}

export interface SchemaCatalog {
  tables: CatalogTable[];
}

export type SchemaDifference =
  | { kind: 'table-only-on'; side: 'source' | 'target'; table: string }
  | { kind: 'column-only-on'; side: 'source' | 'target'; table: string; column: string; type: string }
  | { kind: 'column-type'; table: string; column: string; source: string; target: string }
  | { kind: 'column-nullability'; table: string; column: string; sourceNotNull: boolean }
  | { kind: 'constraint' | 'index'; table: string; name: string; source: string | null; target: string | null };

/** Every difference between the two catalogs, tables in name order. Empty: no drift. */
export function diffSchemas(source: SchemaCatalog, target: SchemaCatalog): SchemaDifference[] {
  const out: SchemaDifference[] = [];
  const targetTables = new Map(target.tables.map((t) => [t.table, t]));
  const sourceNames = new Set(source.tables.map((t) => t.table));
  for (const s of [...source.tables].sort((a, b) => a.table.localeCompare(b.table))) {
    const t = targetTables.get(s.table);
    if (!t) out.push({ kind: 'table-only-on', side: 'source', table: s.table });
    else out.push(...diffTable(s, t));
  }
  for (const t of target.tables) if (!sourceNames.has(t.table)) out.push({ kind: 'table-only-on', side: 'target', table: t.table });
  return out;
}

function diffTable(s: CatalogTable, t: CatalogTable): SchemaDifference[] {
  const out: SchemaDifference[] = [];
  const table = s.table;
  const targetColumns = new Map(t.columns.map((c) => [c.name, c]));
  for (const c of s.columns) {
    const other = targetColumns.get(c.name);
    if (!other) out.push({ kind: 'column-only-on', side: 'source', table, column: c.name, type: c.type });
    else if (other.type !== c.type) out.push({ kind: 'column-type', table, column: c.name, source: c.type, target: other.type });
    else if (other.notNull !== c.notNull) out.push({ kind: 'column-nullability', table, column: c.name, sourceNotNull: c.notNull });
  }
  const sourceColumns = new Set(s.columns.map((c) => c.name));
  for (const c of t.columns) if (!sourceColumns.has(c.name)) out.push({ kind: 'column-only-on', side: 'target', table, column: c.name, type: c.type });
  for (const kind of ['constraint', 'index'] as const) {
    const [a, b] = kind === 'constraint' ? [s.constraints, t.constraints] : [s.indexes, t.indexes];
    for (const name of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      if (a[name] !== b[name]) out.push({ kind, table, name, source: a[name] ?? null, target: b[name] ?? null });
    }
  }
  return out;
}

/** One difference in words, e.g. "public.orders: column note (text) only on the source". */
export function describeDifference(d: SchemaDifference): string {
  switch (d.kind) {
    case 'table-only-on':
      return `${d.table}: table only on the ${d.side}`;
    case 'column-only-on':
      return `${d.table}: column ${d.column} (${d.type}) only on the ${d.side}`;
    case 'column-type':
      return `${d.table}: column ${d.column} is ${d.source} on the source, ${d.target} on the target`;
    case 'column-nullability':
      return `${d.table}: column ${d.column} is ${d.sourceNotNull ? 'NOT NULL' : 'nullable'} on the source only`;
    default:
      return `${d.table}: ${d.kind} ${d.name} ${d.source === null ? 'only on the target' : d.target === null ? 'only on the source' : 'differs'}`;
  }
}

/** At most this many differences are named in one notice. */
const DIFFERENCES_NAMED = 10;
const DRIFT_TITLE = 'schema drift between source and target';

/**
 * The channel's notice when a syncing session's schemas are compared again: the differences not
 * announced before (each is announced once, however many checks see it), or, once none is left, that
 * the drift is resolved. Differences that go while others stay say nothing: the freeze stays refused.
 */
export function schemaDriftNotice(announced: readonly string[], current: readonly string[]): AlertNotice | undefined {
  if (current.length === 0) {
    return announced.length === 0
      ? undefined
      : { kind: 'schema_drift', action: 'clear', title: DRIFT_TITLE, text: 'Resolved: source and target have the same tables, columns, keys and indexes again.' };
  }
  const seen = new Set(announced);
  const fresh = current.filter((d) => !seen.has(d));
  if (fresh.length === 0) return undefined;
  const named = fresh.slice(0, DIFFERENCES_NAMED);
  const more = fresh.length - named.length;
  const all = current.length > fresh.length ? ` (${current.length} differences in all)` : '';
  return {
    kind: 'schema_drift',
    action: 'fire',
    title: DRIFT_TITLE,
    text:
      `${named.join('; ')}${more > 0 ? `; and ${more} more` : ''}${all}. Logical replication carries rows, never schema changes: ` +
      'apply the same DDL on the other side. The freeze is refused until the schemas match.',
  };
}
