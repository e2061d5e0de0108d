/**
 * What the journal keeps about one cutover attempt besides its step events: what was frozen and when,
 * lag at freeze, the fence, writes held, who requested and approved each gate. Recovery and the
 * summary read it.
 */
import type { TableDifference } from './switch-point.js';
import type { AttemptKind } from './cutover-plan.js';
import type { FenceResult } from './ports/replication.js';

/** What was frozen, so a restarted bot can resume exactly that. Never holds a password. */
export interface FrozenWhat {
  method: 'proxy-pause' | 'read-only-roles' | 'read-only-database';
  /** e.g. `pgbouncer`, `pgpool`, `http`, or `database`. */
  via: string;
  /** The proxy's database name, or the source database for in-database freezes. */
  database?: string;
  roles?: string[];
}

export interface LagAtFreeze {
  known: boolean;
  bytes?: number;
  seconds?: number | null;
  reason?: string;
}

/** Who asked for a gate and who approved it; `aheadOfTime`: the switch was approved before the freeze began. */
export interface GateAttribution {
  requestedBy?: string;
  approvedBy?: string;
  at?: string;
  aheadOfTime?: boolean;
}

export interface ApprovalsSummary {
  freeze?: GateAttribution;
  switch?: GateAttribution;
}

export interface AttemptRecord {
  sessionId: string;
  attempt: number;
  kind: AttemptKind;
  startedBy: string;
  startedAt: Date;
  frozenWhat: FrozenWhat | null;
  frozenAt: Date | null;
  freezeBudgetSeconds: number | null;
  lagAtFreeze: LagAtFreeze | null;
  fence: FenceResult | null;
  sequencesCopied: number | null;
  switchedAt: Date | null;
  resumedAt: Date | null;
  resumedOn: 'source' | 'target' | null;
  writesHeld: number | null;
  /** The freeze predicted just before the run (ms), for the summary beside the actual one. */
  predictedFreezeMs: number | null;
  /** Source and target compared as of the switch point, after the resume. */
  verification: Verification | null;
  approvals: ApprovalsSummary | null;
  /** The in-database freeze's record (previous settings), persisted before it changed anything; JSON the freeze parses back. */
  freezeRecord: unknown;
  outcome: string | null;
  endedAt: Date | null;
}

export type AttemptPatch = Partial<
  Pick<
    AttemptRecord,
    | 'frozenWhat'
    | 'frozenAt'
    | 'freezeBudgetSeconds'
    | 'lagAtFreeze'
    | 'fence'
    | 'sequencesCopied'
    | 'switchedAt'
    | 'resumedAt'
    | 'resumedOn'
    | 'writesHeld'
    | 'predictedFreezeMs'
    | 'verification'
    | 'approvals'
    | 'freezeRecord'
    | 'outcome'
    | 'endedAt'
  >
>;

/** Source and target compared as of the switch point: the same, different (tables named), or not run (why). */
export interface Verification {
  outcome: 'same' | 'different' | 'not_run';
  tables: number;
  differing: TableDifference[];
  reason?: string;
  /** Who let Finish go on despite the differences. */
  acknowledgedBy?: string;
}

/** How long writes were frozen in an attempt, when both ends are known. */
export function frozenMs(attempt: Pick<AttemptRecord, 'frozenAt' | 'resumedAt'>): number | null {
  return attempt.frozenAt && attempt.resumedAt ? attempt.resumedAt.getTime() - attempt.frozenAt.getTime() : null;
}
