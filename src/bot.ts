/**
 * The composition root: opens the store, builds the adapters and the Slack app, and wires them
 * together. Nothing else in the code base constructs adapters; `main.ts` reads the environment.
 */
import type { Env } from './config/env.js';
import type { LoadedConfig } from './config/profiles.js';
import type { SessionNotifier, SessionOperations } from './cutover/session-operations.js';
import { CodedError, ErrorCode } from './errors.js';
import type { Logger } from './log.js';
import { createBoltApp, type BoltApp } from './slack/bolt-app.js';
import { SlackNotifier } from './slack/notifier.js';
import { registerListeners } from './slack/register.js';
import { StatusMessages } from './slack/status-message.js';
import { GroupResolver } from './slack/user-groups.js';
import { ApprovalStore, IdempotencyStore, ReportScheduleStore } from './store/approvals.js';
import { openStore, type Store } from './store/index.js';

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
  /** The cutover engine, or a factory given the notifier (the real engine is wired here later). */
  operations?: SessionOperations | OperationsFactory;
  /** The clock for gates and expiry (tests use a fake one). */
  now?: () => Date;
  /** Tests: effects complete before the HTTP response. */
  processBeforeResponse?: boolean;
  /** Skips Bolt's auth.test at start-up. */
  botIdentity?: { botId: string; botUserId: string };
  /** An already opened and migrated store (tests: the in-memory embedded engine); closed by stop(). */
  store?: Store;
}

/** Until the engine is wired: every engine call is refused plainly. */
function unwiredOperations(): SessionOperations {
  const refuse = async (): Promise<never> => {
    throw new CodedError(ErrorCode.CutoverStepFailed, 'The cutover engine is not available in this build; nothing was changed.');
  };
  return {
    startMigration: refuse,
    plan: refuse,
    preflight: refuse,
    lag: refuse,
    freeze: refuse,
    switchover: refuse,
    resume: refuse,
    rollback: refuse,
    finish: refuse,
    abort: refuse,
  };
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
  const status = new StatusMessages({
    client: app.client,
    store,
    approvals,
    schedules,
    config,
    log: slackLog,
    now,
    lag: (sessionId) => (operations ?? unwiredOperations()).lag(sessionId),
  });
  const notifier = new SlackNotifier(status, store.audit, slackLog);
  operations =
    typeof deps.operations === 'function'
      ? deps.operations({ store, approvals, notifier, now, log })
      : (deps.operations ?? unwiredOperations());
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
  return {
    port,
    store,
    approvals,
    notifier,
    app,
    async stop() {
      await app.stop();
      await store.db.close();
    },
  };
}
