/**
 * The active sessions with the lag the report scheduler last sampled for each (the shared lag-sample
 * history, so every replica reads the same figures without probing a database): what /metrics and
 * the Slack App Home show. Reading is cheap: one list of active sessions, one row per reported session.
 */
import type { LagSample } from '../domain/ports/replication.js';
import type { SessionRepository } from '../domain/ports/stores.js';
import type { Session } from '../domain/session.js';
import { REPORTED_STATES } from './scheduler.js';

/** The newest samples of a session, oldest first (the store's lag-sample history). */
export interface RecentLagSamples {
  recent(sessionId: string, limit: number): Promise<LagSample[]>;
}

export interface SessionWithLag {
  session: Session;
  /** The last sample, while the session is one the scheduler samples (syncing or frozen). */
  lag: LagSample | undefined;
}

export class SessionOverview {
  readonly #sessions: Pick<SessionRepository, 'listActive'>;
  readonly #samples: RecentLagSamples;

  constructor(sessions: Pick<SessionRepository, 'listActive'>, samples: RecentLagSamples) {
    this.#sessions = sessions;
    this.#samples = samples;
  }

  async active(): Promise<SessionWithLag[]> {
    const sessions = await this.#sessions.listActive();
    return Promise.all(
      sessions.map(async (session) => ({
        session,
        lag: REPORTED_STATES.includes(session.state) ? (await this.#samples.recent(session.id, 1)).at(-1) : undefined,
      })),
    );
  }
}
