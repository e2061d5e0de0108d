/**
 * The migration session lifecycle, as pure data and functions. A session belongs to one Slack channel
 * and moves through these states; the store applies a transition only by compare-and-set on `version`.
 *
 *   created ──migration_started──▶ syncing ──freeze──▶ frozen ──switch──▶ switched ──finish──▶ finished
 *                                     ▲                  │                    │
 *                                     └──────resume──────┘                    └──rollback──▶ rolled_back
 *   abort: created | syncing | frozen | rolled_back ──▶ aborted        fail: any active state ──▶ failed
 *
 * A rolled-back session stays open: its replication is stopped both ways, and a person ends it (abort).
 */
import { assertNever } from '../errors.js';

export const SESSION_STATES = [
  'created',
  'syncing',
  'frozen',
  'switched',
  'finished',
  'aborted',
  'rolled_back',
  'failed',
] as const;
export type SessionState = (typeof SESSION_STATES)[number];

/** States in which a session still owns its channel (one per channel, enforced by the store). */
export const ACTIVE_STATES = ['created', 'syncing', 'frozen', 'switched', 'rolled_back'] as const satisfies readonly SessionState[];
export type ActiveState = (typeof ACTIVE_STATES)[number];

export const SESSION_EVENTS = [
  'migration_started',
  'freeze',
  'resume',
  'switch',
  'finish',
  'rollback',
  'abort',
  'fail',
] as const;
export type SessionEvent = (typeof SESSION_EVENTS)[number];

export type Strategy = 'proxy' | 'connection-parameters';

export interface Session {
  id: string;
  channelId: string;
  profile: string;
  strategy: Strategy;
  state: SessionState;
  /** Incremented by every change; a change names the version it was based on. */
  version: number;
  doMigrationId: string | null;
  startedBy: string;
  /** The live status message in the channel (its `ts`), once posted. */
  statusMessageTs: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export function isActive(state: SessionState): state is ActiveState {
  return (ACTIVE_STATES as readonly SessionState[]).includes(state);
}

export type TransitionResult = { ok: true; to: SessionState } | { ok: false; reason: string };

/** The single definition of which event is allowed in which state, and where it leads. */
export function transition(from: SessionState, event: SessionEvent): TransitionResult {
  const refuse = (reason: string): TransitionResult => ({ ok: false, reason });
  if (!isActive(from)) return refuse(`the session has already ended (${describeState(from)})`);
  switch (event) {
    case 'migration_started':
      return from === 'created' ? { ok: true, to: 'syncing' } : refuse('the migration has already started');
    case 'freeze':
      return from === 'syncing' ? { ok: true, to: 'frozen' } : refuse(`writes can only be frozen while syncing`);
    case 'resume':
      return from === 'frozen' ? { ok: true, to: 'syncing' } : refuse('writes are not frozen');
    case 'switch':
      return from === 'frozen' ? { ok: true, to: 'switched' } : refuse('the switch needs writes frozen first');
    case 'finish':
      return from === 'switched' ? { ok: true, to: 'finished' } : refuse('finish comes after the switch');
    case 'rollback':
      return from === 'switched' ? { ok: true, to: 'rolled_back' } : refuse('only a switched session can roll back');
    case 'abort':
      return from === 'switched'
        ? refuse('traffic already goes to the target: roll back or finish instead')
        : { ok: true, to: 'aborted' };
    case 'fail':
      return { ok: true, to: 'failed' };
    default:
      return assertNever(event, 'session event');
  }
}

export function describeState(state: SessionState): string {
  switch (state) {
    case 'created':
      return 'created, migration not started';
    case 'syncing':
      // The bot's state only: what DigitalOcean reports is shown beside it when known.
      return 'syncing (online migration started)';
    case 'frozen':
      return 'writes frozen';
    case 'switched':
      return 'switched to the target';
    case 'finished':
      return 'finished';
    case 'aborted':
      return 'aborted';
    case 'rolled_back':
      return 'rolled back to the source';
    case 'failed':
      return 'failed';
    default:
      return assertNever(state, 'session state');
  }
}
