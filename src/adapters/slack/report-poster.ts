/**
 * The Slack side of reports: lag reports as replies in the session's thread, alerts to the channel
 * (a thread reply broadcast to the channel when the session has a status message), mentioning the
 * profile's operators when an alert fires.
 *
 * Rate limits: chat.postMessage allows about one message per second per channel, so posts to one
 * channel go out one at a time at least `minIntervalMs` apart (other channels are not held up).
 * A 429 is handled by the Web API client itself: it honours Retry-After and retries (its default), or
 * throws WebAPIRateLimitedError with `rejectRateLimitedCalls: true`; either way a failed post leaves
 * the tick unfinished for a later attempt.
 */
import type { types, webApi } from '@slack/bolt';
import { formatBytes, type LagReport } from '../../domain/report.js';
import type { Session } from '../../domain/session.js';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { ChannelAlert, ReportPoster, StatusFigures } from '../../reports/ports.js';

/** The slice of `@slack/web-api`'s WebClient this adapter uses (a WebClient, or Bolt's `app.client`). */
export interface ChatClient {
  chat: Pick<webApi.WebClient['chat'], 'postMessage'>;
}

export interface SlackReportPosterOptions {
  client: ChatClient;
  log: Logger;
  /**
   * The Slack layer's status-card refresh (it owns the card's layout), with a report's own figures when a
   * report asks. Without it, refresh is a no-op.
   */
  refreshStatus?: (session: Session, report?: LagReport, figures?: StatusFigures) => Promise<void>;
  /** Minimum gap between two posts to one channel. Default 1100 ms. */
  minIntervalMs?: number;
}

export class SlackReportPoster implements ReportPoster {
  readonly #client: ChatClient;
  readonly #log: Logger;
  readonly #refresh: SlackReportPosterOptions['refreshStatus'];
  readonly #pacer: ChannelPacer;

  constructor(options: SlackReportPosterOptions) {
    this.#client = options.client;
    this.#log = options.log.child({ name: 'reports' });
    this.#refresh = options.refreshStatus;
    this.#pacer = new ChannelPacer(options.minIntervalMs ?? 1100);
  }

  async postInThread(session: Session, report: LagReport): Promise<void> {
    const text = `${report.title}: ${report.lag.known ? formatBytes(report.lag.bytes) : 'lag unknown'} (${report.trend.direction})`;
    await this.#post(session, text, reportBlocks(report), false);
  }

  async alertChannel(session: Session, alert: ChannelAlert): Promise<void> {
    const icon = alert.action === 'fire' ? ':rotating_light:' : ':white_check_mark:';
    const mentions = alert.action === 'fire' ? alert.operators.map(mention).join(' ') : '';
    const text = `${icon} *${session.profile}* ${alert.title}: ${alert.text}${mentions ? ` ${mentions}` : ''}`;
    // In the thread and in the channel: people see it without opening the thread.
    await this.#post(session, text, [{ type: 'section', text: { type: 'mrkdwn', text } }], true);
  }

  async refreshStatus(session: Session, report?: LagReport, figures?: StatusFigures): Promise<void> {
    await this.#refresh?.(session, report, figures);
  }

  /** In the session's thread when it has a status message (broadcast to the channel if asked), else in the channel. */
  async #post(session: Session, text: string, blocks: types.KnownBlock[], broadcast: boolean): Promise<void> {
    const base = { channel: session.channelId, text, blocks, unfurl_links: false };
    const thread = session.statusMessageTs;
    const args: webApi.ChatPostMessageArguments =
      thread === null
        ? base
        : broadcast
          ? { ...base, thread_ts: thread, reply_broadcast: true }
          : { ...base, thread_ts: thread };
    await this.#pacer.run(session.channelId, async () => {
      const result = await this.#client.chat.postMessage(args);
      if (result.ok === false) {
        throw new CodedError(ErrorCode.SlackApiFailed, `Slack refused the message: ${result.error ?? 'unknown error'}`, {
          details: { channelId: session.channelId },
        });
      }
      this.#log.debug({ session: session.id, channel: session.channelId, ts: result.ts }, 'posted');
    });
  }
}

/** `<@U…>` for people, `<!subteam^S…>` for user groups. */
export function mention(principal: string): string {
  return principal.startsWith('S') ? `<!subteam^${principal}>` : `<@${principal}>`;
}

export function reportBlocks(report: LagReport): types.KnownBlock[] {
  return [
    { type: 'section', text: { type: 'mrkdwn', text: `*${report.title}*\n${report.lines.join('\n')}`.slice(0, 3000) } },
    {
      type: 'context',
      elements: [{ type: 'mrkdwn', text: `<!date^${Math.floor(report.at.getTime() / 1000)}^{date_short_pretty} {time_secs}|${report.at.toISOString()}>` }],
    },
  ];
}

/**
 * Serialises work per key with a minimum gap between the end of one and the start of the next. A key
 * is forgotten once its gap after the last work has passed, so channels of ended sessions leave nothing.
 */
export class ChannelPacer {
  readonly #gapMs: number;
  /** Per key: the last work queued, followed by its gap. */
  readonly #tails = new Map<string, Promise<void>>();

  constructor(gapMs: number) {
    this.#gapMs = gapMs;
  }

  /** Keys with work queued or a gap still running. */
  get size(): number {
    return this.#tails.size;
  }

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const result = (this.#tails.get(key) ?? Promise.resolve()).then(work);
    const tail = result.then(
      () => this.#gap(),
      () => this.#gap(),
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  #gap(): Promise<void> {
    // Unref'd: a pending gap never keeps a stopping process alive.
    return new Promise((resolve) => setTimeout(resolve, this.#gapMs).unref());
  }
}
