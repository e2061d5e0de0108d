/**
 * Slack as people use it, for tests that drive a bot process over HTTP: signed `/migrate` commands,
 * clicks on the channel's status message (once it shows the session's current version: a click on an
 * older copy is refused as stale), and the switch dialog's submission. Reads the fake Slack Web API
 * and the store's sessions; the bot cannot tell these requests from Slack's.
 */
import type { Session } from '../../src/domain/session.js';
import type { FakeMessage, FakeSlack } from './fake-slack.js';
import { blockActionsPayload, interactionBody, postSigned, slashCommandBody, viewSubmissionPayload } from './slack-requests.js';
import { until } from './wait.js';

export interface SlackPeopleOptions {
  slack: FakeSlack;
  secret: string;
  /** The newest session of a channel (the store's). */
  latest(channel: string): Promise<Session | undefined>;
}

type Button = Record<string, unknown> & { action_id: string; value?: string };

const eventsUrl = (port: number) => `http://127.0.0.1:${port}/slack/events`;

export class SlackPeople {
  readonly #o: SlackPeopleOptions;

  constructor(options: SlackPeopleOptions) {
    this.#o = options;
  }

  /** `/migrate <text>` from `user` in `channel`; throws unless the bot answers 200. */
  async command(port: number, channel: string, user: string, text: string): Promise<void> {
    const body = slashCommandBody({ text, userId: user, channelId: channel, responseUrl: this.#o.slack.respondUrl() });
    const response = await postSigned(eventsUrl(port), body, { secret: this.#o.secret });
    if (response.status !== 200) throw new Error(`/migrate ${text}: HTTP ${response.status} ${response.text}`);
  }

  /** The session's status message: the first top-level message of the channel. */
  status(channel: string): FakeMessage | undefined {
    return this.#o.slack.topLevel(channel)[0];
  }

  /** The lines in the status message's thread, in posting order. */
  thread(channel: string): FakeMessage[] {
    const status = this.status(channel);
    return status ? this.#o.slack.thread(status.ts) : [];
  }

  buttons(channel: string): string[] {
    return this.#buttonsOf(this.status(channel)).map((b) => b.action_id.replace(/^pgc\./, ''));
  }

  /** The status message once it shows the session's current version (and, given, that button). */
  current(channel: string, action?: string, timeoutMs = 30_000): Promise<FakeMessage> {
    return until(
      `the status message of ${channel} at the session's version${action ? ` with button ${action}` : ''}`,
      async () => {
        const session = await this.#o.latest(channel);
        const current = this.status(channel);
        const buttons = this.#buttonsOf(current);
        const fresh = session && buttons.length > 0 && buttons.every((b) => b.value === `${session.id}:${session.version}`);
        return fresh && (!action || buttons.some((b) => b.action_id === `pgc.${action}`)) ? structuredClone(current) : undefined;
      },
      timeoutMs,
      () => `buttons: ${this.buttons(channel).join(', ')}; thread:\n${this.thread(channel).map((m) => `  ${m.text}`).join('\n')}`,
    );
  }

  /** Clicks `action` once the status message shows the session's current version and that button. */
  async click(port: number, channel: string, user: string, action: string, timeoutMs = 30_000): Promise<void> {
    await this.clickOn(port, channel, user, action, await this.current(channel, action, timeoutMs));
  }

  /** Clicks `action` on this copy of the status message (several people clicking one copy at once). */
  async clickOn(port: number, channel: string, user: string, action: string, message: FakeMessage): Promise<void> {
    const button = this.#buttonsOf(message).find((b) => b.action_id === `pgc.${action}`);
    if (!button) throw new Error(`no button ${action} on the message (has ${this.#buttonsOf(message).map((b) => b.action_id).join(', ')})`);
    const payload = blockActionsPayload({
      userId: user,
      channelId: channel,
      messageTs: message.ts,
      button,
      responseUrl: this.#o.slack.respondUrl(),
      messageBlocks: message.blocks,
    });
    const response = await postSigned(eventsUrl(port), interactionBody(payload), { secret: this.#o.secret });
    if (response.status !== 200) throw new Error(`click ${action}: HTTP ${response.status} ${response.text}`);
  }

  /** Submits a switch dialog the bot opened, with `typed` as the database name; the raw answer. */
  submitModal(port: number, user: string, view: Record<string, unknown>, typed: string) {
    const payload = viewSubmissionPayload({ userId: user, view, values: { db_name: { typed: { type: 'plain_text_input', value: typed } } } });
    return postSigned(eventsUrl(port), interactionBody(payload), { secret: this.#o.secret });
  }

  /** Waits until the channel's newest session is in `state`; the timeout names the state and the thread. */
  waitState(channel: string, state: Session['state'], timeoutMs = 30_000, more?: () => string): Promise<Session> {
    return until(
      `session in ${channel} ${state}`,
      async () => {
        const session = await this.#o.latest(channel);
        return session?.state === state ? session : undefined;
      },
      timeoutMs,
      async () =>
        `state ${(await this.#o.latest(channel))?.state}; thread:\n${this.thread(channel).map((m) => `  ${m.text}`).join('\n')}${more ? `\n${more()}` : ''}`,
    );
  }

  #buttonsOf(message: FakeMessage | undefined): Button[] {
    return (message?.blocks ?? []).filter((b) => b.type === 'actions').flatMap((b) => b.elements as Button[]);
  }
}
