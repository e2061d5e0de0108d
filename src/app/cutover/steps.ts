/**
 * What each step of `CUTOVER_STEPS` does on the machines: one table (`STEPS`), so the same list
 * (`attemptSteps`, `gateSteps`, `remainingSteps` of the domain) drives execution, the journal and
 * recovery. Every step that can be repeated is idempotent; the ones that put writes back are retried.
 * The runner (runner.ts) journals them.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { AttemptPatch } from '../../domain/attempt.js';
import type { CutoverStep } from '../../domain/cutover-plan.js';
import type { Clock } from '../../domain/ports/clock.js';
import type { OnlineMigration } from '../../domain/ports/digitalocean.js';
import type { Fence } from '../../domain/ports/replication.js';
import type { ReverseAnchor } from '../../domain/ports/reverse-replication.js';
import type { SessionMachines, TargetParameters } from '../../domain/ports/machines.js';
import type { Endpoint } from '../../domain/ports/writes.js';
import type { Session } from '../../domain/session.js';
import { CodedError, ErrorCode, asCodedError } from '../../errors.js';
import { observeProxy } from './common.js';

export interface StepContext {
  session: Session;
  attempt: number;
  machines: SessionMachines;
  /** Milliseconds left of the freeze budget (infinite when none runs). */
  remainingMs(): number;
  /** `unfreeze_source` only: repoint to the source before resuming (a repoint to the target was started). */
  repointToSource?: boolean;
  /** `resume_target` in a run: the writes held, counted while the fence ran (no round trip before the resume). */
  writesHeld?: Promise<number | null>;
  /** `freeze` in a run: resolve once the freeze holds, its confirmation settling later (`freezeThenConfirm`). */
  confirmLater?: boolean;
  /** In a run: the freeze's own confirmation, still on its way while the fence is proven; awaited before the repoint. */
  freezeConfirmed?: Promise<void>;
  /** In a run: the switch-point snapshots, exported once the fence is proven, beside the steps after it; awaited before the resume. */
  snapshots?: Promise<unknown>;
  /** In a run: the reverse stream's switch point, read once the fence is proven, beside the steps after it; awaited before the resume. */
  switchPoint?: Promise<ReverseAnchor | null>;
  /** `replicate_back`: the switch point the resume journaled (where the reverse stream starts). */
  reverseFrom?: string;
  /** In a run through a router that is the freeze (PgBouncer): each repoint leaves in one message with its resume (`repointWithResume`). */
  repointAndResume?: (to: Endpoint) => Promise<void>;
}

export interface StepOutcome {
  /** Journaled with `done`: never a secret. */
  detail?: Record<string, unknown>;
  /** Written on the attempt after the step. */
  patch?: AttemptPatch;
  /** `publish_parameters`: what was handed out. */
  parameters?: TargetParameters;
  /** `freeze` in a run: its confirmation, settling later. */
  confirmed?: Promise<void>;
}

type StepWork = (ctx: StepContext, clock: Clock) => Promise<StepOutcome>;

export function budgetExceeded(seconds: number): CodedError {
  return new CodedError(ErrorCode.FreezeBudgetExceeded, `The freeze budget of ${seconds} s ran out before the switch; writes resumed on the source.`, {
    details: { budgetSeconds: seconds },
  });
}

function withinBudget(ctx: StepContext): void {
  if (ctx.remainingMs() <= 0) throw budgetExceeded(ctx.machines.settings.freezeBudgetSeconds);
}

/** Whether the router is the write freeze itself (PgBouncer: it pauses and repoints). */
function routerIsTheFreeze(machines: SessionMachines): boolean {
  return (machines.routing?.router as unknown) === machines.freeze;
}

/** The repoint sent with the resume, when the router is the freeze and can (for a run); else undefined. */
export function repointWithResume(machines: SessionMachines): ((to: Endpoint) => Promise<void>) | undefined {
  const router = machines.routing?.router;
  if (!router?.repointAndResume || !routerIsTheFreeze(machines)) return undefined;
  return router.repointAndResume.bind(router);
}

/** The repoint to `to` that a resume sends with it, or the resume alone (retried: it puts writes back). */
async function resumeTowards(ctx: StepContext, to: 'source' | 'target'): Promise<void> {
  if (ctx.repointAndResume) await ctx.repointAndResume(routingOf(ctx)[to]);
  else await retry(() => ctx.machines.freeze.resume());
}

function routingOf(ctx: StepContext) {
  const routing = ctx.machines.routing;
  if (!routing) throw new CodedError(ErrorCode.Internal, 'This profile has no router: the proxy strategy needs one.');
  return routing;
}

/** Retries work that puts writes back (a resume must not give up on one dropped connection). */
export async function retry<T>(work: () => Promise<T>, attempts = 3, pauseMs = 200): Promise<T> {
  for (let i = 1; ; i += 1) {
    try {
      return await work();
    } catch (error) {
      if (i >= attempts) throw error;
      await delay(pauseMs * i);
    }
  }
}

/** What `stopMigration` did, for the journal: never a secret. */
export type StopOutcome = 'stopped' | 'already_stopped' | 'not_ours' | 'no_migration_id';

/**
 * Stops DO's online migration; idempotent (one already stopped or finished is fine), and only ever
 * this session's own: a session that never recorded a migration id stops nothing (the cluster's
 * migration may belong to someone else). A status DigitalOcean added after our spec (`unknown`) is
 * stopped: it may still be copying, and leaving our own migration running is the worse mistake.
 */
export async function stopMigration(machines: SessionMachines, session: Session): Promise<StopOutcome> {
  if (session.doMigrationId === null) return 'no_migration_id';
  const cluster = machines.settings.doClusterUuid;
  const current = await machines.digitalocean.getOnlineMigration(cluster);
  if (!current || current.id !== session.doMigrationId) return 'not_ours';
  if (current.status !== 'running' && current.status !== 'syncing' && current.status !== 'unknown') return 'already_stopped';
  await machines.digitalocean.stopOnlineMigration(cluster, current.id);
  return 'stopped';
}

/** Clock difference tolerated between the store (which dates the session) and DigitalOcean. */
const START_SKEW_MS = 5_000;

/**
 * The cluster's migration if this session started it without recording its id (the bot died between
 * the PUT and the transition). The session is stored before the PUT, so its `createdAt` is the start
 * intent: a migration DigitalOcean created since then, and not failed, is ours.
 */
export async function unrecordedOwnMigration(machines: SessionMachines, session: Session): Promise<OnlineMigration | undefined> {
  if (session.state !== 'created' || session.doMigrationId !== null) return undefined;
  const current = await machines.digitalocean.getOnlineMigration(machines.settings.doClusterUuid);
  if (!current || current.status === 'error' || current.status === 'canceled') return undefined;
  const createdAt = Date.parse(current.createdAt);
  return Number.isFinite(createdAt) && createdAt >= session.createdAt.getTime() - START_SKEW_MS ? current : undefined;
}

async function preconditions(ctx: StepContext): Promise<StepOutcome> {
  const { machines } = ctx;
  const lag = await machines.lag.measure();
  if (!lag.known) {
    throw new CodedError(ErrorCode.LagUnknown, `Replication lag is unknown (${lag.reason}); unknown lag is never zero, so writes stay as they are.`);
  }
  const max = machines.settings.maxLagBytesToFreeze;
  if (lag.bytes > max) {
    throw new CodedError(ErrorCode.GateRefused, `Replication lag is ${lag.bytes} bytes, above the profile's ${max} bytes to freeze; wait for it to fall.`, {
      details: { lagBytes: lag.bytes, maxLagBytesToFreeze: max },
    });
  }
  const failed = (await machines.preflight()).filter((i) => i.status === 'fail');
  if (failed.length > 0) {
    throw new CodedError(ErrorCode.PreflightFailed, `Preflight is not green: ${failed.map((i) => `${i.check} (${i.detail})`).join('; ')}.`, {
      details: { failed: failed.length },
    });
  }
  if (machines.routing) {
    const status = await machines.routing.router.inspect();
    const src = machines.routing.source;
    if (status.frozen) throw new CodedError(ErrorCode.PreflightFailed, `The proxy is already paused (${status.detail}).`);
    if (status.pointsTo && (status.pointsTo.host !== src.host || status.pointsTo.port !== src.port)) {
      throw new CodedError(ErrorCode.PreflightFailed, `The proxy points to ${status.pointsTo.host}:${status.pointsTo.port}, not to the source ${src.host}:${src.port}.`);
    }
  }
  // Nothing slow inside the freeze: connections open and warm, sequences already ahead of the source.
  const { freeze, fence, sequences, routing } = machines;
  const [, , , , , reverse] = await Promise.all([
    routerIsTheFreeze(machines) ? undefined : freeze.prepare?.(),
    // The router readies the repoint to the target too (PgBouncer: the new databases file written ahead).
    routing?.router.prepare?.(routing.target),
    fence.prepare?.(),
    sequences.pushAhead?.(),
    machines.verifier?.prepare(),
    machines.reverse?.prepare(),
  ]);
  const lagAtFreeze = { known: true, bytes: lag.bytes, seconds: lag.seconds };
  const replicateBack = reverse ? { replicateBack: reverse.ok ? 'ready' : 'impossible', ...(reverse.ok ? {} : { reasons: reverse.reasons }) } : {};
  return { detail: { ...lagAtFreeze, ...replicateBack }, patch: { lagAtFreeze } };
}

/**
 * Replication caught up just before writes stop: the fence inside the freeze then waits only for the
 * writes of the drain (not for WAL a source on asynchronous commit had not flushed yet), and a stream
 * that is stalled refuses the freeze instead of holding writes until the fence times out.
 */
async function catchUp(fence: Fence, ctx: StepContext): Promise<{ caughtUpMs: number } | Record<string, never>> {
  const { settings } = ctx.machines;
  if (!fence.catchUp) return {};
  try {
    return { caughtUpMs: (await fence.catchUp(Math.min(settings.fenceTimeoutSeconds * 1000, ctx.remainingMs()))).elapsedMs };
  } catch (error) {
    throw new CodedError(asCodedError(error).code, `Replication did not catch up just before the freeze, so writes were not frozen: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

export const STEPS: Record<CutoverStep, StepWork> = {
  preconditions,
  async freeze(ctx, clock) {
    const caughtUp = await catchUp(ctx.machines.fence, ctx);
    // The freeze counts from the moment it is issued: clients wait from then.
    const frozenAt = clock.now();
    const freeze = ctx.machines.freeze;
    // In a run the fence starts as soon as the freeze holds; its confirmation is awaited before the repoint.
    const confirmed = ctx.confirmLater && freeze.freezeThenConfirm ? (await freeze.freezeThenConfirm()).confirmed : await freeze.freeze();
    const s = ctx.machines.settings;
    return {
      detail: caughtUp,
      patch: { frozenWhat: ctx.machines.frozenWhat, frozenAt, freezeBudgetSeconds: s.freezeBudgetSeconds },
      ...(confirmed ? { confirmed } : {}),
    };
  },
  async fence(ctx) {
    withinBudget(ctx);
    const s = ctx.machines.settings;
    const fence = await ctx.machines.fence.prove(Math.min(s.fenceTimeoutSeconds * 1000, ctx.remainingMs()));
    return { detail: { ...fence }, patch: { fence } };
  },
  async sequences(ctx) {
    withinBudget(ctx);
    const copied = await ctx.machines.sequences.copy();
    return { detail: { ...copied }, patch: { sequencesCopied: copied.copied } };
  },
  async repoint(ctx) {
    await ctx.freezeConfirmed;
    withinBudget(ctx);
    const routing = routingOf(ctx);
    // In a run the repoint leaves with the resume, in one message (resume_target).
    if (ctx.repointAndResume) return { detail: { sentWith: 'resume_target' } };
    await routing.router.repoint(routing.target);
    return {};
  },
  async resume_target(ctx, clock) {
    // The switch point: source and target are the same until the resume. A failed export skips the
    // verification, a failed read of the reverse switch point the replication back (told after the switch), never the switch.
    const waiting = performance.now();
    const [, anchor] = await Promise.all([
      (ctx.snapshots ?? ctx.machines.verifier?.exportSnapshots())?.catch(() => undefined),
      (ctx.switchPoint ?? ctx.machines.reverse?.establish())?.catch(() => null),
    ]);
    const writesHeld = (await (ctx.writesHeld ?? ctx.machines.writesHeld?.())?.catch(() => null)) ?? null;
    // How long writes waited on those readings after the steps before (where a freeze's time goes).
    const waitedMs = Math.round((performance.now() - waiting) * 10) / 10;
    // A freeze in the source database is not lifted: the router now sends the applications to the target,
    // and a client that bypasses it must not write on the old source (lifted by a rollback).
    const keepSourceLocked = ctx.machines.frozenWhat.method !== 'proxy-pause';
    if (!keepSourceLocked) await resumeTowards(ctx, 'target');
    const now = clock.now();
    const detail = { ...(anchor ? { reverseFrom: anchor.lsn } : {}), ...(keepSourceLocked ? { sourceKeptLocked: true } : {}), waitedMs };
    return { detail, patch: { switchedAt: now, resumedAt: now, resumedOn: 'target', writesHeld, outcome: 'switched' } };
  },
  async replicate_back(ctx) {
    const reverse = ctx.machines.reverse;
    if (!reverse) return { detail: { replicateBack: 'not with this router' } };
    const from = ctx.reverseFrom;
    if (!from) {
      // No switch point (impossible on this target, or not read): a slot would hold WAL for nothing.
      const [capability] = await Promise.all([reverse.capability().catch(() => undefined), reverse.drop()]);
      const reason = capability && !capability.ok ? capability.reasons.join('; ') : 'the switch point for it was not taken at the resume';
      return { detail: { replicateBack: 'off', reason } };
    }
    try {
      // The forward stream must end first, or the source's rows would loop back (see the adapter).
      const migration = await stopMigration(ctx.machines, ctx.session);
      await retry(() => reverse.attach(from), 8, 500);
      return { detail: { replicateBack: 'on', from, migration } };
    } catch (error) {
      // Never left half-made: without a subscription the slot would only hold the target's WAL.
      await reverse.drop().catch(() => undefined);
      throw error;
    }
  },
  async stop_migration(ctx) {
    const migration = await stopMigration(ctx.machines, ctx.session);
    const reverse = await ctx.machines.reverse?.drop();
    return { detail: { migration, ...(reverse ? { reverseRemoved: reverse } : {}) } };
  },
  async publish_parameters(ctx, clock) {
    // The switch point of this strategy: nothing writes the target before its parameters are out.
    await ctx.machines.verifier?.exportSnapshots().catch(() => undefined);
    const parameters = await ctx.machines.targetParameters();
    const { host, port, database, user } = parameters;
    return { detail: { host, port, database, user }, patch: { switchedAt: clock.now(), outcome: 'switched' }, parameters };
  },
  async unfreeze_source(ctx) {
    const routing = ctx.machines.routing;
    if (routing && (await mustRepointToSource(ctx))) await retry(() => routing.router.repoint(routing.source));
    await retry(() => ctx.machines.freeze.resume());
    return {};
  },
  async rollback_freeze_target(ctx) {
    // The reverse stream, when there is one, catches up just before the target's writes stop.
    const reverse = ctx.machines.reverse;
    const caughtUp = reverse && (await reverse.status()).slot ? await catchUp(reverse.rollback.fence, ctx) : {};
    await ctx.machines.freeze.freeze();
    return { detail: caughtUp };
  },
  async rollback_fence(ctx) {
    // The fence reversed: every write the target committed is on the source before writes go back there.
    const reverse = ctx.machines.reverse;
    if (!reverse || !(await reverse.status()).slot) return { detail: { replicateBack: 'off' } };
    const fence = await reverse.rollback.fence.prove(ctx.machines.settings.fenceTimeoutSeconds * 1000);
    return { detail: { ...fence } };
  },
  async rollback_sequences(ctx) {
    // Past every id the target handed out, with or without the rows: the source must not hand them out again.
    const copied = await ctx.machines.reverse?.rollback.sequences.copy();
    return { detail: copied ? { ...copied } : {} };
  },
  async rollback_repoint(ctx) {
    const routing = routingOf(ctx);
    if (ctx.repointAndResume) return { detail: { sentWith: 'rollback_resume_source' } };
    await retry(() => routing.router.repoint(routing.source));
    return {};
  },
  async rollback_resume_source(ctx) {
    await resumeTowards(ctx, 'source');
    return {};
  },
};

/**
 * Whether putting writes back must repoint to the source: the journal says a repoint was started, or
 * the proxy does not point to the source (a run journals no repoint before its resume). A proxy that
 * cannot tell is repointed: the repoint is idempotent.
 */
export async function mustRepointToSource(ctx: StepContext): Promise<boolean> {
  if (ctx.repointToSource) return true;
  return (await observeProxy(ctx.machines).catch(() => undefined))?.pointsTo !== 'source';
}
