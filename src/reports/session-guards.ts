/**
 * What a report tick looks at besides the lag, each announcing through the channel once per change
 * (what was announced is in the store, or, for a watch that cannot start, in this replica):
 * - a switched session's source, for writes that bypass the router (the split-brain watch);
 * - a switched session that replicates back: the reverse slot (WAL kept over the budget, a stream not
 *   streaming) and, once the rollback window has passed, its removal;
 * - a syncing session's schemas on both sides (drift stops replication's apply).
 */
import type { AlertNotice } from '../domain/alerts.js';
import { endWindow, observeReverse, rollbackPolicy, windowEnd, type RollbackWindowStep } from '../domain/rollback-window.js';
import type { Session } from '../domain/session.js';
import { schemaDriftNotice } from '../domain/schema-drift.js';
import { splitBrainNotice, watchNotRunningNotice } from '../domain/split-brain.js';
import { asCodedError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ReportedSessions, ReportPoster, ReportProfile, ReportState, ReverseReplications, SchemaDriftChecks, SplitBrainWatches } from './ports.js';

/** The alerts a pass posted, for its summary. */
export interface AlertTally {
  alerts: { sessionId: string; kind: string; action: 'fire' | 'clear' }[];
}

export interface SessionGuardsDeps {
  sessions: ReportedSessions;
  state: ReportState;
  poster: ReportPoster;
  splitBrain?: SplitBrainWatches;
  reverse?: ReverseReplications;
  schemaDrift?: SchemaDriftChecks;
}

export class SessionGuards {
  readonly #deps: SessionGuardsDeps;
  /** Switched sessions whose watch could not start and was alerted (by this replica). */
  readonly #unwatched = new Set<string>();

  constructor(deps: SessionGuardsDeps) {
    this.#deps = deps;
  }

  /**
   * A switched session's sample tick: what was written on its source since the last look, alerted (each
   * finding is new writes, so nothing is reported twice). A session that ended meanwhile (finish,
   * rollback: writes on the source are no longer foreign) gets no alert, and its watch goes.
   */
  async watchSource(session: Session, profile: ReportProfile, summary: AlertTally, log: Logger): Promise<void> {
    const watches = this.#deps.splitBrain;
    if (!watches) return;
    const result = await watches.check(session);
    let notice: AlertNotice | undefined;
    if ((await this.#deps.sessions.require(session.id)).state !== 'switched') {
      this.#unwatched.delete(session.id);
      await watches.stop(session);
    } else if (result.watching) {
      this.#unwatched.delete(session.id);
      if (result.finding) notice = splitBrainNotice(result.finding);
    } else if (!this.#unwatched.has(session.id)) {
      this.#unwatched.add(session.id);
      notice = watchNotRunningNotice(result.reason);
    }
    if (notice) await this.notify(session, profile, [notice], summary, log);
  }

  /**
   * A switched session that replicates back, at `now`: within the rollback window its reverse slot is
   * read and its episodes announced; past it the reverse replication is removed (unless the session has
   * left `switched`: a finish or rollback removes it itself) and the end announced, both once. Nothing is
   * looked at again once the window has ended. A failure is logged; the next sample tries again.
   */
  async watchReverse(session: Session, profile: ReportProfile, now: Date, summary: AlertTally, log: Logger): Promise<void> {
    const reverse = this.#deps.reverse;
    if (!reverse) return;
    const { state } = this.#deps;
    try {
      const back = await reverse.replicatingBack(session);
      if (!back) return;
      const policy = rollbackPolicy(profile.rollback, profile.reports.alerts.consecutiveSamples);
      const previous = await state.rollbackWindow(session.id);
      if (previous?.attempt === back.attempt && previous.endedAt) return;
      let step: RollbackWindowStep;
      if (now.getTime() >= windowEnd(back, policy).getTime()) {
        if ((await this.#deps.sessions.require(session.id)).state !== 'switched') return;
        const removed = await reverse.drop(session);
        log.info({ removed }, 'rollback window ended: reverse replication removed');
        step = await state.updateRollbackWindow(session.id, (p) => endWindow(p, back, now, policy));
      } else {
        const status = await reverse.status(session);
        const reading = { at: now, slot: status.slot, streaming: status.streaming, retainedWalBytes: status.retainedWalBytes };
        step = await state.updateRollbackWindow(session.id, (p) => observeReverse(p, back, reading, policy));
      }
      await this.notify(session, profile, step.notices, summary, log);
      if (step.redraw) {
        await this.#deps.poster.refreshStatus(session).catch((error: unknown) => log.warn({ err: asCodedError(error) }, 'status message refresh failed'));
      }
    } catch (error) {
      log.warn({ err: asCodedError(error) }, 'replicating back could not be looked at');
    }
  }

  /**
   * A syncing session's schemas compared: new differences and the end of the drift are announced. A
   * comparison that fails (logged) or is still running says nothing (unknown is no evidence), and the
   * lag report goes on.
   */
  async checkSchema(session: Session, profile: ReportProfile, summary: AlertTally, log: Logger): Promise<void> {
    const checks = this.#deps.schemaDrift;
    if (!checks || session.state !== 'syncing') return;
    let differences: string[] | null;
    try {
      differences = await checks.check(session);
    } catch (error) {
      log.warn({ err: asCodedError(error) }, 'schemas of source and target could not be compared');
      return;
    }
    if (differences === null) return;
    const { notice } = await this.#deps.state.updateSchemaDrift(session.id, (announced) => ({
      announced: differences,
      notice: schemaDriftNotice(announced, differences),
    }));
    if (notice) await this.notify(session, profile, [notice], summary, log);
  }

  /** Posts notices to the channel; a lost one is logged, never retried (its cause is recorded either way). */
  async notify(session: Session, profile: ReportProfile, notices: readonly AlertNotice[], summary: AlertTally, log: Logger): Promise<void> {
    for (const notice of notices) {
      summary.alerts.push({ sessionId: session.id, kind: notice.kind, action: notice.action });
      log.info({ kind: notice.kind, action: notice.action }, 'alert');
      try {
        await this.#deps.poster.alertChannel(session, { ...notice, operators: profile.gates.operators });
      } catch (error) {
        // The episode is recorded either way; a lost notice is logged rather than re-fired every sample.
        log.error({ err: asCodedError(error), kind: notice.kind }, 'alert could not be posted');
      }
    }
  }
}
