/**
 * The two records a session leaves of what happened to it, read back as sequences of facts so a test
 * can compare them: the audit rows of the store (`audit_log`, in id order) and the lines of the status
 * message's thread in Slack (in posting order). A fact is named `action:outcome` as its audit row is;
 * a thread line is mapped to the same name from its wording (an independent reading of what people
 * see: a line this file cannot name is reported as `?` with its text, never silently skipped).
 */
import type pg from 'pg';
import type { FakeMessage } from './fake-slack.js';

export interface AuditRow {
  id: number;
  actor: string;
  action: string;
  outcome: string;
  details: Record<string, unknown>;
}

/** The audit rows of a session, oldest first. */
export async function auditRows(store: Pick<pg.Pool, 'query'>, sessionId: string): Promise<AuditRow[]> {
  const { rows } = await store.query<AuditRow & { id: string }>(
    'SELECT id, actor, action, outcome, details FROM audit_log WHERE session_id = $1 ORDER BY id',
    [sessionId],
  );
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

export const auditKey = (row: Pick<AuditRow, 'action' | 'outcome'>) => `${row.action}:${row.outcome}`;

/** Refusals only the audit log keeps (a stale button, a mistyped database name): no thread line. */
export function isQuiet(row: AuditRow): boolean {
  return row.outcome === 'refused' && ['stale', 'typed database name did not match'].includes(String(row.details.reason));
}

const MENTION = '(?:<@(\\w+)>|the bot)';
const re = (source: string) => new RegExp(source);

/** Thread wording → fact name; `actor`: the line names who did it first (checked against the audit row). */
const LINE_PATTERNS: Array<{ pattern: RegExp; key: string | ((m: RegExpExecArray) => string); actor?: boolean }> = [
  { pattern: re(`^:rocket: ${MENTION} started a migration of \\*`), key: 'start:requested', actor: true },
  { pattern: /^:arrows_counterclockwise: DigitalOcean's online migration is running/, key: 'start:succeeded' },
  { pattern: /^:no_entry: Writes were not frozen:/, key: 'freeze:refused' },
  { pattern: re(`^:no_entry: ${MENTION} tried to (\\w+) (\\w+): refused,`), key: (m) => `${m[2]}_${m[3]}:refused`, actor: true },
  { pattern: re(`^:no_entry: ${MENTION} tried to (\\w+): refused,`), key: (m) => `${m[2]}:refused`, actor: true },
  { pattern: re(`^:raising_hand: ${MENTION} requested the write freeze\\.`), key: 'freeze_request:requested', actor: true },
  { pattern: re(`^:raising_hand: ${MENTION} requested the switch to the target\\.`), key: 'switch_request:requested', actor: true },
  { pattern: re(`^:leftwards_arrow_with_hook: ${MENTION} withdrew the (freeze|switch) request`), key: (m) => `${m[2]}_withdraw:succeeded`, actor: true },
  { pattern: re(`^:ice_cube: ${MENTION} is freezing writes`), key: 'freeze_now:approved', actor: true },
  { pattern: re(`^:white_check_mark: ${MENTION} approved the write freeze requested by`), key: 'freeze_approve:approved', actor: true },
  { pattern: re(`^:white_check_mark: ${MENTION} approved the switch requested by`), key: 'switch_approve:approved', actor: true },
  { pattern: re(`^:twisted_rightwards_arrows: ${MENTION} confirmed the switch`), key: 'switch_now:approved', actor: true },
  { pattern: /^:ice_cube: Writes are frozen \(budget/, key: 'freeze:succeeded' },
  { pattern: /^:hourglass_flowing_sand: The fence is proven\./, key: 'switch:info' },
  { pattern: /^:twisted_rightwards_arrows: Switched:/, key: 'switch:succeeded' },
  { pattern: /^:white_check_mark: Verified at the switch point:|^:grey_question: The data was not compared at the switch point/, key: 'verify:info' },
  { pattern: /^:warning: Verification at the switch point found differences/, key: 'verify:failed' },
  { pattern: /^:repeat: Replicating back:/, key: 'replicate_back:succeeded' },
  { pattern: /^:warning: Not replicating back:/, key: 'replicate_back:info' },
  { pattern: /^:warning: Replicating back failed:/, key: 'replicate_back:failed' },
  { pattern: /I could NOT resume writes on the source/, key: 'resume:failed' },
  { pattern: /[Rr]esumed writes on the source; nothing was switched|Writes resumed on the source; nothing was switched/, key: 'resume:succeeded' },
  { pattern: re(`^:leftwards_arrow_with_hook: Rolled back by ${MENTION}`), key: 'rollback:succeeded', actor: true },
  { pattern: /^:checkered_flag: Finished\./, key: 'finish:succeeded' },
  { pattern: re(`^:octagonal_sign: Aborted by ${MENTION}`), key: 'abort:succeeded', actor: true },
  { pattern: /^:x: (\w+) failed:/, key: (m) => `${m[1]!.toLowerCase()}:failed` },
  { pattern: /^:warning: After a restart I found a step under way/, key: 'recovery:succeeded' },
  { pattern: re(`^:calendar: ${MENTION} set lag reports`), key: 'report:succeeded', actor: true },
];

export interface ThreadFact {
  /** `action:outcome`, or `?` for a line that is no fact line. */
  key: string;
  /** The user the line names as the one who did it (when the wording names one first); `bot` for "the bot". */
  actor?: string;
  text: string;
  broadcast: boolean;
}

export function lineFact(message: Pick<FakeMessage, 'text' | 'broadcast'>): ThreadFact {
  for (const { pattern, key, actor } of LINE_PATTERNS) {
    const m = pattern.exec(message.text);
    if (!m) continue;
    return {
      key: typeof key === 'string' ? key : key(m),
      ...(actor ? { actor: m[1] ?? 'bot' } : {}),
      text: message.text,
      broadcast: message.broadcast,
    };
  }
  return { key: '?', text: message.text, broadcast: message.broadcast };
}

/** Both records of a session, side by side. */
export interface Trail {
  rows: AuditRow[];
  /** Audit fact names, oldest first (quiet refusals included). */
  audited: string[];
  /** Audit fact names that should have a thread line, oldest first. */
  expectedLines: string[];
  lines: ThreadFact[];
  /** Thread fact names, in posting order. */
  posted: string[];
}

export function trailOf(rows: AuditRow[], thread: FakeMessage[]): Trail {
  const lines = thread.map(lineFact);
  return {
    rows,
    audited: rows.map(auditKey),
    expectedLines: rows.filter((r) => !isQuiet(r)).map(auditKey),
    lines,
    posted: lines.map((l) => l.key),
  };
}

/** Pairs of (audit actor, line actor) that differ, for lines that name who did it. */
export function actorMismatches(trail: Trail): string[] {
  const loud = trail.rows.filter((r) => !isQuiet(r));
  const out: string[] = [];
  trail.lines.forEach((line, i) => {
    const row = loud[i];
    if (row && line.actor !== undefined && auditKey(row) === line.key && row.actor !== line.actor) {
      out.push(`${line.key}: audit actor ${row.actor}, thread line names ${line.actor} (${line.text})`);
    }
  });
  return out;
}

/** Values that occur more than once. */
export function duplicates<T>(values: T[]): T[] {
  return [...new Set(values.filter((v, i) => values.indexOf(v) !== i))];
}

/** A readable dump of both records, for failure messages. */
export function describeTrail(trail: Trail): string {
  return [
    'audit rows:',
    ...trail.rows.map((r) => `  #${r.id} ${r.actor} ${auditKey(r)} ${JSON.stringify(r.details).slice(0, 160)}`),
    'thread lines:',
    ...trail.lines.map((l) => `  [${l.key}]${l.broadcast ? ' (broadcast)' : ''} ${l.text.slice(0, 200)}`),
  ].join('\n');
}
