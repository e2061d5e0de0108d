/**
 * Which databases DigitalOcean's online migration copies: every database of the source server except
 * the templates and `ignore_dbs` (DO's docs: "All databases are migrated … exclude some with
 * ignore_dbs"; its engine, like aiven-db-migrate, lists pg_database without template0/template1).
 * One query, used by the bot (what a session must fence, copy and freeze) and by the simulator (what it
 * replicates), so the two never disagree.
 */
import type { Queryable } from './lag-probe.js';

export async function listMigratedDatabases(source: Queryable, ignoreDbs: readonly string[]): Promise<string[]> {
  const { rows } = await source.query<{ datname: string }>(
    'SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn AND datname <> ALL ($1::text[]) ORDER BY datname',
    [[...ignoreDbs]],
  );
  return rows.map((r) => r.datname);
}
