/**
 * The cutover engine: performs the steps of a session's cutover on real machines, journaled before and
 * after each step, with exactly one executor per session across replicas.
 *
 * Exclusivity. Every operation runs inside an *executor window* holding the store's advisory lock
 * `pgcutover:cutover:<session>`. A window normally lasts one operation; while writes are frozen the
 * window stays open (the lock stays held) until the freeze ends (switch, resume, budget expiry, undo),
 * and the holder owns the freeze budget timer and polls `switchApprovalValid` so a switch approved on
 * another replica runs here. A replica that cannot take the lock answers ExecutorBusy. When the holder
 * dies, its store connection and so the lock go with it, and `recover()` on any replica (at start-up,
 * and periodically through `startWatchdog`) takes the lock and applies `recoveryDecision`.
 *
 * Safety. The switch runs only after this attempt's fence and sequence steps are journaled done, and
 * never twice (a completed repoint is only ever followed by a resume). Any failure after the freeze,
 * and the budget running out before the switch completed, put everything back on the source
 * (repoint to the source when a repoint was started, then resume) and tell the channel.
 */
import { setTimeout as delay } from 'node:timers/promises';
import {
  hasSwitched,
  latestAttempt,
  planSteps,
  recoveryDecision,
  type PlanSettings,
  type RecoveryDecision,
} from '../../domain/cutover-plan.js';
import { transition as domainTransition, type Session, type SessionEvent } from '../../domain/session.js';
import type { DigitalOceanApi } from '../../domain/ports/digitalocean.js';
import { CodedError, ErrorCode, asCodedError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Endpoint, WriteFreeze } from '../../domain/ports/writes.js';
import type { ProxyAdmin } from '../../adapters/proxy/proxy-admin.js';
import type { Fence, LagProbe, LagSample } from '../../domain/ports/replication.js';
import { maskSecret, type Secret } from '../../secret.js';
import type { AuditLog } from '../../adapters/store/audit-log.js';
import type { ApprovalsSummary, CutoverJournal, FrozenWhat, LagAtFreeze } from '../../adapters/store/cutover-journal.js';
import type { Database } from '../../adapters/store/database.js';
import type { SessionStore } from '../../adapters/store/session-store.js';
import type { SequenceCopier } from '../../adapters/source/sequences.js';
import type {
  Actor,
  PlanStep,
  PreflightItem,
  SessionNotifier,
  SessionOperations,
  SessionRef,
} from '../session-operations.js';

export interface Timer {
  cancel(): void;
}

/** Time, injectable so tests can drive the budget without waiting. */
export interface Clock {
  now(): Date;
  setTimer(ms: number, fire: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => new Date(),
  setTimer(ms, fire) {
    const handle = setTimeout(fire, ms);
    handle.unref?.();
    return { cancel: () => clearTimeout(handle) };
  },
};

/** The profile's numbers the engine works with: the plan's, plus the target cluster. */
export interface CutoverSettings extends Omit<PlanSettings, 'proxyLabel'> {
  doClusterUuid: string;
}

/** How writes are stopped and where they go. */
export type WriteControl =
  | {
      kind: 'proxy';
      proxy: ProxyAdmin;
      /** Where the proxy points before the switch, and where it points after. */
      source: Endpoint;
      target: Endpoint;
      frozenWhat: FrozenWhat;
    }
  | { kind: 'in-database'; freeze: WriteFreeze; frozenWhat: FrozenWhat };

/** The target's connection parameters, as handed out with the connection-parameters strategy. */
export interface TargetParameters {
  host: string;
  port: number;
  database: string;
  user: string;
  password: Secret;
  sslmode: string;
}

/** Everything the engine touches for one session, built by the composition root from the profile. */
export interface SessionAdapters {
  settings: CutoverSettings;
  doApi: DigitalOceanApi;
  lag: LagProbe;
  fence: Fence;
  writes: WriteControl;
  /** Preflight checks, including "target reachable through the proxy" for the proxy strategy. */
  preflight(): Promise<PreflightItem[]>;
  sequences: SequenceCopier;
  /** The target's parameters (from DO's cluster details, with the profile's overrides). */
  targetParameters(): Promise<TargetParameters>;
  /** Installs the fence table and starts DO's online migration; resolves to the migration id. */
  startMigration?(): Promise<{ migrationId: string }>;
  /** How many client writes the freeze holds right now (e.g. PgBouncer cl_waiting), when known. */
  writesHeld?(): Promise<number | null>;
  close(): Promise<void>;
}

export interface CutoverEngineDeps {
  db: Database;
  sessions: SessionStore;
  audit: AuditLog;
  journal: CutoverJournal;
  notifier: SessionNotifier;
  log: Logger;
  /** Builds the adapters for a session (from its profile). */
  adapters(session: Session): Promise<SessionAdapters>;
  /** Whether gate 2 (the switch) is approved and unexpired right now (the Slack surface's approvals). */
  switchApprovalValid(sessionId: string, now: Date): Promise<boolean>;
  /** Who approved what, for the journal and the summary. */
  approvalsSummary?(sessionId: string): Promise<ApprovalsSummary>;
  /**
   * Called after recovery acted on a session (a freeze undone or a step completed after a restart), so
   * the Slack side can close the gate requests the dead executor never closed.
   */
  afterRecovery?(sessionId: string, decision: RecoveryDecision): Promise<void>;
  clock?: Clock;
  /** How often the holder of a freeze re-asks `switchApprovalValid` (default 200 ms). */
  approvalPollMs?: number;
}

export const BOT_ACTOR: Actor = { userId: 'bot' };

const lockKey = (sessionId: string) => `pgcutover:cutover:${sessionId}`;

interface Window {
  sessionId: string;
  adapters: SessionAdapters;
  /** Serialises this replica's operations on the session. */
  queue: Promise<unknown>;
  busy: number;
  /** Kept open (lock held) while writes are frozen. */
  hold: boolean;
  attempt: number | undefined;
  deadline: number | undefined;
  budgetTimer: Timer | undefined;
  pollTimer: Timer | undefined;
  closed: boolean;
  release(): void;
  released: Promise<void>;
}

export interface RecoveryOutcome {
  sessionId: string;
  decision: RecoveryDecision;
  result: 'applied' | 'busy' | 'failed' | 'nothing';
  error?: string;
}

export class CutoverEngine implements SessionOperations {
  readonly #d: CutoverEngineDeps;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #windows = new Map<string, Promise<Window>>();
  #watchdog: NodeJS.Timeout | undefined;

  constructor(deps: CutoverEngineDeps) {
    this.#d = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#log = deps.log.child({ name: 'cutover' });
  }

  // ── SessionOperations ────────────────────────────────────────────────────────────────────────

  async startMigration(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.#exclusive(ref.sessionId, async (w) => {
      const session = await this.#checked(ref, 'migration_started');
      if (!w.adapters.startMigration) {
        throw new CodedError(ErrorCode.Internal, 'Starting the migration is not wired for this profile.');
      }
      const { migrationId } = await w.adapters.startMigration();
      const updated = await this.#transition(session.id, 'migration_started', { doMigrationId: migrationId });
      await this.#audit(updated, actor, 'start_migration', 'succeeded', { migrationId });
      return updated;
    });
  }

  async plan(session: Session): Promise<PlanStep[]> {
    return this.#withAdapters(session, async (a) =>
      planSteps({ ...a.settings, proxyLabel: proxyLabel(a.writes) }).map((s) => ({ name: s.name, description: s.description })),
    );
  }

  async preflight(session: Session): Promise<PreflightItem[]> {
    return this.#withAdapters(session, (a) => a.preflight());
  }

  async lag(sessionId: string): Promise<LagSample> {
    const session = await this.#d.sessions.require(sessionId);
    return this.#withAdapters(session, (a) => a.lag.measure());
  }

  async freeze(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.#exclusive(ref.sessionId, async (w) => {
      let session = await this.#checked(ref, 'freeze');
      const log = this.#sessionLog(session);
      const a = w.adapters;
      const journal = this.#d.journal;
      if (hasSwitched(await journal.entries(session.id))) {
        throw new CodedError(ErrorCode.InvalidTransition, 'This session already switched once; it will not switch twice.');
      }
      const attempt = await journal.begin(session.id, 'cutover', actor.userId);
      w.attempt = attempt;
      // 1. Preconditions: nothing is frozen if any fails.
      let lagAtFreeze: LagAtFreeze;
      try {
        lagAtFreeze = await journal.step(session.id, attempt, 'preconditions', () => this.#preconditions(a), (l) => ({ ...l }));
      } catch (error) {
        await journal.update(session.id, attempt, { outcome: 'refused', endedAt: this.#clock.now() });
        await this.#audit(session, actor, 'freeze', 'refused', { reason: asCodedError(error).message });
        throw error;
      }
      // 2. Freeze, and start the budget (both from the moment the freeze is issued: clients wait from then).
      const frozenAt = this.#clock.now();
      try {
        await journal.step(session.id, attempt, 'freeze', () => freezeWrites(a.writes));
      } catch (error) {
        // The freeze may have partly taken effect: put it back.
        await this.#undo(w, session, { repointToSource: false, reason: `the freeze failed: ${asCodedError(error).message}`, level: 'error' });
        throw stepFailed('freeze', error);
      }
      w.hold = true;
      this.#startBudget(w, frozenAt, a.settings.freezeBudgetSeconds);
      await journal.update(session.id, attempt, {
        frozenWhat: a.writes.frozenWhat,
        frozenAt,
        freezeBudgetSeconds: a.settings.freezeBudgetSeconds,
        lagAtFreeze,
      });
      try {
        session = await this.#transition(session.id, 'freeze');
        await this.#audit(session, actor, 'freeze', 'succeeded', { attempt, frozenAt: frozenAt.toISOString() });
        // 3. Fence, within the budget.
        const fence = await journal.step(
          session.id,
          attempt,
          'fence',
          () => {
            const remaining = this.#remaining(w);
            if (remaining <= 0) throw budgetExceeded(a.settings.freezeBudgetSeconds);
            return a.fence.prove(Math.min(a.settings.fenceTimeoutSeconds * 1000, remaining));
          },
          (f) => ({ ...f }),
        );
        await journal.update(session.id, attempt, { fence });
        if (this.#remaining(w) <= 0) throw budgetExceeded(a.settings.freezeBudgetSeconds);
        // 4. Sequences.
        const copied = await journal.step(session.id, attempt, 'sequences', () => a.sequences.copy(), (r) => ({ ...r }));
        await journal.update(session.id, attempt, { sequencesCopied: copied.copied });
        log.info({ attempt, fenceMs: fence.elapsedMs, sequences: copied.copied, sequencesMs: copied.elapsedMs }, 'frozen and fenced');
      } catch (error) {
        const budget = isCode(error, ErrorCode.FreezeBudgetExceeded);
        await this.#undo(w, session, {
          repointToSource: false,
          reason: budget
            ? `the freeze budget of ${a.settings.freezeBudgetSeconds} s ran out before the switch`
            : `a step after the freeze failed: ${asCodedError(error).message}`,
          level: budget ? 'warning' : 'error',
        });
        throw budget ? error : stepFailed('freeze', error);
      }
      // 5. Gate 2 ahead of time: switch at once, so the freeze lasts only as long as the machine needs.
      if (await this.#approved(session.id)) return this.#switch(w, actor, true);
      const left = Math.max(0, Math.round(this.#remaining(w) / 1000));
      await this.#notify(session, 'info', `Writes are frozen and the fence is proven. Approve the switch within ${left} s, or writes resume on the source by themselves.`);
      this.#pollApproval(w);
      return session;
    });
  }

  async switchover(ref: SessionRef, actor: Actor): Promise<Session> {
    try {
      return await this.#exclusive(
        ref.sessionId,
        async (w) => {
          // The approval this click carries may already have been run by the freeze holder's poll: report it.
          const current = await this.#d.sessions.require(ref.sessionId);
          if (current.state === 'switched' && current.version > ref.expectedVersion) return current;
          await this.#checked(ref, 'switch');
          return this.#switch(w, actor, false);
        },
        'Another replica holds this cutover; it runs the switch as soon as it sees the approval.',
      );
    } catch (error) {
      if (!isCode(error, ErrorCode.ExecutorBusy)) throw error;
      return this.#awaitHolderSwitch(ref.sessionId, error);
    }
  }

  /**
   * Another replica holds the freeze: with the switch approved, it runs the switch when its poll sees
   * the approval. Wait for that outcome (bounded by the freeze budget), so the caller reports what
   * really happened and keeps the approval open meanwhile. Without a valid approval: busy at once.
   */
  async #awaitHolderSwitch(sessionId: string, busy: unknown): Promise<Session> {
    const deadline = (await this.freezeDeadline(sessionId))?.getTime() ?? this.#clock.now().getTime();
    for (;;) {
      const session = await this.#d.sessions.require(sessionId);
      if (session.state === 'switched') return session;
      if (session.state !== 'frozen') {
        throw new CodedError(ErrorCode.CutoverStepFailed, 'The replica holding the freeze did not switch; writes went back to the source. Look at the status message.');
      }
      if (!(await this.#approved(sessionId)) || Date.now() > deadline + 5000) throw busy;
      await delay(this.#d.approvalPollMs ?? 200);
    }
  }

  async resume(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.#exclusive(ref.sessionId, async (w) => {
      const session = await this.#checked(ref, 'resume');
      const entries = await this.#d.journal.entries(session.id);
      const decision = recoveryDecision(entries);
      w.attempt ??= latestAttempt(entries)?.attempt;
      return this.#undo(w, session, {
        repointToSource: decision.action === 'undo-freeze' && decision.repointToSource,
        reason: `<@${actor.userId}> resumed writes on the source`,
        level: 'info',
        actor,
      });
    });
  }

  async rollback(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.#exclusive(ref.sessionId, async (w) => {
      const session = await this.#checked(ref, 'rollback');
      const attempt = await this.#d.journal.begin(session.id, 'rollback', actor.userId);
      return this.#runRollback(w, session, attempt, actor);
    });
  }

  async finish(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.#exclusive(ref.sessionId, async (w) => {
      const session = await this.#checked(ref, 'finish');
      const attempt = await this.#d.journal.begin(session.id, 'finish', actor.userId);
      return this.#runFinish(w, session, attempt, actor);
    });
  }

  async abort(ref: SessionRef, actor: Actor): Promise<Session> {
    return this.#exclusive(ref.sessionId, async (w) => {
      const session = await this.#checked(ref, 'abort');
      const attempt = await this.#d.journal.begin(session.id, 'abort', actor.userId);
      return this.#runAbort(w, session, attempt, actor);
    });
  }

  // ── Recovery ─────────────────────────────────────────────────────────────────────────────────

  /**
   * Reads the journal of every active session and applies `recoveryDecision`: finishes the step or
   * undoes the freeze. Sessions another live replica holds (lock busy) and sessions this replica
   * holds are left alone. Safe to call at any time and on every replica.
   */
  async recover(): Promise<RecoveryOutcome[]> {
    const outcomes: RecoveryOutcome[] = [];
    for (const session of await this.#d.sessions.listActive()) {
      if (this.#windows.has(session.id)) continue;
      const decision = recoveryDecision(await this.#d.journal.entries(session.id));
      if (decision.action === 'none' && !needsSettling(session, decision)) continue;
      try {
        await this.#exclusive(session.id, (w) => this.#applyRecovery(w, decision));
        if (decision.action !== 'none') {
          await this.#d.afterRecovery?.(session.id, decision).catch((err: unknown) =>
            this.#log.warn({ err: asCodedError(err), session: session.id }, 'after-recovery hook failed'),
          );
        }
        outcomes.push({ sessionId: session.id, decision, result: decision.action === 'none' ? 'nothing' : 'applied' });
      } catch (error) {
        const coded = asCodedError(error);
        const busy = coded.code === ErrorCode.ExecutorBusy;
        if (!busy) this.#log.error({ err: coded, session: session.id, decision: decision.action }, 'recovery failed');
        outcomes.push({ sessionId: session.id, decision, result: busy ? 'busy' : 'failed', error: coded.message });
      }
    }
    return outcomes;
  }

  /** Runs `recover()` every `intervalMs`, so a replica picks up a freeze whose holder died. */
  startWatchdog(intervalMs = 5000): void {
    if (this.#watchdog) return;
    let running = false;
    this.#watchdog = setInterval(() => {
      if (running) return;
      running = true;
      this.recover()
        .catch((err: unknown) => this.#log.error({ err }, 'watchdog recovery failed'))
        .finally(() => (running = false));
    }, intervalMs);
    this.#watchdog.unref();
  }

  /** Stops the watchdog and releases the windows this replica holds, without touching the machines. */
  async close(): Promise<void> {
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    for (const pending of [...this.#windows.values()]) {
      const w = await pending.catch(() => undefined);
      if (w) await this.#closeWindow(w);
    }
  }

  /** The freeze deadline this replica holds for a session (for the countdown), if any. */
  async freezeDeadline(sessionId: string): Promise<Date | undefined> {
    const attempt = await this.#d.journal.latestCutover(sessionId);
    if (!attempt?.frozenAt || attempt.freezeBudgetSeconds === null || attempt.resumedAt) return undefined;
    return new Date(attempt.frozenAt.getTime() + attempt.freezeBudgetSeconds * 1000);
  }

  // ── Steps ────────────────────────────────────────────────────────────────────────────────────

  async #preconditions(a: SessionAdapters): Promise<LagAtFreeze> {
    const lag = await a.lag.measure();
    if (!lag.known) {
      throw new CodedError(ErrorCode.LagUnknown, `Replication lag is unknown (${lag.reason}); unknown lag is never zero, so writes stay as they are.`);
    }
    if (lag.bytes > a.settings.maxLagBytesToFreeze) {
      throw new CodedError(
        ErrorCode.GateRefused,
        `Replication lag is ${lag.bytes} bytes, above the profile's ${a.settings.maxLagBytesToFreeze} bytes to freeze; wait for it to fall.`,
        { details: { lagBytes: lag.bytes, maxLagBytesToFreeze: a.settings.maxLagBytesToFreeze } },
      );
    }
    const failed = (await a.preflight()).filter((i) => i.status === 'fail');
    if (failed.length > 0) {
      throw new CodedError(
        ErrorCode.PreflightFailed,
        `Preflight is not green: ${failed.map((i) => `${i.check} (${i.detail})`).join('; ')}.`,
        { details: { failed: failed.length } },
      );
    }
    if (a.writes.kind === 'proxy') {
      const status = await a.writes.proxy.inspect();
      const src = a.writes.source;
      if (status.frozen) throw new CodedError(ErrorCode.PreflightFailed, `The proxy is already paused (${status.detail}).`);
      if (status.pointsTo && (status.pointsTo.host !== src.host || status.pointsTo.port !== src.port)) {
        throw new CodedError(
          ErrorCode.PreflightFailed,
          `The proxy points to ${status.pointsTo.host}:${status.pointsTo.port}, not to the source ${src.host}:${src.port}.`,
        );
      }
    }
    return { known: true, bytes: lag.bytes, seconds: lag.seconds };
  }

  async #switch(w: Window, actor: Actor, aheadOfTime: boolean): Promise<Session> {
    const journal = this.#d.journal;
    let session = await this.#d.sessions.require(w.sessionId);
    const entries = await journal.entries(session.id);
    const latest = latestAttempt(entries);
    if (session.state !== 'frozen' || !latest || latest.kind !== 'cutover') {
      throw new CodedError(ErrorCode.InvalidTransition, 'Cannot switch: writes are not frozen.');
    }
    const attempt = latest.attempt;
    w.attempt = attempt;
    // Never switch without the fence (and the sequences) of this very freeze.
    if (latest.status('fence') !== 'done' || latest.status('sequences') !== 'done') {
      throw new CodedError(ErrorCode.GateRefused, 'Cannot switch: the fence is not proven for this freeze yet.');
    }
    if (hasSwitched(entries)) throw new CodedError(ErrorCode.InvalidTransition, 'This session already switched.');
    const a = w.adapters;
    if (w.deadline === undefined) {
      const record = await journal.attempt(session.id, attempt);
      if (record?.frozenAt && record.freezeBudgetSeconds !== null) {
        w.hold = true;
        this.#startBudget(w, record.frozenAt, record.freezeBudgetSeconds);
      }
    }
    if (this.#remaining(w) <= 0) {
      await this.#undo(w, session, { repointToSource: false, reason: `the freeze budget of ${a.settings.freezeBudgetSeconds} s ran out before the switch`, level: 'warning' });
      throw budgetExceeded(a.settings.freezeBudgetSeconds);
    }
    this.#stopPolling(w);
    const approvals = await this.#d.approvalsSummary?.(session.id).catch(() => undefined);
    const writes = a.writes;
    let repointStarted = false;
    try {
      if (writes.kind === 'proxy') {
        repointStarted = true;
        await journal.step(session.id, attempt, 'repoint', () => writes.proxy.repoint(writes.target));
        if (this.#remaining(w) <= 0) throw budgetExceeded(a.settings.freezeBudgetSeconds);
        const held = (await a.writesHeld?.().catch(() => null)) ?? null;
        await journal.step(session.id, attempt, 'resume_target', () => writes.proxy.resume());
        const resumedAt = this.#clock.now();
        await journal.update(session.id, attempt, {
          switchedAt: resumedAt,
          resumedAt,
          resumedOn: 'target',
          writesHeld: held,
          approvals: { ...approvals, switch: { ...approvals?.switch, aheadOfTime } },
          outcome: 'switched',
        });
      } else {
        await journal.step(session.id, attempt, 'stop_migration', () => this.#stopMigration(a, session));
        const params = await journal.step(session.id, attempt, 'publish_parameters', () => a.targetParameters(), (p) => ({
          host: p.host,
          port: p.port,
          database: p.database,
          user: p.user,
        }));
        await journal.update(session.id, attempt, {
          switchedAt: this.#clock.now(),
          approvals: { ...approvals, switch: { ...approvals?.switch, aheadOfTime } },
          outcome: 'switched',
        });
        await this.#notify(session, 'info', parametersText(params));
      }
    } catch (error) {
      const budget = isCode(error, ErrorCode.FreezeBudgetExceeded);
      await this.#undo(w, session, {
        repointToSource: repointStarted,
        reason: budget
          ? `the freeze budget of ${a.settings.freezeBudgetSeconds} s ran out before the switch completed`
          : `the switch failed: ${asCodedError(error).message}`,
        level: budget ? 'warning' : 'error',
      });
      throw budget ? error : stepFailed('switch', error);
    }
    this.#endFreezeHold(w);
    session = await this.#transition(session.id, 'switch');
    const record = await journal.attempt(session.id, attempt);
    const frozenMs = record?.frozenAt && record.resumedAt ? record.resumedAt.getTime() - record.frozenAt.getTime() : undefined;
    await this.#audit(session, actor, 'switch', 'succeeded', { attempt, aheadOfTime, frozenMs, writesHeld: record?.writesHeld ?? null });
    this.#sessionLog(session).info({ attempt, frozenMs, aheadOfTime }, 'switched');
    await this.#notify(
      session,
      'info',
      writes.kind === 'proxy'
        ? `Switched: writes go to the target. Writes were frozen for ${frozenMs ?? '?'} ms.`
        : 'Switched: the migration is stopped and the target is handed out; the source stays frozen.',
    );
    return session;
  }

  /** Puts everything back on the source and resumes writes there; never throws for a failed resume without saying so. */
  async #undo(
    w: Window,
    session: Session,
    options: { repointToSource: boolean; reason: string; level: 'info' | 'warning' | 'error'; actor?: Actor },
  ): Promise<Session> {
    const journal = this.#d.journal;
    const attempt = w.attempt;
    const writes = w.adapters.writes;
    this.#stopPolling(w);
    if (attempt !== undefined) await journal.record(session.id, attempt, 'unfreeze_source', 'started', { reason: options.reason });
    const problems: string[] = [];
    if (options.repointToSource && writes.kind === 'proxy') {
      try {
        await retry(() => writes.proxy.repoint(writes.source));
      } catch (error) {
        problems.push(`repointing to the source failed: ${asCodedError(error).message}`);
      }
    }
    let resumed = false;
    try {
      await retry(() => resumeWrites(writes));
      resumed = true;
    } catch (error) {
      problems.push(`resuming writes failed: ${asCodedError(error).message}`);
    }
    const log = this.#sessionLog(session);
    if (!resumed) {
      if (attempt !== undefined) await journal.record(session.id, attempt, 'unfreeze_source', 'failed', { problems });
      log.error({ problems }, 'undo failed: writes may still be frozen');
      // Release the lock so the watchdog (here or on another replica) retries from the journal.
      this.#endFreezeHold(w);
      await this.#notify(session, 'error', `${capitalise(options.reason)}. I could NOT resume writes on the source: ${problems.join('; ')}. I keep retrying; check the proxy now.`);
      throw new CodedError(ErrorCode.FreezeFailed, `Writes could not be resumed: ${problems.join('; ')}`);
    }
    const resumedAt = this.#clock.now();
    if (attempt !== undefined) {
      await journal.record(session.id, attempt, 'unfreeze_source', 'done', problems.length ? { problems } : {});
      await journal.record(session.id, attempt, 'freeze', 'undone');
      await journal.update(session.id, attempt, { resumedAt, resumedOn: 'source', outcome: 'resumed on source', endedAt: resumedAt });
    }
    this.#endFreezeHold(w);
    const current = await this.#d.sessions.require(session.id);
    const updated = current.state === 'frozen' ? await this.#transition(session.id, 'resume') : current;
    await this.#audit(updated, options.actor ?? BOT_ACTOR, 'resume', 'succeeded', { reason: options.reason, problems });
    log.warn({ reason: options.reason, problems }, 'writes resumed on the source');
    await this.#notify(
      updated,
      problems.length ? 'error' : options.level,
      `${capitalise(options.reason)}. Writes resumed on the source; nothing was switched.${problems.length ? ` Problems: ${problems.join('; ')}.` : ''}`,
    );
    return updated;
  }

  async #runRollback(w: Window, session: Session, attempt: number, actor: Actor): Promise<Session> {
    const journal = this.#d.journal;
    const writes = w.adapters.writes;
    w.attempt = attempt;
    const switched = await journal.latestCutover(session.id);
    if (writes.kind === 'proxy') {
      await journal.step(session.id, attempt, 'rollback_freeze_target', () => writes.proxy.freeze());
      try {
        await journal.step(session.id, attempt, 'rollback_repoint', () => writes.proxy.repoint(writes.source));
        await journal.step(session.id, attempt, 'rollback_resume_source', () => writes.proxy.resume());
      } catch (error) {
        // Put the rollback back: writes continue on the target rather than staying frozen.
        await retry(() => writes.proxy.resume()).catch(() => undefined);
        await journal.record(session.id, attempt, 'rollback_freeze_target', 'undone');
        await this.#notify(session, 'error', `The rollback failed (${asCodedError(error).message}); writes continue on the target.`);
        throw stepFailed('rollback', error);
      }
    } else {
      await journal.step(session.id, attempt, 'rollback_resume_source', () => writes.freeze.resume());
    }
    const updated = await this.#transition(session.id, 'rollback');
    await this.#audit(updated, actor, 'rollback', 'succeeded', { attempt });
    const since = switched?.switchedAt ? ` (switched at ${switched.switchedAt.toISOString()})` : '';
    await this.#notify(
      updated,
      'warning',
      writes.kind === 'proxy'
        ? `Rolled back: writes go to the source again. Writes made on the target since the switch${since} are NOT on the source.`
        : `Rolled back: writes are allowed on the source again; point your applications back to it. Writes made on the target since the switch${since} are NOT on the source.`,
    );
    return updated;
  }

  async #runFinish(w: Window, session: Session, attempt: number, actor: Actor): Promise<Session> {
    w.attempt = attempt;
    await this.#d.journal.step(session.id, attempt, 'stop_migration', () => this.#stopMigration(w.adapters, session));
    const updated = await this.#transition(session.id, 'finish');
    const summary = await this.summary(session.id);
    await this.#audit(updated, actor, 'finish', 'succeeded', { attempt, summary });
    await this.#notify(updated, 'info', summary);
    return updated;
  }

  async #runAbort(w: Window, session: Session, attempt: number, actor: Actor): Promise<Session> {
    const journal = this.#d.journal;
    w.attempt = attempt;
    const writes = w.adapters.writes;
    if (session.state === 'frozen') {
      const decision = recoveryDecision(await journal.entries(session.id));
      await journal.step(session.id, attempt, 'unfreeze_source', async () => {
        if (decision.action === 'undo-freeze' && decision.repointToSource && writes.kind === 'proxy') {
          await retry(() => writes.proxy.repoint(writes.source));
        }
        await retry(() => resumeWrites(writes));
      });
      this.#endFreezeHold(w);
    }
    await journal.step(session.id, attempt, 'stop_migration', () => this.#stopMigration(w.adapters, session));
    const updated = await this.#transition(session.id, 'abort');
    await this.#audit(updated, actor, 'abort', 'succeeded', { attempt });
    await this.#notify(updated, 'warning', 'Aborted: writes go to the source, the DigitalOcean migration is stopped.');
    return updated;
  }

  /** Stops DO's online migration; idempotent (a migration already stopped or finished is fine). */
  async #stopMigration(a: SessionAdapters, session: Session): Promise<void> {
    const cluster = a.settings.doClusterUuid;
    const current = await a.doApi.getOnlineMigration(cluster);
    if (!current || (session.doMigrationId && current.id !== session.doMigrationId)) return;
    if (current.status !== 'running' && current.status !== 'syncing') return;
    await a.doApi.stopOnlineMigration(cluster, current.id);
  }

  async #applyRecovery(w: Window, decision: RecoveryDecision): Promise<void> {
    const session = await this.#d.sessions.require(w.sessionId);
    const log = this.#sessionLog(session);
    log.warn({ decision }, 'recovering an interrupted cutover');
    const journal = this.#d.journal;
    switch (decision.action) {
      case 'none':
        await this.#settle(session, decision.settle);
        return;
      case 'undo-freeze':
        w.attempt = decision.attempt;
        await this.#undo(w, session, {
          repointToSource: decision.repointToSource,
          reason: `after a restart I found writes frozen without a completed switch (${decision.reason})`,
          level: 'warning',
        });
        return;
      case 'complete-switch': {
        w.attempt = decision.attempt;
        const writes = w.adapters.writes;
        if (writes.kind === 'proxy') {
          await journal.step(session.id, decision.attempt, 'resume_target', () => retry(() => writes.proxy.resume()));
          const now = this.#clock.now();
          await journal.update(session.id, decision.attempt, { switchedAt: now, resumedAt: now, resumedOn: 'target', outcome: 'switched (recovered)' });
        } else {
          await journal.step(session.id, decision.attempt, 'stop_migration', () => this.#stopMigration(w.adapters, session));
          const params = await journal.step(session.id, decision.attempt, 'publish_parameters', () => w.adapters.targetParameters(), (p) => ({ host: p.host, port: p.port }));
          await journal.update(session.id, decision.attempt, { switchedAt: this.#clock.now(), outcome: 'switched (recovered)' });
          await this.#notify(session, 'info', parametersText(params));
        }
        await this.#settle(session, 'switched');
        await this.#notify(session, 'warning', `After a restart I completed the switch that was under way (${decision.reason}).`);
        return;
      }
      case 'complete-rollback':
        await this.#runRollback(w, session, decision.attempt, BOT_ACTOR);
        return;
      case 'complete-finish':
        await this.#runFinish(w, session, decision.attempt, BOT_ACTOR);
        return;
      case 'complete-abort': {
        w.attempt = decision.attempt;
        await journal.step(session.id, decision.attempt, 'unfreeze_source', () => retry(() => resumeWrites(w.adapters.writes)));
        await journal.step(session.id, decision.attempt, 'stop_migration', () => this.#stopMigration(w.adapters, session));
        await this.#settle(session, 'aborted');
        return;
      }
    }
  }

  /** Brings the session's state in line with what the journal proves (after a crash between a step and its transition). */
  async #settle(session: Session, settle: RecoveryDecision['settle']): Promise<void> {
    const event: SessionEvent | undefined =
      settle === 'syncing' && session.state === 'frozen'
        ? 'resume'
        : settle === 'switched' && session.state === 'frozen'
          ? 'switch'
          : settle === 'rolled_back' && session.state === 'switched'
            ? 'rollback'
            : settle === 'finished' && session.state === 'switched'
              ? 'finish'
              : settle === 'aborted' && session.state !== 'switched'
                ? 'abort'
                : undefined;
    if (event) await this.#transition(session.id, event);
  }

  /** The end-of-session summary: freeze duration, writes held, lag at freeze, who approved what. */
  async summary(sessionId: string): Promise<string> {
    const attempt = await this.#d.journal.latestCutover(sessionId);
    if (!attempt) return 'Finished. No cutover was run.';
    const frozenMs = attempt.frozenAt && attempt.resumedAt ? attempt.resumedAt.getTime() - attempt.frozenAt.getTime() : null;
    const lag = attempt.lagAtFreeze;
    const approvals = attempt.approvals;
    const parts = [
      `Finished. Writes were frozen for ${frozenMs === null ? 'an unknown time' : `${frozenMs} ms`}`,
      `writes held: ${attempt.writesHeld ?? 'unknown'}`,
      `lag at freeze: ${lag?.known ? `${lag.bytes} bytes` : 'unknown'}`,
      `fence: ${attempt.fence ? `${attempt.fence.method} in ${attempt.fence.elapsedMs} ms` : 'none'}`,
      `sequences copied: ${attempt.sequencesCopied ?? 0}`,
      `freeze started by <@${attempt.startedBy}>`,
    ];
    if (approvals?.freeze?.approvedBy) parts.push(`freeze approved by <@${approvals.freeze.approvedBy}>`);
    if (approvals?.switch?.approvedBy) parts.push(`switch approved by <@${approvals.switch.approvedBy}>${approvals.switch.aheadOfTime ? ' (ahead of time)' : ''}`);
    return `${parts.join('; ')}.`;
  }

  // ── Windows, budget, approvals ───────────────────────────────────────────────────────────────

  async #exclusive<T>(sessionId: string, work: (w: Window) => Promise<T>, busyMessage?: string): Promise<T> {
    let w: Window;
    for (;;) {
      let pending = this.#windows.get(sessionId);
      if (!pending) {
        pending = this.#openWindow(sessionId, busyMessage);
        this.#windows.set(sessionId, pending);
        const opening = pending;
        opening.catch(() => {
          if (this.#windows.get(sessionId) === opening) this.#windows.delete(sessionId);
        });
      }
      w = await pending;
      // A window that closed while we waited for it no longer holds the lock: open a fresh one.
      if (!w.closed) break;
    }
    w.busy += 1;
    const run = w.queue.then(() => work(w));
    w.queue = run.catch(() => undefined);
    try {
      return await run;
    } finally {
      w.busy -= 1;
      if (w.busy === 0 && !w.hold) await this.#closeWindow(w);
    }
  }

  async #openWindow(sessionId: string, busyMessage?: string): Promise<Window> {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let acquired!: (ok: boolean) => void;
    let failed!: (error: unknown) => void;
    const gotLock = new Promise<boolean>((resolve, reject) => {
      acquired = resolve;
      failed = reject;
    });
    const held = this.#d.db.withTryAdvisoryLock(lockKey(sessionId), async () => {
      acquired(true);
      await released;
    });
    held.then((result) => result === undefined && acquired(false), failed);
    if (!(await gotLock)) {
      throw new CodedError(
        ErrorCode.ExecutorBusy,
        busyMessage ?? 'Another replica is running a step of this cutover right now; look at the status message.',
        { details: { sessionId } },
      );
    }
    let adapters: SessionAdapters;
    try {
      adapters = await this.#d.adapters(await this.#d.sessions.require(sessionId));
    } catch (error) {
      release();
      await held.catch(() => undefined);
      throw error;
    }
    return {
      sessionId,
      adapters,
      queue: Promise.resolve(),
      busy: 0,
      hold: false,
      attempt: undefined,
      deadline: undefined,
      budgetTimer: undefined,
      pollTimer: undefined,
      closed: false,
      release,
      released: held.then(() => undefined, () => undefined),
    };
  }

  async #closeWindow(w: Window): Promise<void> {
    if (w.closed) return;
    w.closed = true;
    this.#windows.delete(w.sessionId);
    this.#endFreezeHold(w);
    w.release();
    await w.released;
    await w.adapters.close().catch((err: unknown) => this.#log.warn({ err, session: w.sessionId }, 'closing adapters failed'));
  }

  #startBudget(w: Window, frozenAt: Date, budgetSeconds: number): void {
    w.budgetTimer?.cancel();
    w.deadline = frozenAt.getTime() + budgetSeconds * 1000;
    w.budgetTimer = this.#clock.setTimer(Math.max(0, w.deadline - this.#clock.now().getTime()), () => {
      void this.#onBudgetExpired(w, budgetSeconds);
    });
  }

  async #onBudgetExpired(w: Window, budgetSeconds: number): Promise<void> {
    // Runs after whatever step is under way (each step is bounded by the budget itself).
    w.busy += 1;
    const run = w.queue.then(async () => {
      const session = await this.#d.sessions.require(w.sessionId);
      if (session.state !== 'frozen' || !w.hold) return;
      const decision = recoveryDecision(await this.#d.journal.entries(session.id));
      if (decision.action !== 'undo-freeze') return;
      w.attempt = decision.attempt;
      await this.#undo(w, session, {
        repointToSource: decision.repointToSource,
        reason: `the freeze budget of ${budgetSeconds} s ran out before the switch`,
        level: 'warning',
      });
    });
    w.queue = run.catch((err: unknown) => this.#log.error({ err, session: w.sessionId }, 'budget expiry handling failed'));
    await w.queue;
    w.busy -= 1;
    if (w.busy === 0 && !w.hold) await this.#closeWindow(w);
  }

  #pollApproval(w: Window): void {
    const every = this.#d.approvalPollMs ?? 200;
    const tick = () => {
      w.pollTimer = undefined;
      if (!w.hold) return;
      if (w.busy > 0) {
        w.pollTimer = this.#clock.setTimer(every, tick);
        return;
      }
      void this.#approved(w.sessionId).then(async (ok) => {
        if (!w.hold) return;
        if (!ok || w.busy > 0) {
          w.pollTimer = this.#clock.setTimer(every, tick);
          return;
        }
        await this.#exclusive(w.sessionId, (win) => this.#switch(win, BOT_ACTOR, true)).catch((err: unknown) =>
          this.#log.warn({ err: asCodedError(err), session: w.sessionId }, 'switch after approval failed'),
        );
      });
    };
    w.pollTimer = this.#clock.setTimer(every, tick);
  }

  #stopPolling(w: Window): void {
    w.pollTimer?.cancel();
    w.pollTimer = undefined;
  }

  #endFreezeHold(w: Window): void {
    this.#stopPolling(w);
    w.budgetTimer?.cancel();
    w.budgetTimer = undefined;
    w.deadline = undefined;
    w.hold = false;
  }

  #remaining(w: Window): number {
    return w.deadline === undefined ? Number.POSITIVE_INFINITY : w.deadline - this.#clock.now().getTime();
  }

  async #approved(sessionId: string): Promise<boolean> {
    try {
      return await this.#d.switchApprovalValid(sessionId, this.#clock.now());
    } catch (error) {
      this.#log.warn({ err: asCodedError(error), session: sessionId }, 'approval check failed');
      return false;
    }
  }

  // ── Helpers ──────────────────────────────────────────────────────────────────────────────────

  /** The session, if the click was based on its current version and the event is allowed now. */
  async #checked(ref: SessionRef, event: SessionEvent): Promise<Session> {
    const session = await this.#d.sessions.require(ref.sessionId);
    if (session.version !== ref.expectedVersion) {
      throw new CodedError(
        ErrorCode.SessionConflict,
        'Someone else changed this session a moment ago; look at the updated status message and try again.',
        { details: { sessionId: session.id, expectedVersion: ref.expectedVersion, actualVersion: session.version } },
      );
    }
    const allowed = domainTransition(session.state, event);
    if (!allowed.ok) {
      throw new CodedError(ErrorCode.InvalidTransition, `Cannot ${event.replace('_', ' ')}: ${allowed.reason}.`, {
        details: { from: session.state, event },
      });
    }
    return session;
  }

  /** Applies `event` on the latest version (this replica holds the executor lock; other writers only touch the status message). */
  async #transition(sessionId: string, event: SessionEvent, patch: { doMigrationId?: string } = {}): Promise<Session> {
    for (let tries = 0; ; tries += 1) {
      const current = await this.#d.sessions.require(sessionId);
      try {
        return await this.#d.sessions.transition(sessionId, current.version, event, patch);
      } catch (error) {
        if (isCode(error, ErrorCode.SessionConflict) && tries < 5) continue;
        throw error;
      }
    }
  }

  async #withAdapters<T>(session: Session, work: (a: SessionAdapters) => Promise<T>): Promise<T> {
    const a = await this.#d.adapters(session);
    try {
      return await work(a);
    } finally {
      await a.close().catch(() => undefined);
    }
  }

  async #notify(session: Session, level: 'info' | 'warning' | 'error', text: string): Promise<void> {
    try {
      await this.#d.notifier.notify(session, { level, text });
    } catch (error) {
      this.#sessionLog(session).warn({ err: asCodedError(error) }, 'notifying the channel failed');
    }
  }

  async #audit(session: Session, actor: Actor, action: string, outcome: 'succeeded' | 'failed' | 'refused', details: Record<string, unknown>) {
    await this.#d.audit
      .append({ sessionId: session.id, channelId: session.channelId, actor: actor.userId, action, outcome, details })
      .catch((err: unknown) => this.#sessionLog(session).warn({ err }, 'audit append failed'));
  }

  #sessionLog(session: Session): Logger {
    return this.#log.child({ session: session.id });
  }
}

// ── Module helpers ───────────────────────────────────────────────────────────────────────────────

function freezeWrites(writes: WriteControl): Promise<void> {
  return writes.kind === 'proxy' ? writes.proxy.freeze() : writes.freeze.freeze();
}

function resumeWrites(writes: WriteControl): Promise<void> {
  return writes.kind === 'proxy' ? writes.proxy.resume() : writes.freeze.resume();
}

function proxyLabel(writes: WriteControl): string | undefined {
  return writes.kind === 'proxy' ? `${writes.proxy.kind} database ${writes.frozenWhat.database ?? ''}`.trim() : undefined;
}

function needsSettling(session: Session, decision: RecoveryDecision): boolean {
  const s = decision.settle;
  return (
    (s === 'syncing' && session.state === 'frozen') ||
    (s === 'switched' && session.state === 'frozen') ||
    (s === 'rolled_back' && session.state === 'switched') ||
    (s === 'finished' && session.state === 'switched') ||
    (s === 'aborted' && session.state !== 'switched')
  );
}

function isCode(error: unknown, code: ErrorCode): boolean {
  return error instanceof CodedError && error.code === code;
}

function budgetExceeded(seconds: number): CodedError {
  return new CodedError(ErrorCode.FreezeBudgetExceeded, `The freeze budget of ${seconds} s ran out before the switch; writes resumed on the source.`, {
    details: { budgetSeconds: seconds },
  });
}

function stepFailed(step: string, error: unknown): CodedError {
  const cause = asCodedError(error);
  return new CodedError(ErrorCode.CutoverStepFailed, `The ${step} failed and was put back: ${cause.message}`, {
    cause: error,
    details: { step, cause: cause.code },
  });
}

async function retry<T>(work: () => Promise<T>, attempts = 3, pauseMs = 200): Promise<T> {
  for (let i = 1; ; i += 1) {
    try {
      return await work();
    } catch (error) {
      if (i >= attempts) throw error;
      await delay(pauseMs * i);
    }
  }
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function parametersText(p: TargetParameters): string {
  return [
    'The target is ready. Point your application at:',
    `host ${p.host}, port ${p.port}, database ${p.database}, user ${p.user}, password ${maskSecret(p.password.reveal())} (full value in the DigitalOcean control panel), sslmode ${p.sslmode}.`,
    'Reply when your application was moved; the source stays read-only.',
  ].join('\n');
}
