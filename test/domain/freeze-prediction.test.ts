import { describe, expect, it } from 'vitest';
import { predictFreeze, type FreezeInputs } from '../../src/domain/freeze-prediction.js';

const inputs: FreezeInputs = {
  drainMs: 0,
  sourceRttMs: 1,
  targetRttMs: 2,
  proxyRttMs: 0.5,
  applyDelayMs: 10,
  sequences: 3,
  sourceLsn: '0/16B3748',
};

describe('the predicted freeze', () => {
  it('proxy: PAUSE, then the fence beside the sequence copy, then RELOAD, its check and RESUME in one message', () => {
    const p = predictFreeze(inputs, 'proxy');
    expect(p.parts).toEqual({ drain: 0, freeze: 0.5, fence: 15, sequences: 3, switch: 1.5 });
    // The sequences run beside the fence: only the longer of the two counts.
    expect(p.ms).toBe(17);
  });

  it('waits for the oldest open write transaction first (the drain), and for a slow apply', () => {
    const slow = predictFreeze({ ...inputs, drainMs: 400, applyDelayMs: 2000 }, 'proxy');
    expect(slow.ms).toBe(400 + 0.5 + 1 + 2000 + 4 + 1.5);
  });

  it('with no sequences the copy costs nothing; with the lag unknown a walsender wake-up is assumed', () => {
    const p = predictFreeze({ ...inputs, sequences: 0, applyDelayMs: null }, 'proxy');
    expect(p.parts.sequences).toBe(0);
    expect(p.parts.fence).toBe(1 + 5 + 4);
  });

  it('connection parameters: the in-database freeze (two source round trips) and no proxy switch inside it', () => {
    const p = predictFreeze({ ...inputs, proxyRttMs: null }, 'connection-parameters');
    expect(p.parts).toMatchObject({ freeze: 2, switch: 0 });
    expect(p.ms).toBe(2 + 15);
  });
});
