/**
 * The split-brain rule: after the switch nothing but the bot and the reverse replication may commit
 * on the source. Writes applied by replication carry a replication origin and are not counted by the
 * adapter; what is left is someone else's, and the alert names who is connected to the source.
 */

/** A session on the source, from pg_stat_activity. */
export interface SourceClient {
  pid: number;
  /** client_addr; null for a Unix-socket connection. */
  address: string | null;
  applicationName: string;
  user: string;
  /** The session is inside a transaction that has written (backend_xid set). */
  writing: boolean;
}

/** Writes committed on the source since the last look, not made by replication. */
export interface ForeignWrites {
  transactions: number;
  changes: number;
  /** Tables written, schema-qualified. */
  tables: string[];
}

export interface SplitBrainFinding {
  writes: ForeignWrites;
  /** Who may have made them: the sessions that are not the bot's, writers first. */
  clients: SourceClient[];
}

/**
 * A finding when anything was written; the clients named are every session on the source that is not
 * the bot's own (by application name prefix), writers first.
 */
export function splitBrainFinding(writes: ForeignWrites, clients: readonly SourceClient[], botApplicationPrefix: string): SplitBrainFinding | null {
  if (writes.transactions === 0) return null;
  const others = clients
    .filter((c) => !c.applicationName.startsWith(botApplicationPrefix))
    .sort((a, b) => Number(b.writing) - Number(a.writing) || a.pid - b.pid);
  return { writes, clients: others };
}
