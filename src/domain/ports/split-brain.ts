/**
 * The split-brain watch on the source after the switch: committed writes not made by the bot or the
 * reverse replication, with who is connected.
 *
 *   after the resume on the target   start()   from then on every write is seen (a slot on the source)
 *   every report tick until finish   check()   null, or a finding for the alert
 *   finish, abort, rollback, crash   stop()    removes what start() created; idempotent, by name
 */
import type { SplitBrainFinding } from '../split-brain.js';

export type WatchStart = { ok: true } | { ok: false; reason: string };

export interface SplitBrainWatch {
  start(): Promise<WatchStart>;
  check(): Promise<SplitBrainFinding | null>;
  stop(): Promise<void>;
}
