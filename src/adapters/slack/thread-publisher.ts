/**
 * Shows recorded facts in Slack: one line per fact in the session's thread (broadcast to the channel
 * for warnings), in the order they were recorded, then a redraw of the status message. Posting never
 * blocks the use case that recorded the fact (nothing slow inside a freeze); listeners that answer a
 * person wait for `settled` first, so their answer comes after the thread lines and the redraw it caused.
 */
import type { EventListener, SessionEvent } from '../../app/facts.js';
import type { Logger } from '../../log.js';
import type { SlackClient } from './slack-client.js';
import { factLine } from './texts.js';

export interface ThreadPublisherDeps {
  client: Pick<SlackClient, 'chat'>;
  /** Redraws the session's status message (coalesced by the status message itself; never rejects). */
  refreshStatus(sessionId: string): Promise<void>;
  log: Logger;
}

export class ThreadPublisher implements EventListener {
  readonly #d: ThreadPublisherDeps;
  readonly #tails = new Map<string, Promise<void>>();

  constructor(deps: ThreadPublisherDeps) {
    this.#d = deps;
  }

  published({ session, fact }: SessionEvent): void {
    const line = factLine(fact);
    const previous = this.#tails.get(session.id) ?? Promise.resolve();
    const next = previous.then(async () => {
      if (line) {
        const ts = session.statusMessageTs;
        await this.#d.client.chat
          .postMessage(
            ts
              ? { channel: session.channelId, text: line.text, thread_ts: ts, reply_broadcast: line.broadcast }
              : { channel: session.channelId, text: line.text },
          )
          .catch((err: unknown) => this.#d.log.warn({ err, session: session.id, fact: fact.type }, 'thread line failed'));
      }
      await this.#d.refreshStatus(session.id);
    }).catch((err: unknown) => {
      // Never a rejected tail: it would hold every later line of the session, and its map entry, for ever.
      this.#d.log.warn({ err, session: session.id, fact: fact.type }, 'status redraw after a fact failed');
    });
    this.#tails.set(session.id, next);
    void next.then(() => {
      if (this.#tails.get(session.id) === next) this.#tails.delete(session.id);
    });
  }

  /** Resolves once every line recorded so far for the session has been posted. */
  async settled(sessionId: string): Promise<void> {
    for (let tail = this.#tails.get(sessionId); tail; tail = this.#tails.get(sessionId)) {
      await tail;
      if (this.#tails.get(sessionId) === tail) return;
    }
  }
}
