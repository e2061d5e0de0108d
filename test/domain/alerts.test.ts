import { describe, expect, it } from 'vitest';
import { DO_MIGRATION_LIMIT_MS, evaluateAlerts, type AlertNotice, type AlertPolicy, type AlertState } from '../../src/domain/alerts.js';
import type { DoView, Observation } from '../../src/domain/report.js';

const MB = 1024 * 1024;
const policy: AlertPolicy = { lagBytes: 100 * MB, consecutiveSamples: 3, twoWeekLimitWarningHours: 48 };
const t0 = Date.parse('2026-03-01T10:00:00Z');
const syncing: DoView = { known: true, status: 'syncing', id: 'm1', createdAt: new Date(t0) };
const lag = (minute: number, bytes: number, slotActive = true): Observation => ({
  at: new Date(t0 + minute * 60_000),
  known: true,
  bytes,
  seconds: null,
  slot: 'do_slot',
  slotActive,
  walPosition: null,
});
const unknown = (minute: number): Observation => ({ at: new Date(t0 + minute * 60_000), known: false, reason: 'source down', walPosition: null });

/** Feeds observations one by one and collects every notice. */
function run(observations: Observation[], doView: DoView | ((o: Observation) => DoView) = syncing) {
  let states: AlertState[] = [];
  const notices: (AlertNotice & { minute: number })[] = [];
  for (const o of observations) {
    const r = evaluateAlerts(states, o, typeof doView === 'function' ? doView(o) : doView, policy);
    states = r.states;
    notices.push(...r.notices.map((n) => ({ ...n, minute: (o.at.getTime() - t0) / 60_000 })));
  }
  return { states, notices };
}

describe('alert episodes', () => {
  it('lag above the threshold fires after N consecutive samples, once, and clears once', () => {
    const sizes = [10, 150, 150, 20, 150, 150, 150, 300, 400, 200, 50, 40, 200];
    const { notices } = run(sizes.map((mb, i) => lag(i, mb * MB)));
    const lagNotices = notices.filter((n) => n.kind === 'lag_high');
    expect(lagNotices.map((n) => [n.action, n.minute])).toEqual([
      ['fire', 6],
      ['clear', 10],
    ]);
    expect(lagNotices[0]?.text).toMatch(/lag is 150 MiB, above 100 MiB \(3 samples in a row\)/i);
    expect(lagNotices[1]?.text).toMatch(/^Cleared after 4m 0s: lag is back to 50\.0 MiB/);
  });

  it('an unknown sample neither raises nor clears lag-high; unknown lag is its own episode', () => {
    const obs = [lag(0, 200 * MB), lag(1, 200 * MB), lag(2, 200 * MB), unknown(3), unknown(4), unknown(5), lag(6, 200 * MB), lag(7, 0)];
    const { notices } = run(obs);
    expect(notices.map((n) => `${n.kind}:${n.action}@${n.minute}`)).toEqual([
      'lag_high:fire@2',
      'lag_unknown:fire@5',
      'lag_unknown:clear@6',
      'lag_high:clear@7',
    ]);
  });

  it('an inactive slot needs the same streak; DigitalOcean error fires at once and clears when it recovers', () => {
    const obs = [lag(0, 0, false), lag(1, 0, false), lag(2, 0, false), lag(3, 0, true)];
    const doView = (o: Observation): DoView =>
      o.at.getTime() - t0 === 60_000 ? { known: true, status: 'error', id: 'm1', createdAt: new Date(t0) } : syncing;
    const { notices } = run(obs, doView);
    expect(notices.map((n) => `${n.kind}:${n.action}@${n.minute}`)).toEqual([
      'do_failed:fire@1',
      'slot_inactive:fire@2',
      'do_failed:clear@2',
      'slot_inactive:clear@3',
    ]);
  });

  it('warns once when the two-week limit is within the warning window', () => {
    const created = new Date(t0 - DO_MIGRATION_LIMIT_MS + 50 * 3600_000); // 50 h left at t0
    const view: DoView = { known: true, status: 'syncing', id: 'm1', createdAt: created };
    const { notices } = run([lag(0, 0), lag(60, 0), lag(120, 0), lag(180, 0)], view);
    const limit = notices.filter((n) => n.kind === 'two_week_limit');
    expect(limit).toHaveLength(1);
    expect(limit[0]).toMatchObject({ action: 'fire', minute: 120 });
    expect(limit[0]?.text).toMatch(/stops this online migration in 2d 0h/);
  });

  it('titles the two-week alert by what its text says: approaching before the limit, passed after it', () => {
    const approaching = run([lag(0, 0)], { known: true, status: 'running', id: 'm1', createdAt: new Date(t0 - DO_MIGRATION_LIMIT_MS + 3600_000) });
    expect(approaching.notices).toEqual([
      expect.objectContaining({ kind: 'two_week_limit', action: 'fire', title: 'two-week limit approaching', text: expect.stringMatching(/stops this online migration in 1h 0m/) }),
    ]);
    const passed = run([lag(0, 0)], { known: true, status: 'running', id: 'm1', createdAt: new Date(t0 - DO_MIGRATION_LIMIT_MS - 3600_000) });
    const notice = passed.notices.find((n) => n.kind === 'two_week_limit');
    expect(notice).toMatchObject({ action: 'fire', title: 'two-week limit passed' });
    expect(notice?.text).toMatch(/has passed/);
    expect(`${notice?.title}: ${notice?.text}`).not.toMatch(/approaching/);
  });

  it('ignores an observation older than the newest applied (a late replica cannot rewind)', () => {
    const first = run([lag(0, 200 * MB), lag(1, 200 * MB), lag(2, 200 * MB)]);
    const late = evaluateAlerts(first.states, lag(1, 0), syncing, policy);
    expect(late.notices).toEqual([]);
    expect(late.states).toEqual(first.states);
  });
});
