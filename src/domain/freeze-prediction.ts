/**
 * How long writes will wait, predicted before anyone approves, and what an approval is bound to.
 *
 * The prediction adds up what the run does while writes wait, from figures measured a moment before:
 * the drain (PAUSE answers once the longest open write transaction ends), the proxy's admin round
 * trips (PAUSE, its check beside the fence; RELOAD, its check and RESUME in one message), the fence (a
 * row written on the source, carried by replication, read on the target) and the sequence copy (its
 * read in the fence marker's message, one target statement), which runs beside the fence. The
 * in-database freeze locks roles out on the source instead of pausing.
 */
import type { Strategy } from './session.js';

/** Figures measured on the real parts just before the prediction. */
export interface FreezeInputs {
  /** Age of the oldest open write transaction on the source: what a freeze waits for before it holds (ms). */
  drainMs: number;
  /** One round trip to the source, to the target, and to the proxy's admin console (null: no proxy), ms. */
  sourceRttMs: number;
  targetRttMs: number;
  proxyRttMs: number | null;
  /** How far behind the target applies (the lag's time estimate), ms; null when unknown. */
  applyDelayMs: number | null;
  /** Sequences the in-freeze copy sets (one statement per side when any). */
  sequences: number;
  /** The source's WAL position when measured (pg_current_wal_lsn). */
  sourceLsn: string;
}

export interface FreezePrediction {
  ms: number;
  parts: { drain: number; freeze: number; fence: number; sequences: number; switch: number };
}

/** Replication's own delay when the lag gives none: a walsender wakes within a few milliseconds. */
const DEFAULT_APPLY_MS = 5;
/** The databases file rewritten before RELOAD (a write and a rename). */
const FILE_REWRITE_MS = 1;

const round = (ms: number) => Math.round(ms * 10) / 10;

export function predictFreeze(i: FreezeInputs, strategy: Strategy): FreezePrediction {
  const proxy = i.proxyRttMs;
  // Proxy pause: PAUSE (its check runs beside the fence); in-database freeze: lock the roles out + end their sessions.
  const freeze = proxy !== null && strategy === 'proxy' ? proxy : 2 * i.sourceRttMs;
  const fence = i.sourceRttMs + (i.applyDelayMs ?? DEFAULT_APPLY_MS) + 2 * i.targetRttMs;
  const sequences = i.sequences > 0 ? i.sourceRttMs + i.targetRttMs : 0;
  // Proxy: rewrite, then RELOAD, its check and RESUME in one message. Connection parameters: nothing waits for a hand-out.
  const switchMs = strategy === 'proxy' && proxy !== null ? FILE_REWRITE_MS + proxy : 0;
  const parts = { drain: round(i.drainMs), freeze: round(freeze), fence: round(fence), sequences: round(sequences), switch: round(switchMs) };
  return { ms: round(i.drainMs + freeze + Math.max(fence, sequences) + switchMs), parts };
}

/** The state an approval was given in; the run refuses when the plan changed since. */
export interface ApprovalBinding {
  /** Fingerprint of the plan (its steps with the profile's numbers) the approver saw. */
  planHash: string;
  lagBytes: number | null;
  sourceLsn: string | null;
  predictedFreezeMs: number | null;
  /** Behind a router: whether the target's writes would flow back after the switch (a rollback that loses nothing). */
  replicatesBack?: boolean;
  /** Why a figure is missing (the source or the proxy could not be measured). */
  unknown?: string;
}
