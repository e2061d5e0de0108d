/**
 * Builds the Bolt app and its transport: an HTTP receiver we construct ourselves (so its timeout and
 * error options apply) serving POST /slack/events, GET /healthz and GET /metrics, or Socket Mode when
 * an app token is configured. Listeners are registered by the caller; this file only knows about transport.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
// A namespace import: Node and vitest agree on the named exports of this CommonJS package (not on its default).
import * as bolt from '@slack/bolt';
import type { Env } from '../../config/env.js';
import type { ApiCallMetrics } from '../../domain/ports/metrics.js';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import { countingFetch, countingRetries } from './api-metrics.js';

const { App, HTTPReceiver, SocketModeReceiver, LogLevel } = bolt;
const { WebClient } = bolt.webApi;
export type BoltApp = InstanceType<typeof App>;
export type WebClient = InstanceType<typeof WebClient>;

/** Slack's window for a signed request, applied both ways (Bolt refuses only old timestamps). */
export const MAX_REQUEST_SKEW_SECONDS = 5 * 60;

/** Listeners find the request's signature here (HTTP mode only), to count each signed request once. */
export interface RequestContext {
  requestSignature?: string;
}

type SlackEnv = Pick<Env, 'SLACK_BOT_TOKEN' | 'SLACK_API_URL'>;

export interface Health {
  ok: boolean;
  detail: Record<string, unknown>;
}

/** What GET /metrics serves (Prometheus text); the Web API client counts its failures and retries into it. */
export interface MetricsEndpoint extends ApiCallMetrics {
  readonly contentType: string;
  render(): Promise<string>;
}

export interface BoltAppOptions {
  env: Pick<Env, 'SLACK_BOT_TOKEN' | 'SLACK_SIGNING_SECRET' | 'SLACK_APP_TOKEN' | 'SLACK_API_URL' | 'PORT'>;
  log: Logger;
  health: () => Promise<Health>;
  metrics?: MetricsEndpoint;
  /** Tests set this so effects are complete when the HTTP response arrives. */
  processBeforeResponse?: boolean;
  /** Bot identity; when given, Bolt skips its auth.test call at start-up. */
  botIdentity?: { botId: string; botUserId: string };
}

/** Bolt's and the Web API client's logger interface on our pino logger; `quiet` logs everything at debug. */
function slackLogger(log: Logger, quiet = false) {
  const boltLog = log.child({ name: 'bolt' });
  const line = (msg: unknown[]) => msg.map(String).join(' ');
  return {
    debug: (...msg: unknown[]) => boltLog.debug(line(msg)),
    info: (...msg: unknown[]) => (quiet ? boltLog.debug(line(msg)) : boltLog.info(line(msg))),
    warn: (...msg: unknown[]) => (quiet ? boltLog.debug(line(msg)) : boltLog.warn(line(msg))),
    error: (...msg: unknown[]) => (quiet ? boltLog.debug(line(msg)) : boltLog.error(line(msg))),
    setLevel: () => undefined,
    getLevel: () => LogLevel.INFO,
    setName: () => undefined,
  };
}

// Never let a Slack outage hang a handler for half an hour (the client's default retry policy).
const RETRY_POLICY = { retries: 2, factor: 2, minTimeout: 500, maxTimeout: 5_000 };

function clientOptions(env: SlackEnv, metrics?: ApiCallMetrics, retryConfig: bolt.webApi.RetryOptions = RETRY_POLICY) {
  return {
    ...(env.SLACK_API_URL ? { slackApiUrl: env.SLACK_API_URL.replace(/\/?$/, '/') } : {}),
    ...(metrics ? { fetch: countingFetch(metrics), retryConfig: countingRetries(metrics, retryConfig) } : { retryConfig }),
    timeout: 10_000,
  };
}

/**
 * The bot's identity from auth.test, asked before anything starts so that an unreachable Slack or a
 * refused token is one clear start-up error (Bolt's own call at construction rejects unhandled).
 */
export async function slackIdentity(env: SlackEnv & Pick<Env, 'SLACK_APP_TOKEN'>, log: Logger): Promise<{ botId: string; botUserId: string }> {
  // Quiet: its failure becomes the one start-up line, not a warning per attempt before it.
  const client = new WebClient(env.SLACK_BOT_TOKEN.reveal(), { ...clientOptions(env), logger: slackLogger(log, true) });
  const apiUrl = env.SLACK_API_URL ?? 'https://slack.com/api/';
  let result;
  try {
    result = await client.auth.test();
  } catch (error) {
    throw new CodedError(ErrorCode.SlackApiFailed, describeSlackFailure(error, apiUrl, 'bot token', 'SLACK_BOT_TOKEN'), { cause: error });
  }
  if (!result.bot_id || !result.user_id) {
    throw new CodedError(ErrorCode.SlackApiFailed, 'Slack answered auth.test without a bot id: SLACK_BOT_TOKEN must be a bot token (xoxb-)');
  }
  if (env.SLACK_APP_TOKEN) {
    // Socket Mode's client retries a refused app token forever, one warning per attempt: ask once here.
    try {
      await client.apps.connections.open({ token: env.SLACK_APP_TOKEN.reveal() });
    } catch (error) {
      throw new CodedError(ErrorCode.SlackApiFailed, describeSlackFailure(error, apiUrl, 'app-level token', 'SLACK_APP_TOKEN (an app-level token with connections:write)'), { cause: error });
    }
  }
  return { botId: result.bot_id, botUserId: result.user_id };
}

/** One line saying what failed and what to check; the token never appears, nor credentials in the URL. */
function describeSlackFailure(error: unknown, apiUrl: string, token: string, variable: string): string {
  const firstLine = (text: string) => text.split('\n')[0] ?? '';
  const url = new URL(apiUrl);
  url.username = '';
  url.password = '';
  if (error instanceof bolt.webApi.WebAPIPlatformError) return `Slack refused the ${token} (${error.data.error}); check ${variable}`;
  const detail = error instanceof bolt.webApi.WebAPIRequestError ? error.original.message : error instanceof Error ? error.message : String(error);
  return `cannot reach Slack at ${url.href} (${firstLine(detail)}); check the network and SLACK_API_URL`;
}

/**
 * A Web API client for lag reports only: a rate limit on it fails the call at once (the report is
 * skipped and retried on a later tick) instead of pausing a queue that button clicks wait behind.
 */
export function createReportsClient(env: SlackEnv, log: Logger, metrics?: ApiCallMetrics): WebClient {
  return new WebClient(env.SLACK_BOT_TOKEN.reveal(), {
    ...clientOptions(env, metrics, { retries: 1, factor: 2, minTimeout: 500, maxTimeout: 2_000 }),
    rejectRateLimitedCalls: true,
    logger: slackLogger(log),
  });
}

/** True when the request's signed timestamp is more than the window ahead of (or behind) our clock. */
function timestampOutsideWindow(header: string | string[] | undefined, nowMs: number): boolean {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || !/^\d{1,12}$/.test(value)) return false; // Bolt refuses it as unsigned
  return Math.abs(Number(value) - Math.floor(nowMs / 1000)) > MAX_REQUEST_SKEW_SECONDS;
}

export function createBoltApp(options: BoltAppOptions): BoltApp {
  const { env, log } = options;
  const logger = slackLogger(log);
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
  const { metrics } = options;
  const customRoutes = metrics ? [healthRoute, metricsRoute(metrics, log)] : [healthRoute];
  const receiver = env.SLACK_APP_TOKEN
    ? new SocketModeReceiver({
        appToken: env.SLACK_APP_TOKEN.reveal(),
        logger,
        // In Socket Mode the receiver still serves /healthz and /metrics over HTTP on PORT.
        customRoutes,
        // SLACK_API_URL applies to Socket Mode's own client too.
        installerOptions: { port: env.PORT, clientOptions: clientOptions(env) },
      })
    : guardTimestamps(
        new HTTPReceiver({
          signingSecret: env.SLACK_SIGNING_SECRET?.reveal() ?? '',
          endpoints: ['/slack/events'],
          customRoutes,
          processBeforeResponse: options.processBeforeResponse ?? false,
          logger,
          unhandledRequestTimeoutMillis: 3001,
          customPropertiesExtractor: (req): RequestContext => {
            const signature = req.headers['x-slack-signature'];
            return typeof signature === 'string' ? { requestSignature: signature } : {};
          },
        }),
        log,
      );
  return new App({
    token: env.SLACK_BOT_TOKEN.reveal(),
    receiver,
    logger,
    clientOptions: clientOptions(env, metrics),
    ...(options.botIdentity ?? {}),
  });
}

/** GET /metrics: the Prometheus text, or 503 when the store cannot be read for the per-session figures. */
function metricsRoute(metrics: MetricsEndpoint, log: Logger) {
  return {
    path: '/metrics',
    method: ['GET'],
    handler: (_req: unknown, res: ServerResponse) => {
      metrics.render().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(text);
        },
        (err: unknown) => {
          log.warn({ err, name: 'metrics' }, 'metrics could not be read');
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('metrics unavailable\n');
        },
      );
    },
  };
}

/** Answers 401 to a request whose timestamp is too far off, before Bolt verifies the rest. */
function guardTimestamps(receiver: InstanceType<typeof HTTPReceiver>, log: Logger): InstanceType<typeof HTTPReceiver> {
  const verified = receiver.requestListener;
  receiver.requestListener = (req: IncomingMessage, res: ServerResponse) => {
    if (timestampOutsideWindow(req.headers['x-slack-request-timestamp'], Date.now())) {
      log.warn({ name: 'slack' }, 'request refused: its timestamp is more than five minutes off');
      res.writeHead(401).end();
      return;
    }
    verified(req, res);
  };
  return receiver;
}
