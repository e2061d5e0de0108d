/** What the bot knows about replication from the source to the target: lag, and the fence. */

/** A lag measurement. Unknown lag is its own case with a reason: it is never reported or treated as zero. */
export type LagSample =
  | {
      known: true;
      at: Date;
      slot: string;
      slotActive: boolean;
      /** WAL the target has not confirmed yet: pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn). */
      bytes: number;
      /** Time estimate (replay lag or bytes over the recent apply rate); null when it cannot be estimated. */
      seconds: number | null;
    }
  | { known: false; at: Date; reason: string };

export interface LagProbe {
  measure(): Promise<LagSample>;
}

export interface FenceResult {
  method: 'marker' | 'slot-lsn';
  /** The source LSN the fence proved applied on the target. */
  lsn: string;
  elapsedMs: number;
}

/**
 * Proof that every transaction committed on the source before the call is applied on the target.
 * Rejects with FenceTimeout when the proof does not come within `timeoutMs`.
 */
export interface Fence {
  prove(timeoutMs: number): Promise<FenceResult>;
  /** Before the freeze: opens and holds what prove() needs, so nothing is opened inside it. */
  prepare?(): Promise<void>;
  /** Gives back what prepare() holds when prove() never runs (the freeze failed). */
  close?(): Promise<void>;
}
