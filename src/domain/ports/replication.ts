/** What the bot knows about replication from the source to the target: lag, and the fence. */

/** One migrated database's lag, when the session covers several: its slot's bytes and seconds, or why unknown. */
export type DatabaseLag =
  | { database: string; known: true; bytes: number; seconds: number | null }
  | { database: string; known: false; reason: string };

/**
 * A lag measurement. Unknown lag is its own case with a reason: it is never reported or treated as zero.
 * With several migrated databases: the largest of their lags (unknown when any is), and each in `databases`.
 */
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
      databases?: DatabaseLag[];
    }
  | { known: false; at: Date; reason: string; databases?: DatabaseLag[] };

export interface LagProbe {
  measure(): Promise<LagSample>;
}

export interface FenceResult {
  method: 'marker' | 'slot-lsn';
  /** The source LSN the fence proved applied on the target. */
  lsn: string;
  elapsedMs: number;
  /**
   * The target's WAL insert position, read in the statement that found the marker there: past every
   * change the proof covers (marker method only). Inside a freeze it is the reverse stream's switch point.
   */
  targetLsn?: string;
  /** With several migrated databases: each one's fence (the fields above are the slowest one's). */
  databases?: (Omit<FenceResult, 'databases'> & { database: string })[];
}

/**
 * Proof that every transaction committed on the source before the call is applied on the target.
 * Rejects with FenceTimeout when the proof does not come within `timeoutMs`.
 */
export interface Fence {
  prove(timeoutMs: number): Promise<FenceResult>;
  /** Before the freeze: opens and holds what prove() needs, so nothing is opened inside it. */
  prepare?(): Promise<void>;
  /**
   * Just before writes stop: one proof while they still flow, keeping what prove() holds. Replication
   * has then shipped and applied what was committed so far (a source on asynchronous commit has its
   * WAL flushed), so the proof inside the freeze waits only for the writes of the drain.
   */
  catchUp?(timeoutMs: number): Promise<FenceResult>;
  /** Gives back what prepare() holds when prove() never runs (the freeze failed). */
  close?(): Promise<void>;
}
