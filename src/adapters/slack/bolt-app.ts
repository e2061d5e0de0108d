/**
 * Builds the Bolt app and its transport: an HTTP receiver we construct ourselves (so its timeout and
 * error options apply) serving POST /slack/events and GET /healthz, or Socket Mode when an app token
 * is configured. Listeners are registered by the caller; this file only knows about transport.
 */
import type { ServerResponse } from 'node:http';
// A namespace import: Node and vitest agree on the named exports of this CommonJS package (not on its default).
import * as bolt from '@slack/bolt';
import type { Env } from '../../config/env.js';
import type { Logger } from '../../log.js';

const { App, HTTPReceiver, SocketModeReceiver, LogLevel } = bolt;
export type BoltApp = InstanceType<typeof App>;

export interface Health {
  ok: boolean;
  detail: Record<string, unknown>;
}

export interface BoltAppOptions {
  env: Pick<Env, 'SLACK_BOT_TOKEN' | 'SLACK_SIGNING_SECRET' | 'SLACK_APP_TOKEN' | 'SLACK_API_URL' | 'PORT'>;
  log: Logger;
  health: () => Promise<Health>;
  /** Tests set this so effects are complete when the HTTP response arrives. */
  processBeforeResponse?: boolean;
  /** Bot identity; when given, Bolt skips its auth.test call at start-up. */
  botIdentity?: { botId: string; botUserId: string };
}

export function createBoltApp(options: BoltAppOptions): BoltApp {
  const { env, log } = options;
  const boltLog = log.child({ name: 'bolt' });
  const logger = {
    debug: (...msg: unknown[]) => boltLog.debug(msg.map(String).join(' ')),
    info: (...msg: unknown[]) => boltLog.info(msg.map(String).join(' ')),
    warn: (...msg: unknown[]) => boltLog.warn(msg.map(String).join(' ')),
    error: (...msg: unknown[]) => boltLog.error(msg.map(String).join(' ')),
    setLevel: () => undefined,
    getLevel: () => LogLevel.INFO,
    setName: () => undefined,
  };
  const clientOptions = {
    ...(env.SLACK_API_URL ? { slackApiUrl: env.SLACK_API_URL.replace(/\/?$/, '/') } : {}),
    // Never let a Slack outage hang a handler for half an hour (the client's default retry policy).
    retryConfig: { retries: 2, factor: 2, minTimeout: 500, maxTimeout: 5_000 },
    timeout: 10_000,
  };
  const healthRoute = {
    path: '/healthz',
    method: ['GET'],
    handler: (_req: unknown, res: ServerResponse) => {
      options
        .health()
        .then((health) => {
          res.writeHead(health.ok ? 200 : 503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ status: health.ok ? 'ok' : 'unavailable', ...health.detail }));
        })
        .catch(() => {
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ status: 'unavailable' }));
        });
    },
  };
  const receiver = env.SLACK_APP_TOKEN
    ? new SocketModeReceiver({
        appToken: env.SLACK_APP_TOKEN.reveal(),
        logger,
        // In Socket Mode the receiver still serves /healthz over HTTP on PORT.
        customRoutes: [healthRoute],
        installerOptions: { port: env.PORT },
      })
    : new HTTPReceiver({
        signingSecret: env.SLACK_SIGNING_SECRET?.reveal() ?? '',
        endpoints: ['/slack/events'],
        customRoutes: [healthRoute],
        processBeforeResponse: options.processBeforeResponse ?? false,
        logger,
        unhandledRequestTimeoutMillis: 3001,
      });
  return new App({
    token: env.SLACK_BOT_TOKEN.reveal(),
    receiver,
    logger,
    clientOptions,
    ...(options.botIdentity ?? {}),
  });
}
