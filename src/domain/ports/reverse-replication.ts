/**
 * Reverse replication: from the switch point on, every write the applications make on the target flows
 * back to the source, so a rollback loses nothing. When each call happens relative to the cutover:
 *
 *   before the freeze   prepare()    checks both sides, creates the target's publication and slot, holds a target connection
 *   inside the freeze   establish()  after the fence, before repoint/resume: the switch point on the target (the fence's own reading, or one round trip)
 *   after the resume    attach(lsn)  once the forward stream is stopped: the slot moved to the switch point, the subscription on the source
 *   any time after      status()     the reverse slot's retained WAL and whether the source applies
 *   rollback            rollback.fence / rollback.sequences, inside a freeze of the target
 *   finish, window end, drop()      removes slot, subscription and publication on both sides; idempotent,
 *   abort, after crash              finds them by name, so it also cleans up after a crashed bot
 */
import type { Fence } from './replication.js';
import type { SequenceCopier } from './sequences.js';

/** Whether reverse replication can be set up; the reasons are in words for the channel. */
export interface ReverseCapability {
  ok: boolean;
  /** Why not (empty when ok). */
  reasons: string[];
  /** How the target publishes: every table (superuser) or the listed tables (their owner). */
  publication: 'all-tables' | 'table-list' | null;
}

export interface ReverseAnchor {
  slot: string;
  /** The target LSN the reverse stream starts at: the switch point. */
  lsn: string;
  elapsedMs: number;
}

export interface ReverseStatus {
  /** The reverse slot exists on the target. */
  slot: boolean;
  /** A walsender streams it to the source. */
  streaming: boolean;
  /** WAL the target keeps for the slot (current position minus restart_lsn); null without a slot. */
  retainedWalBytes: number | null;
  /** Target writes not yet confirmed applied on the source; null without a slot. */
  lagBytes: number | null;
}

export interface ReverseDropResult {
  subscriptions: number;
  slots: number;
  publications: number;
}

export interface ReverseReplication {
  /** Whether prepare() could set it up, changing nothing (preflight). */
  capability(): Promise<ReverseCapability>;
  /**
   * Before the freeze: checks that the target can publish and keep a slot and that the source can
   * subscribe, creates the publication and the slot on the target (a slot left by an earlier attempt is
   * replaced) and holds the connection establish() uses. Never throws for a missing right: it reports it.
   */
  prepare(): Promise<ReverseCapability>;
  /**
   * Inside the freeze, after the fence proved source == target and before the first application write
   * can reach the target: the target's WAL position there, the switch point the reverse stream starts at;
   * null when the target has no reverse slot (prepare() found reverse replication impossible).
   * `proven` (the fence's targetLsn) is such a position already: then nothing is read when prepare()
   * made the slot in this process.
   */
  establish(proven?: string): Promise<ReverseAnchor | null>;
  /**
   * After the resume, once the forward stream (DigitalOcean's migration) is stopped: moves the slot to
   * `from` (the anchor's LSN) and creates the source's subscription on it (no copy, no new slot). Idempotent.
   */
  attach(from: string): Promise<void>;
  status(): Promise<ReverseStatus>;
  /** Rollback, with writes frozen on the target: proof in the reverse direction, then target sequences onto the source. */
  readonly rollback: { fence: Fence; sequences: SequenceCopier };
  /** Removes every object of this session on both sides (also a crashed run's). Idempotent. */
  drop(): Promise<ReverseDropResult>;
  /** Gives back the held connection (when establish() never runs). */
  close(): Promise<void>;
}
