/**
 * A session's reverse replication over every migrated database, as the engine's machines and the
 * reports build it: one PgReverseReplication per database (the profile's own one named after the
 * session alone, the others with their database), behind everyDatabaseReverse.
 */
import type { ReverseReplication } from '../../domain/ports/reverse-replication.js';
import type { Logger } from '../../log.js';
import { targetFor, type TargetConnection } from '../digitalocean/target-connection.js';
import type { Pool } from './common.js';
import { everyDatabaseReverse } from './every-database-reverse.js';
import { PgReverseReplication } from './reverse-replication.js';

export interface SessionReverseOptions {
  sessionId: string;
  /** The migrated databases, the profile's own first. */
  databases: readonly string[];
  source: (database: string) => Pool;
  target: (database: string) => Pool;
  /** The profile's target: its database is the own database's counterpart, the others are namesakes. */
  targetConnection: TargetConnection;
  sequenceMargin: number;
  logger: Logger;
}

export function sessionReverse(o: SessionReverseOptions): ReverseReplication {
  const own = o.databases[0];
  return everyDatabaseReverse(
    o.databases.map((database) => ({
      database,
      part: new PgReverseReplication({
        source: o.source(database),
        target: o.target(database),
        targetConnection: targetFor(o.targetConnection, database, database === own),
        sessionId: o.sessionId,
        ...(database === own ? {} : { database }),
        sequenceMargin: o.sequenceMargin,
        logger: o.logger,
      }),
    })),
  );
}
