/**
 * Replicating back as the reports see it (the ReverseReplications port): whether a session's latest
 * cutover replicates back (its journal), the state of its reverse slots and their removal over every
 * migrated database (the session's reverse replication built as the engine's machines build it), and
 * the sweep of reverse objects whose session is no longer active (a bot that crashed before removing
 * them). The target is reached through one-connection pools of its own per profile and database.
 *
 * The sweep lists the objects before the sessions: an object it sees was made by a session that is in
 * the listing unless it has ended (objects are made before the freeze of an active session).
 */
import type pg from 'pg';
import type { Profile } from '../../config/profiles.js';
import type { ReverseDropResult, ReverseStatus } from '../../domain/ports/reverse-replication.js';
import type { JournalRepository, SessionRepository } from '../../domain/ports/stores.js';
import { replicatingBack, type ReplicatingBack } from '../../domain/rollback-window.js';
import type { Session } from '../../domain/session.js';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { ReverseReplications } from '../../reports/ports.js';
import type { TargetConnection } from '../digitalocean/target-connection.js';
import { pool } from '../source/connect.js';
import type { SourceRegistry } from '../source/source-registry.js';
import { objectName, slotsByPrefix, type Pool } from './common.js';
import { dropReverseReplication, REVERSE_PREFIX, reversePublications, reverseSubscriptions } from './reverse-replication.js';
import { sessionReverse } from './session-reverse.js';
import { TargetPools } from './target-pools.js';

export type ReverseTargetPool = Pool & Pick<pg.Pool, 'end'>;

export interface PgReverseReplicationsOptions {
  sources: Pick<SourceRegistry, 'pool' | 'databases'>;
  /** How the profile's target is reached: its database is the profile's own one's counterpart. */
  target: (profileName: string) => Promise<TargetConnection>;
  /** The configured profiles: each one's source and target are swept. */
  profiles: ReadonlyMap<string, Pick<Profile, 'sequences'>>;
  journal: Pick<JournalRepository, 'entries' | 'latestCutover'>;
  sessions: Pick<SessionRepository, 'listActive'>;
  log: Logger;
  /** Opens a pool to one target database; default a one-connection pg pool. */
  openPool?: (target: TargetConnection) => ReverseTargetPool;
}

/** One migrated database of a profile, both sides. */
interface DatabasePair {
  source: Pool;
  target: Pool;
}

export class PgReverseReplications implements ReverseReplications {
  readonly #o: PgReverseReplicationsOptions;
  readonly #log: Logger;
  readonly #targetPools: TargetPools<ReverseTargetPool>;

  constructor(options: PgReverseReplicationsOptions) {
    this.#o = options;
    this.#log = options.log.child({ name: 'reverse-replications' });
    this.#targetPools = new TargetPools(options.openPool ?? ((t) => pool(t, { max: 1, applicationName: 'pgcutover', queryTimeoutMs: 10_000 })));
  }

  async replicatingBack(session: Session): Promise<ReplicatingBack | undefined> {
    const cutover = await this.#o.journal.latestCutover(session.id);
    if (!cutover?.switchedAt) return undefined;
    return replicatingBack(await this.#o.journal.entries(session.id), cutover);
  }

  async status(session: Session): Promise<ReverseStatus> {
    return (await this.#reverse(session)).status();
  }

  async drop(session: Session): Promise<ReverseDropResult> {
    return (await this.#reverse(session)).drop();
  }

  async sweep(): Promise<number> {
    const found = await Promise.all(
      [...this.#o.profiles.keys()].map((profile) =>
        this.#objects(profile).catch((err: unknown) => {
          this.#log.warn({ err, profile }, 'could not list the reverse replication objects of the profile');
          return [];
        }),
      ),
    );
    const active = new Set((await this.#o.sessions.listActive()).map((s) => objectName(REVERSE_PREFIX, s.id)));
    let removed = 0;
    for (const { owner, pair } of found.flat()) {
      if (active.has(owner)) continue;
      const result = await dropReverseReplication(pair.source, pair.target, owner);
      this.#log.info({ owner, ...result }, 'reverse replication of a session no longer active removed');
      removed += result.subscriptions + result.slots + result.publications;
    }
    return removed;
  }

  /** Ends the target pools (at shutdown). */
  close(): Promise<void> {
    return this.#targetPools.close();
  }

  async #reverse(session: Session) {
    const profile = this.#o.profiles.get(session.profile);
    if (!profile) throw new CodedError(ErrorCode.ConfigInvalid, `Session ${session.id} names profile "${session.profile}", which is not configured.`);
    const { databases, pairOf, target } = await this.#databases(session.profile);
    return sessionReverse({
      sessionId: session.id,
      databases,
      source: (database) => pairOf(database).source,
      target: (database) => pairOf(database).target,
      targetConnection: target,
      sequenceMargin: profile.sequences.margin,
      logger: this.#log,
    });
  }

  /** The profile's migrated databases (its own first) and the pools to each on both sides. */
  async #databases(profileName: string) {
    const { sources } = this.#o;
    const [databases, target] = await Promise.all([sources.databases(profileName), this.#o.target(profileName)]);
    const own = databases[0];
    const pairOf = (database: string): DatabasePair => ({
      source: sources.pool(profileName, database),
      target: this.#targetPools.pool(profileName, target, database, database === own),
    });
    return { databases, pairOf, target };
  }

  /** Every session (by its objects' common name) with reverse objects in one of the profile's databases, per database. */
  async #objects(profileName: string): Promise<{ owner: string; pair: DatabasePair }[]> {
    const { databases, pairOf } = await this.#databases(profileName);
    const perDatabase = await Promise.all(
      databases.map(async (database) => {
        const pair = pairOf(database);
        const [subscriptions, slots, publications] = await Promise.all([
          reverseSubscriptions(pair.source, REVERSE_PREFIX),
          slotsByPrefix(pair.target, REVERSE_PREFIX),
          reversePublications(pair.target, REVERSE_PREFIX),
        ]);
        const owners = new Set([...subscriptions, ...slots.map((s) => s.name), ...publications].map(ownerOf));
        return [...owners].map((owner) => ({ owner, pair }));
      }),
    );
    return perDatabase.flat();
  }
}

/** `pgcutover_rev_<session>` of `pgcutover_rev_<session>` or `pgcutover_rev_<session>_<database>` (the session part has no underscore). */
function ownerOf(name: string): string {
  return `${REVERSE_PREFIX}${name.slice(REVERSE_PREFIX.length).split('_')[0] ?? ''}`;
}
