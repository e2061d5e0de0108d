import { describe, expect, it } from 'vitest';
import {
  ACTIVE_STATES,
  SESSION_EVENTS,
  SESSION_STATES,
  describeState,
  isActive,
  transition,
} from '../../src/domain/session.js';

describe('the session lifecycle', () => {
  it('follows the happy path created → syncing → frozen → switched → finished', () => {
    const path = [
      ['created', 'migration_started', 'syncing'],
      ['syncing', 'freeze', 'frozen'],
      ['frozen', 'switch', 'switched'],
      ['switched', 'finish', 'finished'],
    ] as const;
    for (const [from, event, to] of path) expect(transition(from, event)).toEqual({ ok: true, to });
  });

  it('resumes a freeze back to syncing and rolls a switch back', () => {
    expect(transition('frozen', 'resume')).toEqual({ ok: true, to: 'syncing' });
    expect(transition('switched', 'rollback')).toEqual({ ok: true, to: 'rolled_back' });
  });

  it('never switches without a freeze', () => {
    for (const state of SESSION_STATES.filter((s) => s !== 'frozen')) {
      expect(transition(state, 'switch').ok).toBe(false);
    }
  });

  it('refuses to abort once traffic goes to the target', () => {
    expect(transition('switched', 'abort')).toEqual({
      ok: false,
      reason: 'traffic already goes to the target: roll back or finish instead',
    });
  });

  it('accepts no event at all in an ended session', () => {
    for (const state of SESSION_STATES.filter((s) => !isActive(s))) {
      for (const event of SESSION_EVENTS) {
        const result = transition(state, event);
        expect(result.ok, `${state} + ${event}`).toBe(false);
      }
    }
  });

  it('lets any active session fail', () => {
    for (const state of ACTIVE_STATES) expect(transition(state, 'fail')).toEqual({ ok: true, to: 'failed' });
  });

  it('describes every state in words', () => {
    const descriptions = SESSION_STATES.map(describeState);
    expect(new Set(descriptions).size).toBe(SESSION_STATES.length);
  });
});
