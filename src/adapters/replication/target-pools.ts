/**
 * Pools to the databases of each profile's target, for the reports' work on the target (schema guard,
 * reverse replication): opened on first use, kept for the next tick, ended by `close()`. The profile's
 * own database is the target's (DigitalOcean's) database; every other migrated database is its namesake.
 */
import { targetFor, type TargetConnection } from '../digitalocean/target-connection.js';

export class TargetPools<P extends { end(): Promise<void> }> {
  readonly #open: (target: TargetConnection) => P;
  /** By `profile\u0000database`: bounded by the configuration and the migrated databases. */
  readonly #pools = new Map<string, P>();

  constructor(open: (target: TargetConnection) => P) {
    this.#open = open;
  }

  /** The pool to `database` on the profile's `target`; `own`: it is the profile's own database. */
  pool(profileName: string, target: TargetConnection, database: string, own: boolean): P {
    const connection = targetFor(target, database, own);
    const key = `${profileName}\u0000${connection.database}`;
    let opened = this.#pools.get(key);
    if (!opened) {
      opened = this.#open(connection);
      this.#pools.set(key, opened);
    }
    return opened;
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }
}
