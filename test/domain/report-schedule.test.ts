import { describe, expect, it } from 'vitest';
import { parseReportSchedule } from '../../src/domain/report-schedule.js';

describe('report schedules', () => {
  it.each([
    ['every 5m', { kind: 'interval', seconds: 300, text: 'every 5m' }],
    ['Every  2 H', { kind: 'interval', seconds: 7200, text: 'every 2h' }],
    ['off', { kind: 'off', text: 'off' }],
    ['*/10 * * * *', { kind: 'cron', expression: '*/10 * * * *', text: '*/10 * * * *' }],
  ])('reads %j', (input, schedule) => {
    expect(parseReportSchedule(input)).toEqual({ ok: true, schedule });
  });

  it.each([
    ['every 30s', 'too frequent'],
    ['hourly', 'is not a schedule'],
    ['* * *', 'is not a schedule'],
  ])('refuses %j with a helpful message', (input, message) => {
    const parsed = parseReportSchedule(input);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toContain(message);
  });
});
