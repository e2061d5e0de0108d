/**
 * The live status message each session owns: posted once, then updated in place (chat.update) on
 * every change, one refresh at a time per session and always from the latest stored state, so an
 * older render never lands after a newer one. Thread replies carry the audit trail and reports.
 */
import type { LoadedConfig } from '../../config/profiles.js';
import type { Session } from '../../domain/session.js';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { LagSample } from '../../domain/ports/replication.js';
import type { ApprovalStore, ReportScheduleStore } from '../store/approvals.js';
import type { Store } from '../store/index.js';
import { renderStatus, type LagTrend, type StatusView } from './blocks.js';
import type { SlackClient } from './slack-client.js';

export interface StatusMessageDeps {
  client: SlackClient;
  store: Store;
  approvals: ApprovalStore;
  schedules: ReportScheduleStore;
  config: LoadedConfig;
  log: Logger;
  now: () => Date;
  /** Lag for the message (the engine's `lag`); failures show as unknown. */
  lag: (sessionId: string) => Promise<LagSample>;
  /** How long a lag measurement may take before the message shows it as unknown. */
  lagTimeoutMs?: number;
}

export class StatusMessages {
  private readonly deps: StatusMessageDeps;
  private readonly queues = new Map<string, Promise<void>>();
  private readonly lastLag = new Map<string, LagSample>();

  constructor(deps: StatusMessageDeps) {
    this.deps = deps;
  }

  /** Posts the session's message and records its ts on the session (one version step). */
  async post(session: Session): Promise<Session> {
    const view = await this.view(session);
    const { text, blocks } = renderStatus(view);
    const posted = await this.deps.client.chat.postMessage({ channel: session.channelId, text, blocks: blocks as never });
    if (!posted.ts) throw new CodedError(ErrorCode.SlackApiFailed, 'Slack did not return the status message timestamp.');
    let current = session;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.deps.store.sessions.update(current.id, current.version, { statusMessageTs: posted.ts });
      } catch (error) {
        if (attempt >= 3 || !(error instanceof CodedError) || error.code !== ErrorCode.SessionConflict) throw error;
        current = await this.deps.store.sessions.require(current.id);
      }
    }
  }

  /** Re-renders the message from the stored session (serialised per session; errors are logged). */
  refresh(sessionId: string): Promise<void> {
    const previous = this.queues.get(sessionId) ?? Promise.resolve();
    const next = previous.then(() => this.refreshNow(sessionId)).catch((error: unknown) => {
      this.deps.log.warn({ session: sessionId, error: error instanceof Error ? error.message : String(error) }, 'status message refresh failed');
    });
    this.queues.set(sessionId, next);
    void next.finally(() => {
      if (this.queues.get(sessionId) === next) this.queues.delete(sessionId);
    });
    return next;
  }

  /** A line in the session's thread (`broadcast`: also shown in the channel). */
  async thread(session: Session, text: string, options: { broadcast?: boolean } = {}): Promise<void> {
    try {
      const ts = session.statusMessageTs;
      await this.deps.client.chat.postMessage(
        ts
          ? { channel: session.channelId, text, thread_ts: ts, reply_broadcast: options.broadcast === true }
          : { channel: session.channelId, text },
      );
    } catch (error) {
      this.deps.log.warn({ session: session.id, error: error instanceof Error ? error.message : String(error) }, 'thread reply failed');
    }
  }

  /** The data the message shows; also used for the ephemeral `/migrate status` answer. */
  async view(session: Session): Promise<StatusView> {
    const { approvals, schedules, config, now } = this.deps;
    const [requests, lastFreeze, reportSchedule, lag] = await Promise.all([
      approvals.open(session.id),
      session.state === 'frozen' ? approvals.latest(session.id, 'freeze') : Promise.resolve(undefined),
      schedules.get(session.id),
      session.state === 'syncing' || session.state === 'frozen' ? this.measure(session.id) : Promise.resolve(undefined),
    ]);
    const frozenAt = lastFreeze?.status === 'executed' ? (lastFreeze.closedAt ?? undefined) : undefined;
    return {
      session,
      profile: config.profiles.get(session.profile),
      requests,
      frozenAt,
      lag: lag?.sample,
      lagTrend: lag?.trend ?? 'unknown',
      reportSchedule: reportSchedule ?? undefined,
      now: now(),
    };
  }

  private async refreshNow(sessionId: string): Promise<void> {
    const session = await this.deps.store.sessions.get(sessionId);
    if (!session?.statusMessageTs) return;
    const { text, blocks } = renderStatus(await this.view(session));
    await this.deps.client.chat.update({ channel: session.channelId, ts: session.statusMessageTs, text, blocks: blocks as never });
  }

  private async measure(sessionId: string): Promise<{ sample: LagSample; trend: LagTrend }> {
    const timeoutMs = this.deps.lagTimeoutMs ?? 2_000;
    let timer: NodeJS.Timeout | undefined;
    const sample = await Promise.race([
      this.deps.lag(sessionId),
      new Promise<LagSample>((resolve) => {
        timer = setTimeout(() => resolve({ known: false, at: this.deps.now(), reason: 'measurement timed out' }), timeoutMs);
      }),
    ])
      .catch((error: unknown): LagSample => ({
        known: false,
        at: this.deps.now(),
        reason: error instanceof CodedError ? error.message : 'measurement failed',
      }))
      .finally(() => clearTimeout(timer));
    const previous = this.lastLag.get(sessionId);
    let trend: LagTrend = 'unknown';
    if (sample.known && previous?.known) {
      const delta = sample.bytes - previous.bytes;
      const tolerance = Math.max(1024, previous.bytes * 0.05);
      trend = delta > tolerance ? 'rising' : delta < -tolerance ? 'falling' : 'steady';
    }
    if (sample.known) this.lastLag.set(sessionId, sample);
    return { sample, trend };
  }
}
