/**
 * The composition root: opens the store, builds the adapters and the Slack app, and wires them
 * together. Nothing else in the code base constructs adapters; `main.ts` reads the environment.
 */
import { hostname } from 'node:os';
import { ProfileMachines } from './adapters/session-machines.js';
import { applicationUserGrants } from './adapters/digitalocean/app-user-grants.js';
import { DigitalOceanClient } from './adapters/digitalocean/digitalocean-client.js';
import { PrometheusMetrics } from './adapters/metrics/prometheus.js';
import { createBoltApp, createReportsClient, slackIdentity, type BoltApp } from './adapters/slack/bolt-app.js';
import { registerListeners } from './adapters/slack/register.js';
import { SlackReportPoster } from './adapters/slack/report-poster.js';
import { StatusMessages } from './adapters/slack/status-message.js';
import { ThreadPublisher } from './adapters/slack/thread-publisher.js';
import { GroupResolver } from './adapters/slack/user-groups.js';
import { PgReverseReplications } from './adapters/replication/reverse-replications.js';
import { CatalogSchemaDriftChecks } from './adapters/replication/schema-drift-checks.js';
import { SourceSplitBrainWatches } from './adapters/replication/split-brain-watches.js';
import { SourceObserver } from './adapters/source/session-observer.js';
import { SourceRegistry } from './adapters/source/source-registry.js';
import { ApprovalStore, IdempotencyStore, ReportScheduleStore } from './adapters/store/approvals.js';
import { CutoverJournal } from './adapters/store/cutover-journal.js';
import { StoreHousekeeping } from './adapters/store/housekeeping.js';
import { openStore, type Store } from './adapters/store/index.js';
import { LagSampleStore } from './adapters/store/lag-samples.js';
import { ReportStateStore } from './adapters/store/report-state.js';
import { ReportTickStore } from './adapters/store/report-ticks.js';
import { ClusterSetup } from './app/cluster-setup.js';
import { CutoverEngine } from './app/cutover/engine.js';
import { DeferredListener, FactRecorder } from './app/facts.js';
import { People } from './app/people.js';
import { SessionActions } from './app/session-actions.js';
import type { SessionOperations } from './app/session-operations.js';
import { StartSession } from './app/start-session.js';
import type { Env } from './config/env.js';
import type { LoadedConfig } from './config/profiles.js';
import type { Logger } from './log.js';
import { ReportScheduler } from './reports/scheduler.js';
import { SessionOverview } from './reports/session-overview.js';

export interface RunningBot {
  port: number | undefined;
  store: Store;
  approvals: ApprovalStore;
  facts: FactRecorder;
  /** Resolves once the thread lines and redraws of the session's facts so far are in Slack. */
  settled(sessionId: string): Promise<void>;
  app: BoltApp;
  stop(): Promise<void>;
}

/** What injected operations (tests' stand-in for the machines) are built from. */
export interface EngineContext {
  store: Store;
  approvals: ApprovalStore;
  facts: FactRecorder;
  now: () => Date;
  log: Logger;
}

export type OperationsFactory = (context: EngineContext) => SessionOperations;

export interface BotDeps {
  /** The cutover engine, or a factory given the fact recorder; default: the real engine on the profiles' machines. */
  operations?: SessionOperations | OperationsFactory;
  /** The lag report scheduler; tests with a fake clock or fake machines turn it off. Default on. */
  reports?: boolean;
  /** How often the engine looks for freezes whose holder died (ms). Default 1 s (the engine's). */
  watchdogMs?: number;
  /** The clock for gates and expiry (tests use a fake one). */
  now?: () => Date;
  /** Tests: effects complete before the HTTP response. */
  processBeforeResponse?: boolean;
  /** Skips Bolt's auth.test at start-up. */
  botIdentity?: { botId: string; botUserId: string };
  /** An already opened and migrated store (tests: the in-memory embedded engine); closed by stop(). */
  store?: Store;
}

export async function startBot(env: Env, config: LoadedConfig, log: Logger, deps: BotDeps = {}): Promise<RunningBot> {
  const store: Store = deps.store ?? (await openStore(env, log));
  const now = deps.now ?? (() => new Date());
  const approvals = new ApprovalStore(store.db);
  const schedules = new ReportScheduleStore(store.db);
  const reportState = new ReportStateStore(store.db);
  // One pool and one lag probe per source, shared by the status message, the reports and the engine.
  const sources = new SourceRegistry({ profiles: config.profiles });
  // Facts recorded before Slack is reached (by recovery) reach the channel once the publisher exists.
  const events = new DeferredListener();
  const facts = new FactRecorder(store.audit, events, log);
  // GET /metrics: lag from the samples the reports store, facts as they are recorded, API failures.
  const samples = new LagSampleStore(store.db);
  const overview = new SessionOverview(store.sessions, samples);
  const metrics = new PrometheusMetrics(overview);
  let operations: SessionOperations | undefined;
  // The engine's DigitalOcean client (it connects on first use only); reports have their own below.
  const doApi = new DigitalOceanClient({ token: env.DIGITALOCEAN_TOKEN, baseUrl: env.DIGITALOCEAN_API_URL, logger: log, metrics });
  let engine: CutoverEngine | undefined;
  let machines: ProfileMachines | undefined;
  if (typeof deps.operations === 'function') operations = deps.operations({ store, approvals, facts, now, log });
  else if (deps.operations) operations = deps.operations;
  else {
    const journal = new CutoverJournal(store.db);
    const built = new ProfileMachines({ config, env, journal, log, doApi, sources });
    machines = built;
    engine = new CutoverEngine({
      sessions: store.sessions,
      journal,
      approvals,
      lock: { withTryLock: (key, work) => store.db.withTryAdvisoryLock(key, work) },
      facts,
      log,
      machines: (session) => built.machines(session),
      lag: (session) => sources.lag(session),
    });
    operations = engine;
  }

  // Writes first: after a restart, finish or undo what the journal says was under way before the
  // slower start-up (Slack, the HTTP server), then keep watching for freezes whose holder (this
  // process before, or another replica) died.
  if (engine) {
    const running = engine;
    await running.recover().then(
      (outcomes) => {
        if (outcomes.length > 0) log.warn({ outcomes: outcomes.map((o) => ({ session: o.sessionId, action: o.decision.action, result: o.result })) }, 'recovery at start-up');
      },
      (err: unknown) => log.error({ err }, 'recovery at start-up failed'),
    );
    running.startWatchdog(deps.watchdogMs);
  }
  // An unreachable Slack is one clear start-up error (once writes are safe).
  let botIdentity: { botId: string; botUserId: string };
  try {
    botIdentity = deps.botIdentity ?? (await slackIdentity(env, log));
  } catch (error) {
    await engine?.close();
    await machines?.close();
    await sources.close();
    await store.db.close();
    throw error;
  }
  const app = createBoltApp({
    env,
    log,
    health: async () => {
      await store.db.query('SELECT 1');
      return { ok: true, detail: { store: store.db.engine, profiles: config.profiles.size } };
    },
    ...(deps.processBeforeResponse !== undefined ? { processBeforeResponse: deps.processBeforeResponse } : {}),
    botIdentity,
    metrics,
  });
  const slackLog = log.child({ name: 'slack' });
  const refuseLag = () => Promise.reject(new Error('the engine is not ready yet'));
  // Lag reports get their own Web API client: a rate-limited report never holds up a button's call.
  const reportsClient = createReportsClient(env, log, metrics);
  const status = new StatusMessages({
    client: app.client,
    reportsClient,
    store,
    approvals,
    schedules,
    config,
    log: slackLog,
    now,
    lag: deps.operations ? (session) => (operations ? operations.lag(session.id) : refuseLag()) : (session) => sources.lag(session),
    rollbackWindow: (sessionId) => reportState.rollbackWindow(sessionId),
  });
  const publisher = new ThreadPublisher({ client: app.client, refreshStatus: (sessionId) => status.refresh(sessionId), log: slackLog });
  // With the real engine: a switch starts the session's split-brain watch on its source, its end removes it.
  const watches = engine ? new SourceSplitBrainWatches({ sources, profiles: [...config.profiles.keys()], sessions: store.sessions, log }) : undefined;
  events.attach({
    published: (event) => {
      metrics.published(event);
      publisher.published(event);
      watches?.published(event);
    },
  });
  const idempotency = new IdempotencyStore(store.db);
  const people = new People({ config, sessions: store.sessions, approvals, groups: new GroupResolver(app.client, slackLog, now), facts, status, now });
  registerListeners(app, {
    start: new StartSession({ config, people, sessions: store.sessions, audit: store.audit, schedules, operations, facts, status, now }),
    actions: new SessionActions({ people, sessions: store.sessions, idempotency, operations, facts, status, now }),
    setup: new ClusterSetup({ config, people, audit: store.audit, api: doApi, grant: applicationUserGrants(doApi) }),
    people,
    facts,
    operations,
    sessions: store.sessions,
    audit: store.audit,
    idempotency,
    status,
    publisher,
    overview,
    config,
    log,
    now,
  });
  const server = (await app.start(env.HOST ? { port: env.PORT, host: env.HOST } : env.PORT)) as unknown as { address?: () => unknown } | undefined;
  const address = server?.address?.();
  const port = typeof address === 'object' && address !== null ? (address as { port: number }).port : env.PORT;
  log.info({ port, profiles: [...config.profiles.keys()], store: store.db.engine }, 'pgcutover is listening');
  let scheduler: ReportScheduler | undefined;
  let schemaDrift: CatalogSchemaDriftChecks | undefined;
  let reverse: PgReverseReplications | undefined;
  if (deps.reports !== false) {
    // Reports ask DigitalOcean with a short budget of their own: a 429's retry-after never holds a tick.
    const reportsDo = new DigitalOceanClient({ token: env.DIGITALOCEAN_TOKEN, baseUrl: env.DIGITALOCEAN_API_URL, logger: log, budgetMs: 3_000, timeoutMs: 3_000, maxAttempts: 2, metrics });
    const observer = new SourceObserver({ sources, profiles: config.profiles, digitalocean: reportsDo, log });
    // With the real engine: syncing sessions' schemas are compared on their ticks, the target reached as the machines reach it.
    const targets = machines;
    schemaDrift = targets ? new CatalogSchemaDriftChecks({ sources, target: (profile) => targets.targetConnection(profile) }) : undefined;
    // With the real engine: switched sessions' replication back is watched and ends with the rollback window; a crash's leftovers are swept.
    reverse = targets
      ? new PgReverseReplications({
          sources,
          target: (profile) => targets.targetConnection(profile),
          profiles: config.profiles,
          journal: new CutoverJournal(store.db),
          sessions: store.sessions,
          log,
        })
      : undefined;
    scheduler = new ReportScheduler({
      sessions: store.sessions,
      ticks: new ReportTickStore(store.db),
      state: reportState,
      profiles: config.profiles,
      observer,
      poster: new SlackReportPoster({
        client: reportsClient,
        log: slackLog,
        refreshStatus: (session, _report, figures) => status.refresh(session.id, figures),
      }),
      housekeeping: new StoreHousekeeping(store.db),
      ...(watches ? { splitBrain: watches } : {}),
      ...(schemaDrift ? { schemaDrift } : {}),
      ...(reverse ? { reverse } : {}),
      samples,
      log,
      replicaId: `${hostname()}:${process.pid}`,
    });
    scheduler.start();
  }
  return {
    port,
    store,
    approvals,
    facts,
    settled: (sessionId) => publisher.settled(sessionId),
    app,
    async stop() {
      await app.stop();
      await scheduler?.stop();
      await schemaDrift?.close();
      await reverse?.close();
      // Releases the executor locks this replica holds without touching the machines: a freeze in
      // progress is picked up from the journal by the next start (or another replica's watchdog).
      await engine?.close();
      await machines?.close();
      await sources.close();
      await store.db.close();
    },
  };
}
