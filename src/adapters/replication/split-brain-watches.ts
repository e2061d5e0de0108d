/**
 * The split-brain watches of every session, one slot each on its profile's source database (the
 * profile's own; the slot is per database and named after the session). Started by the `switched`
 * fact on the replica that switched (no write after the switch goes unseen), and again, idempotently,
 * by each sample tick of a switched session (another replica, a restart); removed by any fact that
 * ends the session (finish, rollback, abort, fail) and, for what a crash left behind, by the report
 * housekeeping's sweep. The sweep lists the slots before the sessions: a slot it sees was created
 * after its session switched, so the session is in the listing as switched unless it has ended.
 */
import type { EventListener, SessionEvent } from '../../app/facts.js';
import type { SessionRepository } from '../../domain/ports/stores.js';
import { isActive, type Session } from '../../domain/session.js';
import type { Logger } from '../../log.js';
import type { SplitBrainCheck, SplitBrainWatches } from '../../reports/ports.js';
import type { SourceRegistry } from '../source/source-registry.js';
import { dropSlots, objectName, slotsByPrefix } from './common.js';
import { SlotSplitBrainWatch, WATCH_PREFIX } from './split-brain-watch.js';

export interface SourceSplitBrainWatchesOptions {
  sources: Pick<SourceRegistry, 'pool'>;
  /** The configured profiles' names: their sources are swept. */
  profiles: readonly string[];
  sessions: Pick<SessionRepository, 'listActive'>;
  log: Logger;
}

export class SourceSplitBrainWatches implements SplitBrainWatches, EventListener {
  readonly #o: SourceSplitBrainWatchesOptions;
  readonly #log: Logger;

  constructor(options: SourceSplitBrainWatchesOptions) {
    this.#o = options;
    this.#log = options.log.child({ name: 'split-brain-watches' });
  }

  async check(session: Session): Promise<SplitBrainCheck> {
    const watch = this.#watch(session);
    const started = await watch.start();
    return started.ok ? { watching: true, finding: await watch.check() } : { watching: false, reason: started.reason };
  }

  stop(session: Session): Promise<void> {
    return this.#watch(session).stop();
  }

  async sweep(): Promise<number> {
    const found = await Promise.all(
      this.#o.profiles.map(async (profile) => {
        const pool = this.#o.sources.pool(profile);
        const slots = await slotsByPrefix(pool, WATCH_PREFIX).catch((err: unknown) => {
          this.#log.warn({ err, profile }, 'could not list the split-brain watches on the source');
          return [];
        });
        return slots.map((slot) => ({ pool, name: slot.name }));
      }),
    );
    const switched = (await this.#o.sessions.listActive()).filter((s) => s.state === 'switched');
    const keep = new Set(switched.map((s) => objectName(WATCH_PREFIX, s.id)));
    let removed = 0;
    for (const { pool, name } of found.flat()) if (!keep.has(name)) removed += await dropSlots(pool, name);
    return removed;
  }

  /** Facts: the switch starts the session's watch, a rollback or the end of the session removes it. Never throws. */
  published({ session, fact }: SessionEvent): void {
    const watch = this.#watch(session);
    const work =
      fact.type === 'switched' && session.state === 'switched'
        ? watch.start().then((started) => {
            if (!started.ok) this.#log.warn({ session: session.id, reason: started.reason }, 'split-brain watch not started at the switch');
          })
        : isActive(session.state) && session.state !== 'rolled_back'
          ? undefined
          : watch.stop(); // the session ended, or rolled back: writes belong on the source again
    work?.catch((err: unknown) => this.#log.warn({ err, session: session.id, fact: fact.type }, 'split-brain watch not updated'));
  }

  #watch(session: Session): SlotSplitBrainWatch {
    return new SlotSplitBrainWatch({ source: this.#o.sources.pool(session.profile), sessionId: session.id, logger: this.#log });
  }
}
