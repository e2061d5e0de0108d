/**
 * The report scheduler. Every replica runs one; a single timer calls `tick(now)` every few seconds
 * (tests call `tick` directly with a fake clock). A pass looks at each reporting session and works out
 * two due instants: the newest report tick of its schedule and the newest sample tick (a fixed
 * interval, for alerts between reports). Each instant is claimed in the store first, so across
 * replicas exactly one measures, alerts and posts for it. Sessions are processed with bounded
 * concurrency; the probe behind `observer` holds pooled connections. Store work is constant per
 * session: the pass loads the schedules and claims of the reported sessions only, and looks up nothing
 * else by scanning. Now and then (`housekeepingEveryMs`) a pass also prunes rows of ended sessions.
 *
 * A replica that dies mid-tick: its claim stays unfinished. The next tick is a newer instant and is
 * claimed as usual; the unfinished tick itself is taken over by another replica once its lease has run
 * out (at most `maxAttempts` in all) provided no newer tick is due by then. A takeover after a crash
 * between posting and completing posts that report twice: the price of not losing it.
 *
 * A switched session gets no lag report (nothing waits for replication any more); its sample ticks run
 * the split-brain watch and, when its cutover replicates back, look at the reverse slot and the rollback
 * window. A syncing session's ticks also compare the schemas of source and target. Those guards, and how
 * each announces once per change, are in session-guards.ts.
 */
import { evaluateAlerts } from '../domain/alerts.js';
import { buildReport, toLagSample, type Observation } from '../domain/report.js';
import { latestDueTick, parseReportSchedule, type ReportSchedule } from '../domain/report-schedule.js';
import type { Session, SessionState } from '../domain/session.js';
import { asCodedError, CodedError, ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import {
  systemClock,
  type Clock,
  type Housekeeping,
  type LagSampleHistory,
  type ReportedSessions,
  type ReportPoster,
  type ReportProfile,
  type ReportState,
  type ReportTicks,
  type ReverseReplications,
  type SchemaDriftChecks,
  type SessionObserver,
  type SplitBrainWatches,
  type StoredSchedule,
  type TickClaim,
  type TickRow,
} from './ports.js';
import { Semaphore } from './semaphore.js';
import { SessionGuards, type AlertTally } from './session-guards.js';

/** Sessions in these states are reported on: replication is what they wait for. */
export const REPORTED_STATES: readonly SessionState[] = ['syncing', 'frozen'];

/** How long the shared lag-sample history keeps a session's samples. */
const SAMPLE_RETENTION_MS = 24 * 3600 * 1000;

export interface ReportSchedulerOptions {
  /** How often alerts sample the lag between reports (seconds, epoch-aligned). Default 60. */
  sampleEverySeconds?: number;
  /** Sessions measured at once. Default 4. */
  maxConcurrentSessions?: number;
  /** How long a claim is the claimer's before another replica may take it over. Default 2 minutes. */
  leaseMs?: number;
  /** Attempts per tick, the first claim included. Default 3. */
  maxAttempts?: number;
  /** The timer's period once started. Default 5 s. */
  pollMs?: number;
  /** At most how often a pass runs the store's housekeeping. Default 5 minutes. */
  housekeepingEveryMs?: number;
}

export interface ReportSchedulerDeps {
  sessions: ReportedSessions;
  ticks: ReportTicks;
  state: ReportState;
  /** The profiles by name (the loaded config). */
  profiles: ReadonlyMap<string, ReportProfile>;
  observer: SessionObserver;
  poster: ReportPoster;
  /** The shared lag-sample history (migration 002): every sample tick is recorded there too. */
  samples?: LagSampleHistory;
  /** Prunes rows of ended sessions and old idempotency keys. */
  housekeeping?: Housekeeping;
  /**
   * The split-brain watch: each sample tick of a switched session looks for writes on its source, and
   * the housekeeping removes the watches of sessions no longer switched. Without it switched sessions are not looked at.
   */
  splitBrain?: SplitBrainWatches;
  /** The schema guard of syncing sessions; without it their schemas are not compared between freezes. */
  schemaDrift?: SchemaDriftChecks;
  /**
   * Replicating back after the switch: each sample tick of a switched session looks at it and ends it with
   * the rollback window, and the housekeeping sweeps what sessions no longer active left. Without it nobody does.
   */
  reverse?: ReverseReplications;
  log: Logger;
  /** Names this replica in claims (host name + pid is a good choice). */
  replicaId: string;
  clock?: Clock;
  options?: ReportSchedulerOptions;
}

/** What one pass did (for tests and debug logs). */
export interface TickSummary extends AlertTally {
  at: Date;
  sessions: number;
  reports: string[];
  samples: string[];
  failures: { sessionId: string; error: string }[];
}

export class ReportScheduler {
  readonly #deps: ReportSchedulerDeps;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #sampleSchedule: ReportSchedule;
  readonly #semaphore: Semaphore;
  readonly #leaseMs: number;
  readonly #maxAttempts: number;
  readonly #pollMs: number;
  readonly #housekeepingEveryMs: number;
  #housekeptAt: number | undefined;
  /** The split-brain watch, replicating back and the schema guard, alerting through the channel. */
  readonly #guards: SessionGuards;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<unknown> | undefined;

  constructor(deps: ReportSchedulerDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#log = deps.log.child({ name: 'reports', replica: deps.replicaId });
    const o = deps.options ?? {};
    const sampleEvery = o.sampleEverySeconds ?? 60;
    this.#sampleSchedule = { kind: 'interval', seconds: sampleEvery, text: `every ${sampleEvery}s` };
    this.#semaphore = new Semaphore(o.maxConcurrentSessions ?? 4);
    this.#leaseMs = o.leaseMs ?? 120_000;
    this.#maxAttempts = o.maxAttempts ?? 3;
    this.#pollMs = o.pollMs ?? 5_000;
    this.#housekeepingEveryMs = o.housekeepingEveryMs ?? 300_000;
    this.#guards = new SessionGuards(deps);
  }

  /** Starts the timer (idempotent). Schedules live in the store, so a restarted replica just starts. */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      // A pass still running (a slow probe) is not overlapped; the next period tries again.
      if (this.#inFlight) return;
      this.#inFlight = this.tick(this.#clock.now())
        .catch((error: unknown) => this.#log.error({ err: asCodedError(error) }, 'report pass failed'))
        .finally(() => {
          this.#inFlight = undefined;
        });
    }, this.#pollMs);
  }

  /** Stops the timer and waits for a pass in progress (idempotent). */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
  }

  /**
   * Sets a session's schedule (`/migrate report every 5m | <cron> | off`). Takes effect at the next pass
   * on every replica: the first report comes at the schedule's first tick after now.
   */
  async setSchedule(sessionId: string, schedule: ReportSchedule | string, actor: string): Promise<StoredSchedule> {
    const parsed = typeof schedule === 'string' ? parseReportSchedule(schedule) : { ok: true as const, schedule };
    if (!parsed.ok) throw new CodedError(ErrorCode.CommandInvalid, parsed.message);
    await this.#deps.sessions.require(sessionId);
    const stored = await this.#deps.state.setSchedule(sessionId, parsed.schedule, actor, this.#clock.now());
    this.#log.info({ session: sessionId, schedule: parsed.schedule.text, actor }, 'report schedule set');
    return stored;
  }

  /** The schedule in force for a session: its own, else its profile's default. */
  async scheduleOf(session: Session): Promise<ReportSchedule | undefined> {
    const own = await this.#deps.state.schedule(session.id);
    return own?.schedule ?? this.#profileSchedule(session);
  }

  /** One pass at `now`: claims what is due and does the work for the claims it won. */
  async tick(now: Date = this.#clock.now()): Promise<TickSummary> {
    const summary: TickSummary = { at: now, sessions: 0, reports: [], samples: [], alerts: [], failures: [] };
    const watched = (s: Session) => s.state === 'switched' && (this.#deps.splitBrain !== undefined || this.#deps.reverse !== undefined);
    const sessions = (await this.#deps.sessions.listActive()).filter((s) => REPORTED_STATES.includes(s.state) || watched(s));
    const ids = sessions.map((s) => s.id);
    const [schedules, reportTicks, sampleTicks] = await Promise.all([
      this.#deps.state.schedules(ids),
      this.#deps.ticks.lastTicks('report', ids),
      this.#deps.ticks.lastTicks('sample', ids),
    ]);
    summary.sessions = sessions.length;
    await Promise.all(
      sessions.map((session) =>
        this.#semaphore.run(() =>
          this.#runSession(session, now, schedules.get(session.id), reportTicks.get(session.id), sampleTicks.get(session.id), summary),
        ),
      ),
    );
    await this.#housekeep(now);
    return summary;
  }

  /**
   * The store's housekeeping and the sweeps of split-brain watches and reverse replications, at most every
   * `housekeepingEveryMs` (the first pass after a start included); a failure only waits for the next period.
   */
  async #housekeep(now: Date): Promise<void> {
    const { housekeeping, splitBrain, reverse } = this.#deps;
    if (!housekeeping && !splitBrain && !reverse) return;
    if (this.#housekeptAt !== undefined && now.getTime() - this.#housekeptAt < this.#housekeepingEveryMs) return;
    this.#housekeptAt = now.getTime();
    // Each part on its own: a failure is logged and only waits for the next period.
    const part = async (what: string, work: () => Promise<unknown>) => {
      try {
        await work();
      } catch (error) {
        this.#log.error({ err: asCodedError(error) }, `${what} failed`);
      }
    };
    if (housekeeping) await part('store housekeeping', async () => this.#log.debug({ pruned: await housekeeping.prune(now) }, 'store housekeeping'));
    if (splitBrain) {
      await part('split-brain watch sweep', async () => {
        const removed = await splitBrain.sweep();
        if (removed > 0) this.#log.info({ removed }, 'split-brain watches of sessions no longer switched removed');
      });
    }
    if (reverse) {
      await part('reverse replication sweep', async () => {
        const removed = await reverse.sweep();
        if (removed > 0) this.#log.info({ removed }, 'reverse replication of sessions no longer active removed');
      });
    }
  }

  async #runSession(
    session: Session,
    now: Date,
    own: StoredSchedule | undefined,
    lastReport: TickRow | undefined,
    lastSample: TickRow | undefined,
    summary: TickSummary,
  ): Promise<void> {
    const log = this.#log.child({ session: session.id });
    const profile = this.#deps.profiles.get(session.profile);
    if (!profile) {
      log.warn({ profile: session.profile }, 'session names a profile that is not configured; no reports');
      return;
    }
    try {
      if (session.state === 'switched') {
        const claim = await this.#claimSample(session, now, lastSample);
        if (!claim) return;
        await Promise.all([this.#guards.watchSource(session, profile, summary, log), this.#guards.watchReverse(session, profile, now, summary, log)]);
        await this.#deps.ticks.complete(claim, this.#deps.replicaId, this.#clock.now());
        summary.samples.push(session.id);
        return;
      }
      const schedule = own?.schedule ?? this.#profileSchedule(session);
      const reportFrom = latest(session.createdAt, own?.setAt, lastReport?.lastTick);
      const reportDue = schedule ? latestDueTick(schedule, reportFrom, now) : null;
      let reportClaim: TickClaim | undefined;
      if (reportDue) {
        reportClaim = await this.#deps.ticks.claim(session.id, 'report', reportDue, this.#deps.replicaId, now, this.#leaseMs);
      } else if (lastReport && canRetake(lastReport, now, this.#maxAttempts) && schedule?.kind !== 'off') {
        reportClaim = await this.#deps.ticks.retake(session.id, 'report', this.#deps.replicaId, now, this.#leaseMs, this.#maxAttempts);
        if (reportClaim) log.warn({ tick: reportClaim.tick, attempt: reportClaim.attempts }, 'taking over an unfinished report tick');
      }
      const sampleClaim = await this.#claimSample(session, now, lastSample);
      if (!reportClaim && !sampleClaim) return;

      const [{ observation, doView }] = await Promise.all([
        this.#deps.observer.observe(session, profile),
        this.#guards.checkSchema(session, profile, summary, log),
      ]);
      if (sampleClaim) {
        // Samples are the alerts' evidence and the reports' trend: exactly one per sample tick.
        await this.#deps.state.appendObservation(session.id, observation);
        if (this.#deps.samples) {
          await this.#deps.samples.record(session.id, toLagSample(observation));
          await this.#deps.samples.pruneBefore(session.id, new Date(observation.at.getTime() - SAMPLE_RETENTION_MS));
        }
        await this.#alert(session, profile, observation, doView, summary, log);
        await this.#deps.ticks.complete(sampleClaim, this.#deps.replicaId, this.#clock.now());
        summary.samples.push(session.id);
      }
      if (reportClaim) {
        const { observations, lastReportAt } = await this.#deps.state.window(session.id);
        const window = sinceLastReport(observations, lastReportAt);
        // Without the sample claim the fresh observation is the report's own: shown, not stored.
        if (!sampleClaim) window.push(observation);
        window.sort((a, b) => a.at.getTime() - b.at.getTime());
        const report = buildReport({
          session,
          window,
          doView,
          thresholds: { maxLagBytesToFreeze: profile.gates.maxLagBytesToFreeze },
          now: observation.at,
        });
        await this.#deps.poster.postInThread(session, report);
        await this.#deps.state.markReported(session.id, observation.at);
        // The report's own measurement: the status message shows it without probing again.
        const figures = { lag: toLagSample(observation), lagTrend: report.trend.direction, doView };
        await this.#deps.poster.refreshStatus(session, report, figures).catch((error: unknown) =>
          log.warn({ err: asCodedError(error) }, 'status message refresh failed'),
        );
        await this.#deps.ticks.complete(reportClaim, this.#deps.replicaId, this.#clock.now());
        summary.reports.push(session.id);
        log.info({ tick: reportClaim.tick, lag: report.lag, trend: report.trend.direction }, 'lag report posted');
      }
    } catch (error) {
      const coded = asCodedError(error);
      summary.failures.push({ sessionId: session.id, error: coded.message });
      // The claim stays unfinished: after its lease another pass (any replica) may try again.
      log.error({ err: coded }, 'report tick failed');
    }
  }

  /** Claims the newest sample tick due, unless another replica has it. */
  async #claimSample(session: Session, now: Date, lastSample: TickRow | undefined): Promise<TickClaim | undefined> {
    const due = latestDueTick(this.#sampleSchedule, latest(session.createdAt, lastSample?.lastTick), now);
    return due ? this.#deps.ticks.claim(session.id, 'sample', due, this.#deps.replicaId, now, this.#leaseMs) : undefined;
  }

  async #alert(
    session: Session,
    profile: ReportProfile,
    observation: Observation,
    doView: Parameters<typeof evaluateAlerts>[2],
    summary: TickSummary,
    log: Logger,
  ): Promise<void> {
    const { notices } = await this.#deps.state.updateAlerts(session.id, (previous) =>
      evaluateAlerts(previous, observation, doView, profile.reports.alerts),
    );
    await this.#guards.notify(session, profile, notices, summary, log);
  }

  #profileSchedule(session: Session): ReportSchedule | undefined {
    const text = this.#deps.profiles.get(session.profile)?.reports.schedule;
    if (text === undefined) return undefined;
    const parsed = parseReportSchedule(text);
    return parsed.ok ? parsed.schedule : undefined;
  }
}

function latest(...dates: (Date | undefined | null)[]): Date {
  let best = 0;
  for (const d of dates) if (d && d.getTime() > best) best = d.getTime();
  return new Date(best);
}

function canRetake(row: TickRow, now: Date, maxAttempts: number): boolean {
  return row.doneAt === null && row.leaseUntil.getTime() < now.getTime() && row.attempts < maxAttempts;
}

/** The observations since the previous report, starting with the last one it showed (the trend's base). */
function sinceLastReport(observations: readonly Observation[], lastReportAt: Date | null): Observation[] {
  if (lastReportAt === null) return [...observations];
  const cut = lastReportAt.getTime();
  let start = observations.findIndex((o) => o.at.getTime() > cut);
  if (start === -1) start = observations.length - 1;
  return observations.slice(Math.max(0, start - 1));
}

