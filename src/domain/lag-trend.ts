/**
 * Direction and ETA of replication lag from recent samples (pure). Only the trailing run of known
 * samples on one slot counts: an unknown sample is never read as zero, and a newer unknown sample
 * makes the whole trend unknown.
 */
import type { LagSample } from './ports/replication.js';

type KnownSample = Extract<LagSample, { known: true }>;

export interface LagTrend {
  direction: 'rising' | 'falling' | 'steady' | 'unknown';
  /** Change of lag in bytes per second (least squares over the samples); null when unknown. */
  bytesPerSecond: number | null;
  /** Seconds until the lag reaches zero at the current rate: 0 when caught up, null unless falling. */
  etaSeconds: number | null;
  latest: LagSample | undefined;
  /** Why the direction is unknown. */
  reason?: string;
}

export interface LagTrendOptions {
  /** Known samples needed for a direction (default 3). */
  minSamples?: number;
  /** A slope smaller than this (bytes/s, either way) is steady (default 64 KiB/s). */
  steadyBytesPerSecond?: number;
}

export function lagTrend(samples: readonly LagSample[], options: LagTrendOptions = {}): LagTrend {
  const minSamples = options.minSamples ?? 3;
  const steady = options.steadyBytesPerSecond ?? 64 * 1024;
  const latest = samples.at(-1);
  if (!latest) return { direction: 'unknown', bytesPerSecond: null, etaSeconds: null, latest, reason: 'no samples yet' };
  if (!latest.known) return { direction: 'unknown', bytesPerSecond: null, etaSeconds: null, latest, reason: latest.reason };

  const run: KnownSample[] = [];
  for (let i = samples.length - 1; i >= 0; i -= 1) {
    const s = samples[i];
    if (!s?.known || s.slot !== latest.slot) break;
    run.unshift(s);
  }
  if (run.length < minSamples) {
    return {
      direction: 'unknown',
      bytesPerSecond: null,
      etaSeconds: latest.bytes === 0 ? 0 : null,
      latest,
      reason: `${run.length} known sample(s), ${minSamples} needed for a trend`,
    };
  }
  const slope = leastSquaresSlope(run.map((s) => [s.at.getTime() / 1000, s.bytes]));
  const direction = Math.abs(slope) < steady ? 'steady' : slope > 0 ? 'rising' : 'falling';
  let etaSeconds: number | null = null;
  if (latest.bytes === 0) etaSeconds = 0;
  else if (direction === 'falling') etaSeconds = latest.bytes / -slope;
  return { direction, bytesPerSecond: slope, etaSeconds, latest };
}

function leastSquaresSlope(points: Array<[number, number]>): number {
  const n = points.length;
  const t0 = points[0]?.[0] ?? 0;
  let sx = 0;
  let sy = 0;
  let sxx = 0;
  let sxy = 0;
  for (const [t, y] of points) {
    const x = t - t0;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const denominator = n * sxx - sx * sx;
  return denominator === 0 ? 0 : (n * sxy - sx * sy) / denominator;
}
