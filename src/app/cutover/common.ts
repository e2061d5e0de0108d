/** Small pieces the engine's modules share: the session transition on the latest version, error marks, where the proxy points. */
import type { ObservedProxy } from '../../domain/cutover-plan.js';
import type { SessionMachines } from '../../domain/ports/machines.js';
import type { SessionRepository } from '../../domain/ports/stores.js';
import type { Session, SessionEvent } from '../../domain/session.js';
import { CodedError, ErrorCode, asCodedError } from '../../errors.js';

export function isCode(error: unknown, code: ErrorCode): boolean {
  return error instanceof CodedError && error.code === code;
}

export function stepFailed(step: string, error: unknown): CodedError {
  const cause = asCodedError(error);
  return new CodedError(ErrorCode.CutoverStepFailed, `The ${step} failed and was put back: ${cause.message}`, {
    cause: error,
    details: { step, cause: cause.code },
  });
}

/**
 * Applies `event` on the latest version: the executor holds the session's lock, so only gate steps
 * (which bump the version, never the state) can race it; retried a few times on a conflict.
 */
export async function transitionLatest(sessions: SessionRepository, sessionId: string, event: SessionEvent, patch: { doMigrationId?: string } = {}): Promise<Session> {
  for (let tries = 0; ; tries += 1) {
    const current = await sessions.require(sessionId);
    try {
      return await sessions.transition(sessionId, current.version, event, patch);
    } catch (error) {
      if (isCode(error, ErrorCode.SessionConflict) && tries < 5) continue;
      throw error;
    }
  }
}

/** Errors whose fact was already recorded, so the caller records no second one. */
export class ReportedErrors {
  readonly #reported = new WeakSet<object>();

  mark<E>(error: E): E {
    if (typeof error === 'object' && error !== null) this.#reported.add(error);
    return error;
  }

  has(error: unknown): boolean {
    return typeof error === 'object' && error !== null && this.#reported.has(error);
  }
}

/**
 * Where the proxy points, for a freeze the journal leaves open: a run journals nothing between its
 * freeze and its resume. Unreachable proxy: recovery fails and the watchdog tries again (writes
 * cannot be resumed without it anyway).
 */
export async function observeProxy(machines: SessionMachines): Promise<ObservedProxy | undefined> {
  const routing = machines.routing;
  if (!routing) return undefined;
  const at = (await routing.router.inspect()).pointsTo;
  const is = (e: { host: string; port: number }) => at !== null && at.host === e.host && at.port === e.port;
  return { pointsTo: is(routing.target) ? 'target' : is(routing.source) ? 'source' : 'elsewhere' };
}
