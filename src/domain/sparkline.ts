/**
 * A trend as a small picture: one block character per value, scaled between the smallest and the
 * largest value of the series. Unknown values (null) are drawn as a gap so they are never mistaken
 * for zero lag.
 */

const BARS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'] as const;
export const SPARKLINE_GAP = '·';

export interface SparklineOptions {
  /** At most this many characters: the newest values are kept. */
  width?: number;
  /** Scale from 0 rather than from the series' minimum (so a flat 10 MB does not look like 0). */
  fromZero?: boolean;
}

export function sparkline(values: readonly (number | null)[], options: SparklineOptions = {}): string {
  const width = options.width ?? 24;
  const shown = values.slice(Math.max(0, values.length - width));
  const known = shown.filter((v): v is number => v !== null && Number.isFinite(v));
  if (known.length === 0) return SPARKLINE_GAP.repeat(shown.length);
  const min = options.fromZero ? Math.min(0, ...known) : Math.min(...known);
  const max = Math.max(...known);
  const span = max - min;
  return shown
    .map((v) => {
      if (v === null || !Number.isFinite(v)) return SPARKLINE_GAP;
      // A flat series sits on the lowest bar unless it is flat at a non-zero level seen from zero.
      const level = span === 0 ? 0 : Math.round(((v - min) / span) * (BARS.length - 1));
      return BARS[Math.min(BARS.length - 1, Math.max(0, level))];
    })
    .join('');
}
