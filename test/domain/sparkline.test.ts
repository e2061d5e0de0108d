import { describe, expect, it } from 'vitest';
import { SPARKLINE_GAP, sparkline } from '../../src/domain/sparkline.js';

describe('sparkline', () => {
  it('draws a rising series from the lowest to the highest bar', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7])).toBe('▁▂▃▄▅▆▇█');
  });

  it('draws unknown values as gaps, never as zero', () => {
    expect(sparkline([10, null, 20])).toBe(`▁${SPARKLINE_GAP}█`);
    expect(sparkline([null, null])).toBe(SPARKLINE_GAP.repeat(2));
  });

  it('keeps the newest values when the series is wider than the picture', () => {
    expect(sparkline([100, 0, 7], { width: 2 })).toBe('▁█');
  });

  it('scales from zero on request, so a flat non-zero lag does not look like none', () => {
    expect(sparkline([5, 5, 5])).toBe('▁▁▁');
    expect(sparkline([5, 5, 5], { fromZero: true })).toBe('███');
    expect(sparkline([0, 4, 8], { fromZero: true })).toBe('▁▅█');
  });

  it('is empty for no values', () => {
    expect(sparkline([])).toBe('');
  });
});
