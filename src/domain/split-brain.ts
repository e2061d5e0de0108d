/**
 * The split-brain rule: after the switch nothing but the bot and the reverse replication may commit
 * on the source. Writes applied by replication carry a replication origin and are not counted by the
 * adapter; what is left is someone else's, and the alert names who is connected to the source.
 */
import type { AlertNotice } from './alerts.js';

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

/** At most this many clients are named in a notice. */
const CLIENTS_NAMED = 5;

/**
 * The alert for a finding. Each finding is writes the watch had not seen before (it consumes them),
 * so each is one notice and the same writes are never reported twice.
 */
export function splitBrainNotice(finding: SplitBrainFinding): AlertNotice {
  const { transactions, changes, tables } = finding.writes;
  const what = `${plural(transactions, 'transaction')} (${plural(changes, 'change')})${tables.length > 0 ? ` to ${tables.join(', ')}` : ''}`;
  const named = finding.clients.slice(0, CLIENTS_NAMED).map(describeClient);
  const more = finding.clients.length - named.length;
  const who =
    named.length === 0
      ? 'No client is connected to it now.'
      : `Connected to it now: ${named.join('; ')}${more > 0 ? `; and ${more} more` : ''}.`;
  return {
    kind: 'split_brain',
    action: 'fire',
    title: 'writes on the source after the switch',
    text: `${what} committed on the source since the last check, where nobody reads them any more. ${who}`,
  };
}

/** The alert when the watch cannot run (no test_decoding, no free slot): writes on the source go unseen. */
export function watchNotRunningNotice(reason: string): AlertNotice {
  return {
    kind: 'split_brain',
    action: 'fire',
    title: 'the source is not watched after the switch',
    text: `Writes made directly on the source would go unnoticed: ${reason}.`,
  };
}

function describeClient(c: SourceClient): string {
  const app = c.applicationName === '' ? 'no application name' : `application "${c.applicationName}"`;
  return `${c.address ?? 'local socket'}, ${app}, user ${c.user || 'unknown'}${c.writing ? ' (writing now)' : ''}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
