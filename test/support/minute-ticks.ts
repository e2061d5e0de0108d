/**
 * Report ticks a minute apart for scheduler tests on the embedded store under a fake clock: a scheduler
 * per replica (one `orders` profile, its posts recorded into one shared log), a tick at minute N from
 * T0, and the alerts posted so far.
 */
import { expect } from 'vitest';
import type { Database } from '../../src/adapters/store/database.js';
import { ReportStateStore } from '../../src/adapters/store/report-state.js';
import { ReportTickStore } from '../../src/adapters/store/report-ticks.js';
import { createLogger } from '../../src/log.js';
import type { ReportProfile } from '../../src/reports/ports.js';
import { ReportScheduler, type ReportSchedulerDeps, type TickSummary } from '../../src/reports/scheduler.js';
import { RecordingPoster, type PostedItem } from './report-recording-poster.js';

/** A whole hour a day ahead of the real clock (the sessions are created now). */
export const T0 = Math.ceil(Date.now() / 3_600_000) * 3_600_000 + 24 * 3_600_000;

export function minuteScheduler(
  db: Database,
  o: { replicaId: string; profile: ReportProfile; log: PostedItem[] } & Pick<ReportSchedulerDeps, 'sessions' | 'observer'> &
    Partial<Pick<ReportSchedulerDeps, 'state' | 'reverse' | 'schemaDrift'>>,
): ReportScheduler {
  const { replicaId, profile, log, observer, state, reverse, schemaDrift } = o;
  return new ReportScheduler({
    sessions: o.sessions,
    ticks: new ReportTickStore(db),
    state: state ?? new ReportStateStore(db),
    profiles: new Map([['orders', profile]]),
    observer,
    poster: new RecordingPoster(replicaId, log),
    ...(reverse ? { reverse } : {}),
    ...(schemaDrift ? { schemaDrift } : {}),
    log: createLogger('silent'),
    replicaId,
    clock: { now: () => new Date(T0) },
    options: { sampleEverySeconds: 60 },
  });
}

/** The tick at minute `minute` from T0, which must fail nowhere. */
export async function tickAt(scheduler: ReportScheduler, minute: number): Promise<TickSummary> {
  const summary = await scheduler.tick(new Date(T0 + minute * 60_000));
  expect(summary.failures).toEqual([]);
  return summary;
}

export const postedAlerts = (log: readonly PostedItem[]) => log.flatMap((p) => (p.kind === 'alert' ? [p.alert] : []));
