/**
 * The composition root: opens the store, builds the adapters and the Slack app, and wires them
 * together. Nothing else in the code base constructs adapters; `main.ts` reads the environment.
 */
import { hostname } from 'node:os';
import type { Env } from './config/env.js';
import type { LoadedConfig } from './config/profiles.js';
import { CutoverEngine } from './app/cutover/engine.js';
import { ProfileAdapters } from './adapters/session-adapters.js';
import { DigitalOceanClient } from './adapters/digitalocean/digitalocean-client.js';
import type { SessionNotifier, SessionOperations } from './app/session-operations.js';
import { asCodedError } from './errors.js';
import type { Logger } from './log.js';
import { pool } from './adapters/source/connect.js';
import { ReportScheduler } from './reports/scheduler.js';
import { SlackReportPoster } from './adapters/slack/report-poster.js';
import { SourceObserver } from './adapters/source/session-observer.js';
import { createBoltApp, type BoltApp } from './adapters/slack/bolt-app.js';
import { SlackNotifier } from './adapters/slack/notifier.js';
import { registerListeners } from './adapters/slack/register.js';
import { StatusMessages } from './adapters/slack/status-message.js';
import { GroupResolver } from './adapters/slack/user-groups.js';
import { ApprovalStore, IdempotencyStore, ReportScheduleStore } from './adapters/store/approvals.js';
import { CutoverJournal } from './adapters/store/cutover-journal.js';
import { openStore, type Store } from './adapters/store/index.js';
import { LagSampleStore } from './adapters/store/lag-samples.js';
import { ReportStateStore } from './adapters/store/report-state.js';
import { ReportTickStore } from './adapters/store/report-ticks.js';

export interface RunningBot {
  port: number | undefined;
  store: Store;
  approvals: ApprovalStore;
  notifier: SessionNotifier;
  app: BoltApp;
  stop(): Promise<void>;
}

/** What the engine is built from: the store, the approvals (the switch approval query) and the notifier. */
export interface EngineContext {
  store: Store;
  approvals: ApprovalStore;
  notifier: SessionNotifier;
  now: () => Date;
  log: Logger;
}

export type OperationsFactory = (context: EngineContext) => SessionOperations;

export interface BotDeps {
  /** The cutover engine, or a factory given the notifier; default: the real engine on the profiles' machines. */
  operations?: SessionOperations | OperationsFactory;
  /** The lag report scheduler; tests with a fake clock or fake machines turn it off. Default on. */
  reports?: boolean;
  /** How often the engine looks for freezes whose holder died (ms). Default 5 s. */
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
  const app = createBoltApp({
    env,
    log,
    health: async () => {
      await store.db.query('SELECT 1');
      return { ok: true, detail: { store: store.db.engine, profiles: config.profiles.size } };
    },
    ...(deps.processBeforeResponse !== undefined ? { processBeforeResponse: deps.processBeforeResponse } : {}),
    ...(deps.botIdentity ? { botIdentity: deps.botIdentity } : {}),
  });
  const slackLog = log.child({ name: 'slack' });
  const approvals = new ApprovalStore(store.db);
  const schedules = new ReportScheduleStore(store.db);
  // The status message measures lag through the engine, which itself needs the notifier: tie the knot lazily.
  let operations: SessionOperations | undefined;
  const refuseLag = () => Promise.reject(new Error('the engine is not ready yet'));
  const status = new StatusMessages({
    client: app.client,
    store,
    approvals,
    schedules,
    config,
    log: slackLog,
    now,
    lag: (sessionId) => (operations ? operations.lag(sessionId) : refuseLag()),
  });
  const notifier = new SlackNotifier(status, store.audit, slackLog);
  // One DigitalOcean client for the engine and the reports (it connects on first use only).
  const doApi = new DigitalOceanClient({ token: env.DIGITALOCEAN_TOKEN, baseUrl: env.DIGITALOCEAN_API_URL, logger: log });
  let engine: CutoverEngine | undefined;
  let adapters: ProfileAdapters | undefined;
  if (typeof deps.operations === 'function') operations = deps.operations({ store, approvals, notifier, now, log });
  else if (deps.operations) operations = deps.operations;
  else {
    const journal = new CutoverJournal(store.db);
    const built = new ProfileAdapters({ config, env, journal, log, doApi });
    adapters = built;
    engine = new CutoverEngine({
      db: store.db,
      sessions: store.sessions,
      audit: store.audit,
      journal,
      notifier,
      log,
      adapters: (session) => built.adapters(session),
      // The executor that died never closed the gate requests of its click: close them so the buttons work again.
      afterRecovery: async (sessionId, decision) => {
        const open = await approvals.open(sessionId);
        const switched = decision.settle === 'switched';
        if (open.freeze?.status === 'approved') await approvals.close(open.freeze.id, switched ? 'executed' : 'failed', now());
        if (switched && open.switch?.status === 'approved') await approvals.close(open.switch.id, 'executed', now());
        await status.refresh(sessionId);
      },
      switchApprovalValid: async (sessionId, at) => (await approvals.validSwitchApproval(sessionId, at)) !== undefined,
      approvalsSummary: async (sessionId) => {
        const [freeze, change] = await Promise.all([approvals.latest(sessionId, 'freeze'), approvals.latest(sessionId, 'switch')]);
        const gate = (r: typeof freeze) =>
          r ? { requestedBy: r.requestedBy, ...(r.approvedBy ? { approvedBy: r.approvedBy } : {}), ...(r.approvedAt ? { at: r.approvedAt.toISOString() } : {}) } : undefined;
        const summary: Record<string, unknown> = {};
        if (freeze) summary.freeze = gate(freeze);
        if (change) summary.switch = gate(change);
        return summary;
      },
    });
    operations = engine;
  }
  registerListeners(app, {
    store,
    approvals,
    idempotency: new IdempotencyStore(store.db),
    schedules,
    config,
    operations,
    status,
    groups: new GroupResolver(app.client, slackLog, now),
    log,
    now,
  });
  const server = (await app.start(env.PORT)) as unknown as { address?: () => unknown } | undefined;
  const address = server?.address?.();
  const port = typeof address === 'object' && address !== null ? (address as { port: number }).port : env.PORT;
  log.info({ port, profiles: [...config.profiles.keys()], store: store.db.engine }, 'pgcutover is listening');

  // After a restart: finish or undo what the journal says was under way, then keep watching for
  // freezes whose holder (this process before, or another replica) died.
  if (engine) {
    const running = engine;
    await running.recover().then(
      (outcomes) => {
        const acted = outcomes.filter((o) => o.result !== 'nothing');
        if (acted.length > 0) log.warn({ outcomes: acted.map((o) => ({ session: o.sessionId, action: o.decision.action, result: o.result })) }, 'recovery at start-up');
      },
      (err: unknown) => log.error({ err: asCodedError(err) }, 'recovery at start-up failed'),
    );
    running.startWatchdog(deps.watchdogMs ?? 5000);
  }
  let observer: SourceObserver | undefined;
  let scheduler: ReportScheduler | undefined;
  if (deps.reports !== false) {
    observer = new SourceObserver({
      poolFor: (name) => {
        const profile = config.profiles.get(name);
        if (!profile) throw new Error(`profile "${name}" is not configured`);
        return pool(profile.source, { max: 2, applicationName: 'pgcutover-reports' });
      },
      profiles: config.profiles,
      digitalocean: doApi,
      log,
    });
    scheduler = new ReportScheduler({
      sessions: store.sessions,
      ticks: new ReportTickStore(store.db),
      state: new ReportStateStore(store.db),
      profiles: config.profiles,
      observer,
      poster: new SlackReportPoster({ client: app.client, log: slackLog, refreshStatus: (session) => status.refresh(session.id) }),
      samples: new LagSampleStore(store.db),
      log,
      replicaId: `${hostname()}:${process.pid}`,
    });
    scheduler.start();
  }
  return {
    port,
    store,
    approvals,
    notifier,
    app,
    async stop() {
      await app.stop();
      await scheduler?.stop();
      await observer?.close?.();
      // Releases the executor locks this replica holds without touching the machines: a freeze in
      // progress is picked up from the journal by the next start (or another replica's watchdog).
      await engine?.close();
      await adapters?.close();
      await store.db.close();
    },
  };
}
