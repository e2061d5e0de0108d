import { describe, expect, it } from 'vitest';
import { lagTrend } from '../../src/domain/lag-trend.js';
import type { LagSample } from '../../src/domain/ports/replication.js';

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, 0) + s * 1000);
const known = (s: number, bytes: number, slot = 'do_slot'): LagSample => ({ known: true, at: at(s), slot, slotActive: true, bytes, seconds: null });
const unknown = (s: number, reason = 'no active logical slot'): LagSample => ({ known: false, at: at(s), reason });

describe('lag trend', () => {
  it('is unknown with no samples, or when the latest sample is unknown (never zero)', () => {
    expect(lagTrend([])).toMatchObject({ direction: 'unknown', reason: 'no samples yet', etaSeconds: null });
    const trend = lagTrend([known(0, 0), known(10, 0), unknown(20)]);
    expect(trend).toMatchObject({ direction: 'unknown', bytesPerSecond: null, etaSeconds: null, reason: 'no active logical slot' });
  });

  it('rising under load', () => {
    const trend = lagTrend([known(0, 1e6), known(10, 5e6), known(20, 9e6)]);
    expect(trend.direction).toBe('rising');
    expect(trend.bytesPerSecond).toBeCloseTo(4e5, 3);
    expect(trend.etaSeconds).toBeNull();
  });

  it('falling gives an ETA from the least-squares rate', () => {
    const trend = lagTrend([known(0, 9e6), known(10, 6e6), known(20, 3e6)]);
    expect(trend.direction).toBe('falling');
    expect(trend.etaSeconds).toBeCloseTo(10, 5);
  });

  it('steady below the threshold; caught up has ETA 0', () => {
    const trend = lagTrend([known(0, 100), known(10, 0), known(20, 0)]);
    expect(trend.direction).toBe('steady');
    expect(trend.etaSeconds).toBe(0);
  });

  it('only counts the trailing run of known samples on the latest slot', () => {
    const trend = lagTrend([known(0, 1), known(10, 9e9), unknown(20), known(30, 9e6, 'new_slot'), known(40, 6e6, 'new_slot')]);
    expect(trend).toMatchObject({ direction: 'unknown', reason: '2 known sample(s), 3 needed for a trend' });
    const enough = lagTrend([known(0, 9e9, 'old'), known(30, 9e6), known(40, 6e6), known(50, 3e6)]);
    expect(enough.direction).toBe('falling');
    expect(enough.etaSeconds).toBeCloseTo(10, 5);
  });
});
