/**
 * The report path as production wires it, minus Slack and the source: the scheduler on a counting
 * store, the Slack report poster and the real StatusMessages on stub Slack clients, and an in-memory
 * observer (lag from a formula, DigitalOcean always syncing). For measuring store work per tick.
 */
import type { Session } from '../../src/domain/session.js';
import type { DoView, Observation } from '../../src/domain/report.js';
import { parseProfiles } from '../../src/config/profiles.js';
import { createLogger } from '../../src/log.js';
import type { SessionObserver } from '../../src/reports/ports.js';
import { ReportScheduler } from '../../src/reports/scheduler.js';
import { SlackReportPoster } from '../../src/adapters/slack/report-poster.js';
import { StatusMessages } from '../../src/adapters/slack/status-message.js';
import { ApprovalStore, ReportScheduleStore } from '../../src/adapters/store/approvals.js';
import { AuditLog } from '../../src/adapters/store/audit-log.js';
import type { Database } from '../../src/adapters/store/database.js';
import { LagSampleStore } from '../../src/adapters/store/lag-samples.js';
import { ReportStateStore } from '../../src/adapters/store/report-state.js';
import { ReportTickStore } from '../../src/adapters/store/report-ticks.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import { countingDatabase, type CountingDatabase } from './counting-database.js';

const PROFILES = `
profiles:
  orders:
    channels: [C0RIG0000]
    strategy: connection-parameters
    source: { host: 127.0.0.1, database: orders, user: migrator, password: "\${RIG_PW}" }
    digitalocean: { clusterUuid: 9cc10173-e9ea-4176-9dbc-a4cee4c4ff30, database: orders }
    proxy: { kind: none }
    freeze: { method: read-only-database }
    gates: { operators: [U0OPS], approvers: [U0APP] }
    reports: { schedule: every 5m }
`;

/** Lag in bytes from the minute of the clock: a slow saw-tooth, never unknown. */
class FormulaObserver implements SessionObserver {
  calls = 0;
  readonly #clock: { now(): Date };
  constructor(clock: { now(): Date }) {
    this.#clock = clock;
  }
  async observe(session: Session): Promise<{ observation: Observation; doView: DoView }> {
    this.calls++;
    const at = this.#clock.now();
    const minute = Math.floor(at.getTime() / 60_000);
    const observation: Observation = {
      at,
      known: true,
      bytes: ((minute * 7919 + session.id.charCodeAt(0)) % 64) * 1024 * 1024,
      seconds: null,
      slot: 'rig_slot',
      slotActive: true,
      walPosition: minute * 1024 * 1024,
    };
    return { observation, doView: { known: true, status: 'syncing', id: 'do-mig', createdAt: new Date(at.getTime() - 3_600_000) } };
  }
}

export interface ReportStoreRig {
  db: CountingDatabase;
  scheduler: ReportScheduler;
  observer: FormulaObserver;
  /** Lag measurements the status message made itself (the report path hands it the report's). */
  statusLagCalls(): number;
  /** chat.update calls of the status message. */
  statusUpdates(): number;
  /** `n` syncing sessions with a status message and their own report schedule. */
  addSessions(n: number, schedule: string): Promise<Session[]>;
  /** Ends every session `addSessions` made (their rows stay until housekeeping). */
  endAll(): Promise<void>;
  /** One scheduler pass at `at` on the rig's clock. */
  tick(at: Date): ReturnType<ReportScheduler['tick']>;
}

export function reportStoreRig(inner: Database): ReportStoreRig {
  const clock = { t: new Date(), now: () => new Date(clock.t.getTime()) };
  const active = new Set<string>();
  const db = countingDatabase(inner, () => active);
  const log = createLogger('silent');
  const config = parseProfiles(PROFILES, 'rig-profiles.yml', { RIG_PW: 'not-a-real-password' });
  const sessions = new SessionStore(db);
  let lagCalls = 0;
  let updates = 0;
  let posted = 0;
  const client = {
    chat: {
      postMessage: async () => ({ ok: true, ts: `1700000000.${String(++posted).padStart(6, '0')}` }),
      update: async () => {
        updates++;
        return { ok: true };
      },
    },
  };
  const status = new StatusMessages({
    client,
    store: { db, sessions, audit: new AuditLog(db) },
    approvals: new ApprovalStore(db),
    schedules: new ReportScheduleStore(db),
    config,
    log,
    now: clock.now,
    lag: async (session) => {
      lagCalls++;
      return { known: false, at: clock.now(), reason: `no source for ${session.id}` };
    },
  });
  const observer = new FormulaObserver(clock);
  const scheduler = new ReportScheduler({
    sessions,
    ticks: new ReportTickStore(db),
    state: new ReportStateStore(db),
    profiles: config.profiles,
    observer,
    poster: new SlackReportPoster({
      client,
      log,
      minIntervalMs: 0,
      refreshStatus: (session, _report, figures) => status.refresh(session.id, figures),
    }),
    samples: new LagSampleStore(db),
    log,
    replicaId: 'rig',
    clock,
    options: { maxConcurrentSessions: 4 },
  });
  let channel = 0;
  const stamp = Date.now().toString(36).toUpperCase();
  return {
    db,
    scheduler,
    observer,
    statusLagCalls: () => lagCalls,
    statusUpdates: () => updates,
    async addSessions(n, schedule) {
      const made: Session[] = [];
      for (let i = 0; i < n; i++) {
        const created = await sessions.create({ channelId: `C${stamp}${channel++}`, profile: 'orders', strategy: 'connection-parameters', startedBy: 'U0OPS' });
        const syncing = await sessions.transition(created.id, created.version, 'migration_started', { doMigrationId: 'do-mig' });
        const posted = await sessions.setStatusMessage(syncing.id, `1700000000.${String(i).padStart(6, '0')}`);
        await scheduler.setSchedule(posted.id, schedule, 'U0OPS');
        active.add(posted.id);
        made.push(posted);
      }
      return made;
    },
    async endAll() {
      for (const id of active) {
        const session = await sessions.require(id);
        await sessions.transition(id, session.version, 'abort');
      }
      active.clear();
    },
    tick(at) {
      clock.t = at;
      return scheduler.tick(at);
    },
  };
}
