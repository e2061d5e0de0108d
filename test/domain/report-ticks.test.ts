import { describe, expect, it } from 'vitest';
import { latestDueTick, nextTick, parseReportSchedule, type ReportSchedule } from '../../src/domain/report-schedule.js';

const schedule = (text: string): ReportSchedule => {
  const parsed = parseReportSchedule(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.schedule;
};
const at = (iso: string) => new Date(iso);

describe('next tick', () => {
  it('aligns intervals to the epoch, so every replica computes the same instants', () => {
    const every5 = schedule('every 5m');
    expect(nextTick(every5, at('2026-03-01T10:02:13Z'))).toEqual(at('2026-03-01T10:05:00Z'));
    expect(nextTick(every5, at('2026-03-01T10:05:00Z'))).toEqual(at('2026-03-01T10:10:00Z'));
    expect(nextTick(schedule('every 1h'), at('2026-03-01T23:59:59Z'))).toEqual(at('2026-03-02T00:00:00Z'));
  });

  it('reads cron expressions in UTC, including day-of-week, last-day and seconds fields', () => {
    expect(nextTick(schedule('*/10 * * * *'), at('2026-03-01T10:02:13Z'))).toEqual(at('2026-03-01T10:10:00Z'));
    // 2026-03-06 is a Friday: the next weekday 09:00 is Monday the 9th.
    expect(nextTick(schedule('0 9 * * 1-5'), at('2026-03-06T09:00:00Z'))).toEqual(at('2026-03-09T09:00:00Z'));
    expect(nextTick(schedule('0 0 L * *'), at('2026-02-10T00:00:00Z'))).toEqual(at('2026-02-28T00:00:00Z'));
    expect(nextTick(schedule('30 */2 * * * *'), at('2026-03-01T10:00:30Z'))).toEqual(at('2026-03-01T10:02:30Z'));
    expect(nextTick(schedule('0 12 * * MON'), at('2026-03-01T00:00:00Z'))).toEqual(at('2026-03-02T12:00:00Z'));
  });

  it('has no tick when reports are off', () => {
    expect(nextTick(schedule('off'), at('2026-03-01T10:00:00Z'))).toBeNull();
    expect(latestDueTick(schedule('off'), at('2026-03-01T10:00:00Z'), at('2026-03-09T10:00:00Z'))).toBeNull();
  });

  it('collapses missed ticks into the newest one (one report after a pause, not a burst)', () => {
    const after = at('2026-03-01T10:00:00Z');
    expect(latestDueTick(schedule('every 5m'), after, at('2026-03-01T10:04:59Z'))).toBeNull();
    expect(latestDueTick(schedule('every 5m'), after, at('2026-03-01T10:05:00Z'))).toEqual(at('2026-03-01T10:05:00Z'));
    expect(latestDueTick(schedule('every 5m'), after, at('2026-03-01T11:07:00Z'))).toEqual(at('2026-03-01T11:05:00Z'));
    expect(latestDueTick(schedule('*/10 * * * *'), after, at('2026-03-01T13:33:00Z'))).toEqual(at('2026-03-01T13:30:00Z'));
    expect(latestDueTick(schedule('*/10 * * * *'), after, at('2026-03-01T10:09:59Z'))).toBeNull();
  });

  it('refuses cron expressions node-cron cannot read, and ones firing more than once a minute', () => {
    const bad = parseReportSchedule('99 * * * *');
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.message).toContain('minute');
    const fast = parseReportSchedule('*/30 * * * * *');
    expect(fast.ok).toBe(false);
    if (!fast.ok) expect(fast.message).toContain('too frequent');
  });
});
