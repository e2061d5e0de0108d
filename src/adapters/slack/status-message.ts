/**
 * The live status message each session owns: posted once, then updated in place (chat.update) on
 * every change. Every render is numbered when its build starts, before it reads anything, and an
 * older render never lands after a newer one; renders waiting for the same message are coalesced
 * (only the newest is sent). Refreshes run one at a time per session, and a refresh asked
 * for while another waits joins it. Thread replies carry the audit trail and reports.
 */
import { lagTrend } from '../../domain/lag-trend.js';
import type { LoadedConfig } from '../../config/profiles.js';
import { isActive, type Session } from '../../domain/session.js';
import type { DoView } from '../../domain/report.js';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { LagSample } from '../../domain/ports/replication.js';
import type { StatusFigures } from '../../reports/ports.js';
import type { RollbackWindowState } from '../../domain/rollback-window.js';
import type { ApprovalStore, ReportScheduleStore } from '../store/approvals.js';
import type { Store } from '../store/index.js';
import { renderStatus, type Block, type LagTrend, type StatusView } from './blocks.js';
import type { SlackClient } from './slack-client.js';

export interface StatusMessageDeps {
  client: { chat: Pick<SlackClient['chat'], 'postMessage' | 'update'> };
  /** Redraws a lag report asks for go through this client, so their rate limits never pause a button's calls. */
  reportsClient?: { chat: Pick<SlackClient['chat'], 'update'> };
  store: Store;
  approvals: ApprovalStore;
  schedules: ReportScheduleStore;
  config: LoadedConfig;
  log: Logger;
  now: () => Date;
  /** Lag for the message (the shared source registry's reading); failures show as unknown. */
  lag: (session: Session) => Promise<LagSample>;
  /** How long a lag measurement may take before the message shows it as unknown. */
  lagTimeoutMs?: number;
  /** A switched session's rollback window as the reports last saw it; without it none is shown. */
  rollbackWindow?: (sessionId: string) => Promise<RollbackWindowState | undefined>;
}

export interface RenderedStatus {
  text: string;
  blocks: Block[];
}

/** What the message remembers of a channel's active session between renders. */
interface Memo {
  sessionId: string;
  /** The last known lag reading and the trend it gave (the next reading's trend is drawn against it). */
  lag?: { sample: Extract<LagSample, { known: true }>; trend: LagTrend };
  /** DigitalOcean's status as a lag report last saw it. */
  digitalocean?: { view: DoView; at: Date };
}

/** Per session: renders on their way to the message. Dropped once nothing is building or sending. */
interface Lane {
  /** The number of the newest render sent. */
  sent: number;
  next?: { seq: number; channel: string; ts: string; rendered: RenderedStatus; forReport: boolean };
  sending?: Promise<void>;
}

interface WaitingRefresh {
  figures: StatusFigures | undefined;
  done: Promise<void>;
}

export class StatusMessages {
  private readonly deps: StatusMessageDeps;
  private readonly refreshes = new Map<string, Promise<void>>();
  private readonly waiting = new Map<string, WaitingRefresh>();
  /** By channel (one active session each): bounded by the configured channels, whichever replica ended a session. */
  private readonly memos = new Map<string, Memo>();
  private readonly lanes = new Map<string, Lane>();
  private seq = 0;
  /** Renders being built. While one is, a lane keeps what it sent: that render may be older. */
  private building = 0;

  constructor(deps: StatusMessageDeps) {
    this.deps = deps;
  }

  /** Posts the session's message and records its ts on the session. */
  async post(session: Session): Promise<Session> {
    const { text, blocks } = renderStatus(await this.view(session));
    const posted = await this.deps.client.chat.postMessage({ channel: session.channelId, text, blocks: blocks as never }).catch((error: unknown) => {
      const slackError = (error as { data?: { error?: unknown } }).data?.error;
      if (slackError === 'not_in_channel' || slackError === 'channel_not_found') {
        throw new CodedError(ErrorCode.BotNotInChannel, `Slack refused the status message: ${slackError}.`, { cause: error, details: { channelId: session.channelId } });
      }
      throw error;
    });
    if (!posted.ts) throw new CodedError(ErrorCode.SlackApiFailed, 'Slack did not return the status message timestamp.');
    return this.deps.store.sessions.setStatusMessage(session.id, posted.ts);
  }

  /**
   * Re-renders the message from the stored session; `figures` (a lag report's own measurement) are
   * shown instead of measuring again. Errors are logged.
   */
  refresh(sessionId: string, figures?: StatusFigures): Promise<void> {
    const waiting = this.waiting.get(sessionId);
    if (waiting) {
      if (figures) waiting.figures = figures;
      return waiting.done;
    }
    const previous = this.refreshes.get(sessionId) ?? Promise.resolve();
    const job: WaitingRefresh = { figures, done: previous };
    job.done = previous
      .then(() => {
        // Started: it reads the state from here on, so a later call needs a refresh of its own.
        if (this.waiting.get(sessionId) === job) this.waiting.delete(sessionId);
        return this.refreshNow(sessionId, job.figures);
      })
      .catch((error: unknown) => this.deps.log.warn({ session: sessionId, err: error }, 'status message refresh failed'));
    this.waiting.set(sessionId, job);
    this.refreshes.set(sessionId, job.done);
    void job.done.finally(() => {
      if (this.refreshes.get(sessionId) === job.done) this.refreshes.delete(sessionId);
    });
    return job.done;
  }

  /**
   * `/migrate status`: the channel's active session, if any, in one view (one session read, one lag
   * reading, one approvals and one schedule load), rendered once for the person; the channel's message
   * is updated from the same render without waiting for it.
   */
  async show(channelId: string): Promise<RenderedStatus | undefined> {
    const seq = this.begin();
    try {
      const session = await this.deps.store.sessions.activeInChannel(channelId);
      if (!session) return undefined;
      const rendered = renderStatus(await this.view(session));
      void this.send(session, seq, rendered);
      return rendered;
    } finally {
      this.end();
    }
  }

  /** The data the message shows. */
  async view(session: Session, figures?: StatusFigures): Promise<StatusView> {
    const { approvals, schedules, config, now, rollbackWindow } = this.deps;
    const reported = session.state === 'syncing' || session.state === 'frozen';
    const [requests, lastFreeze, reportSchedule, lag, window] = await Promise.all([
      approvals.open(session.id),
      session.state === 'frozen' ? approvals.latest(session.id, 'freeze') : Promise.resolve(undefined),
      schedules.get(session.id),
      reported ? (figures ? figures.lag : this.measure(session)) : Promise.resolve(undefined),
      session.state === 'switched' && rollbackWindow ? rollbackWindow(session.id) : Promise.resolve(undefined),
    ]);
    const frozenAt = lastFreeze?.status === 'executed' ? (lastFreeze.closedAt ?? undefined) : undefined;
    const memo = this.remember(session, lag, figures);
    return {
      session,
      profile: config.profiles.get(session.profile),
      requests,
      frozenAt,
      lag,
      lagTrend: figures?.lagTrend ?? (lag?.known ? memo?.lag?.trend : undefined) ?? 'unknown',
      reportSchedule: reportSchedule ?? undefined,
      digitalocean: memo?.digitalocean,
      rollbackWindow: window,
      now: now(),
    };
  }

  private async refreshNow(sessionId: string, figures: StatusFigures | undefined): Promise<void> {
    const seq = this.begin();
    try {
      const session = await this.deps.store.sessions.get(sessionId);
      if (!session?.statusMessageTs) return;
      const rendered = renderStatus(await this.view(session, figures));
      await this.send(session, seq, rendered, figures !== undefined);
    } finally {
      this.end();
    }
  }

  /** Numbers a render before it reads anything. */
  private begin(): number {
    this.building++;
    return ++this.seq;
  }

  /** With no render being built, every later one is numbered above all sent: idle lanes can go. */
  private end(): void {
    if (--this.building > 0) return;
    for (const [sessionId, lane] of this.lanes) if (!lane.sending) this.lanes.delete(sessionId);
  }

  /** Queues the render for the message unless a newer one is sent or waiting; resolves once the queue is drained. */
  private send(session: Session, seq: number, rendered: RenderedStatus, forReport = false): Promise<void> {
    if (!session.statusMessageTs) return Promise.resolve();
    let lane = this.lanes.get(session.id);
    if (!lane) {
      lane = { sent: 0 };
      this.lanes.set(session.id, lane);
    }
    if (seq > lane.sent && seq > (lane.next?.seq ?? 0)) {
      lane.next = { seq, channel: session.channelId, ts: session.statusMessageTs, rendered, forReport };
      lane.sending ??= this.drain(session.id, lane);
    }
    return lane.sending ?? Promise.resolve();
  }

  private async drain(sessionId: string, lane: Lane): Promise<void> {
    try {
      for (let next = lane.next; next; next = lane.next) {
        lane.next = undefined;
        lane.sent = next.seq;
        const { channel, ts, rendered } = next;
        const client = next.forReport ? (this.deps.reportsClient ?? this.deps.client) : this.deps.client;
        try {
          await client.chat.update({ channel, ts, text: rendered.text, blocks: rendered.blocks as never });
        } catch (error) {
          this.deps.log.warn({ session: sessionId, err: error }, 'status message update failed');
        }
      }
    } finally {
      lane.sending = undefined;
      if (this.building === 0 && this.lanes.get(sessionId) === lane) this.lanes.delete(sessionId);
    }
  }

  /** Updates what is remembered of the session (nothing once it has ended) and returns it. */
  private remember(session: Session, lag: LagSample | undefined, figures: StatusFigures | undefined): Memo | undefined {
    if (!isActive(session.state)) {
      if (this.memos.get(session.channelId)?.sessionId === session.id) this.memos.delete(session.channelId);
      return undefined;
    }
    let memo = this.memos.get(session.channelId);
    if (memo?.sessionId !== session.id) {
      memo = { sessionId: session.id };
      this.memos.set(session.channelId, memo);
    }
    if (figures) memo.digitalocean = { view: figures.doView, at: figures.lag.at };
    // A reading reused from the shared cache is not a new point: it keeps the trend it gave.
    if (lag?.known && lag.at.getTime() !== memo.lag?.sample.at.getTime()) {
      memo.lag = { sample: lag, trend: lagTrend(memo.lag ? [memo.lag.sample, lag] : [lag], { minSamples: 2 }).direction };
    }
    return memo;
  }

  private async measure(session: Session): Promise<LagSample> {
    const timeoutMs = this.deps.lagTimeoutMs ?? 2_000;
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      this.deps.lag(session),
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
  }
}
