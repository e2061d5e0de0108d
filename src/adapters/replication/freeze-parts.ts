/**
 * What proves and copies inside the freeze, wired to work together: each migrated database's fence
 * carries its sequence copy's read in the marker's message, and the profile's own database's fence
 * takes the switch-point snapshots for the verifier. One place, so every caller (the session's
 * machines, the benchmark's rig) gets the same freeze.
 */
import type pg from 'pg';
import type { Logger } from '../../log.js';
import { EveryDatabaseFence, everyDatabaseSequences } from '../source/every-database.js';
import { ReplicationFence } from '../source/fence.js';
import type { Queryable } from '../source/lag-probe.js';
import { sequenceCopier, type SequencePusher } from '../source/sequences.js';
import { SnapshotSwitchPointVerifier } from './switch-point-verifier.js';

/** A database's connections: `connect` lets the fence and the copy hold one across the freeze. */
type Pool = Queryable & Pick<pg.Pool, 'connect'>;

export interface FreezeParts {
  fence: EveryDatabaseFence;
  sequences: SequencePusher;
  verifier: SnapshotSwitchPointVerifier;
}

export function freezeParts(o: {
  databases: readonly string[];
  /** The profile's own database: the one compared at the switch point. */
  own: string;
  sourceOf(database: string): Pool;
  targetOf(database: string): Pool;
  slotOf(database: string): string;
  sequenceMargin: number;
  logger: Logger;
}): FreezeParts {
  const verifier = new SnapshotSwitchPointVerifier({ source: o.sourceOf(o.own), target: o.targetOf(o.own), logger: o.logger });
  const copiers = o.databases.map((database) => ({
    database,
    part: sequenceCopier({ source: o.sourceOf(database), target: o.targetOf(database), margin: o.sequenceMargin }),
  }));
  const fence = new EveryDatabaseFence(
    copiers.map(({ database, part: copier }) => ({
      database,
      part: new ReplicationFence({
        source: o.sourceOf(database),
        target: o.targetOf(database),
        slot: o.slotOf(database),
        logger: o.logger,
        ...(copier.alongTheMarker ? { alongTheMarker: copier.alongTheMarker } : {}),
        ...(database === o.own ? { switchPoint: verifier } : {}),
      }),
    })),
  );
  return { fence, sequences: everyDatabaseSequences(copiers), verifier };
}
