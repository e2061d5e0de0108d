/**
 * The reports' schema guard: a syncing session's source and target catalogs compared in every migrated
 * database, one catalog query per side and database. The databases and the source pools come from the
 * source registry; the target is reached through one-connection pools of its own (per profile and
 * database, opened on first use and kept for the next tick, ended by `close()`). A session's check that
 * has not answered when the next tick asks again is not doubled: that tick skips it.
 */
import type pg from 'pg';
import type { Session } from '../../domain/session.js';
import type { SchemaDriftChecks } from '../../reports/ports.js';
import type { TargetConnection } from '../digitalocean/target-connection.js';
import { pool } from '../source/connect.js';
import type { SourceRegistry } from '../source/source-registry.js';
import { driftInEveryDatabase } from './schema-catalog.js';
import { TargetPools } from './target-pools.js';

export type TargetPool = Pick<pg.Pool, 'query' | 'end'>;

export interface CatalogSchemaDriftChecksOptions {
  sources: Pick<SourceRegistry, 'pool' | 'databases'>;
  /** How the profile's target is reached: its database is the profile's own one's counterpart. */
  target: (profileName: string) => Promise<TargetConnection>;
  /** Opens a pool to one target database; default a one-connection pg pool. */
  openPool?: (target: TargetConnection) => TargetPool;
}

export class CatalogSchemaDriftChecks implements SchemaDriftChecks {
  readonly #o: CatalogSchemaDriftChecksOptions;
  readonly #targetPools: TargetPools<TargetPool>;
  /** Sessions whose check is running. */
  readonly #running = new Set<string>();

  constructor(options: CatalogSchemaDriftChecksOptions) {
    this.#o = options;
    this.#targetPools = new TargetPools(options.openPool ?? ((t) => pool(t, { max: 1, applicationName: 'pgcutover', queryTimeoutMs: 10_000 })));
  }

  async check(session: Session): Promise<string[] | null> {
    if (this.#running.has(session.id)) return null;
    this.#running.add(session.id);
    try {
      const { sources } = this.#o;
      // The profile's own database first: on the target it is the profile's DigitalOcean database.
      const [databases, target] = await Promise.all([sources.databases(session.profile), this.#o.target(session.profile)]);
      const own = databases[0];
      return await driftInEveryDatabase(
        databases,
        (database) => sources.pool(session.profile, database),
        (database) => this.#targetPools.pool(session.profile, target, database, database === own),
      );
    } finally {
      this.#running.delete(session.id);
    }
  }

  /** Ends the target pools (at shutdown). */
  close(): Promise<void> {
    return this.#targetPools.close();
  }
}
