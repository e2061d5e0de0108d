import { describe, expect, it } from 'vitest';
import { buildReport, formatBytes, formatDuration, type DoView, type Observation } from '../../src/domain/report.js';

const MB = 1024 * 1024;
const t0 = Date.parse('2026-03-01T10:00:00Z');
const syncing: DoView = { known: true, status: 'syncing', id: 'm1', createdAt: new Date(t0) };
const session = { id: 's1', state: 'syncing' as const, profile: 'orders' };
/** One observation a minute; the source writes 1 MB/s of WAL. */
const obs = (minute: number, bytes: number | null, slotActive = true): Observation =>
  bytes === null
    ? { at: new Date(t0 + minute * 60_000), known: false, reason: 'source down', walPosition: minute * 60 * MB }
    : { at: new Date(t0 + minute * 60_000), known: true, bytes, seconds: null, slot: 'do_slot', slotActive, walPosition: minute * 60 * MB };

describe('lag report', () => {
  it('falling lag: trend, sparkline, write rate, an ETA at the catch-up rate, freeze gate open below the limit', () => {
    const report = buildReport({
      session,
      window: [obs(0, 400 * MB), obs(1, 300 * MB), obs(2, 200 * MB), obs(3, 100 * MB), obs(4, 10 * MB)],
      doView: syncing,
      thresholds: { maxLagBytesToFreeze: 16 * MB },
      now: new Date(t0 + 4 * 60_000),
    });
    expect(report.trend).toMatchObject({ direction: 'falling', deltaBytes: -390 * MB, sparkline: '█▆▅▃▁', samples: 5 });
    expect(report.writeRateBytesPerSecond).toBeCloseTo(MB, 0);
    // Least-squares slope of the window: 98 MB a minute.
    expect(report.catchUpBytesPerSecond).toBeCloseTo((98 * MB) / 60, 0);
    expect(report.etaSeconds).toBe(Math.ceil((10 * MB) / ((98 * MB) / 60)));
    expect(report.freezeGate).toEqual({ open: true, reasons: [] });
    expect(report.lines.join('\n')).toContain('*Trend:* `█▆▅▃▁` falling −390 MiB since the last report');
    expect(report.lines.join('\n')).toContain('*Freeze gate:* would be open');
  });

  it('several migrated databases: the largest lag, and each database on its own line', () => {
    const last: Observation = {
      ...obs(1, 3 * MB),
      databases: [
        { database: 'app', known: true, bytes: MB, seconds: 2 },
        { database: 'app2', known: true, bytes: 3 * MB, seconds: null },
      ],
    };
    const report = buildReport({ session, window: [obs(0, MB), last], doView: syncing, thresholds: { maxLagBytesToFreeze: 16 * MB }, now: new Date(t0 + 60_000) });
    expect(report.lag).toMatchObject({ known: true, bytes: 3 * MB });
    expect(report.lines).toContain('*Per database:* app 1.0 MiB ≈ 2s · app2 3.0 MiB');
  });

  it('rising lag: no ETA, the gate closed with the reason', () => {
    const report = buildReport({
      session,
      window: [obs(0, 10 * MB), obs(1, 40 * MB), obs(2, 90 * MB)],
      doView: syncing,
      thresholds: { maxLagBytesToFreeze: 16 * MB },
      now: new Date(t0 + 2 * 60_000),
    });
    expect(report.trend.direction).toBe('rising');
    expect(report.etaSeconds).toBeNull();
    expect(report.freezeGate.open).toBe(false);
    expect(report.freezeGate.reasons).toEqual(['lag 90.0 MiB is above 16.0 MiB']);
    expect(report.lines).toContain('*Catching up:* no, the lag is growing');
  });

  it('unknown lag is reported as unknown with its reason, drawn as a gap, and keeps the gate closed', () => {
    const report = buildReport({
      session: { ...session, state: 'frozen' },
      window: [obs(0, 5 * MB), obs(1, null)],
      doView: { known: false, reason: 'DigitalOcean answered 503' },
      thresholds: { maxLagBytesToFreeze: 16 * MB },
      now: new Date(t0 + 60_000),
    });
    expect(report.lag).toEqual({ known: false, reason: 'source down' });
    expect(report.trend).toMatchObject({ direction: 'unknown', deltaBytes: null, sparkline: '█·' });
    expect(report.freezeGate.reasons).toEqual([
      'the session is writes frozen',
      'the lag is unknown',
      'the DigitalOcean status is unknown',
    ]);
    expect(report.lines[0]).toBe('*DigitalOcean:* unknown (DigitalOcean answered 503) · *session:* writes frozen');
    expect(report.lines[1]).toBe('*Lag:* unknown: source down');
  });

  it('an inactive slot or a DigitalOcean status other than syncing closes the gate even at zero lag', () => {
    const report = buildReport({
      session,
      window: [obs(0, 0, false)],
      doView: { known: true, status: 'running', id: 'm1', createdAt: new Date(t0) },
      thresholds: { maxLagBytesToFreeze: 16 * MB },
      now: new Date(t0),
    });
    expect(report.freezeGate.reasons).toEqual(['slot "do_slot" is not active', 'DigitalOcean says running, not syncing']);
  });

  it('formats sizes and durations for people', () => {
    expect([formatBytes(512), formatBytes(1536), formatBytes(300 * MB), formatBytes(5 * 1024 * MB)]).toEqual([
      '512 B',
      '1.5 KiB',
      '300 MiB',
      '5.0 GiB',
    ]);
    expect([formatDuration(42), formatDuration(185), formatDuration(7300), formatDuration(200_000)]).toEqual([
      '42s',
      '3m 5s',
      '2h 1m',
      '2d 7h',
    ]);
  });
});
