/**
 * `/migrate status` under 20 concurrent signed requests: the real bot (startBot, the real engine, lag
 * from a real logical slot on a throwaway source cluster), once on a PostgreSQL store and once on the
 * embedded one, against a local fake Slack Web API, measured from sending each request to its
 * response_url answer arriving. In the same run, the
 * baseline: a minimal Bolt app (HTTPReceiver, same signing, one `/migrate` command that acks and then
 * calls respond()) doing the same round trip. Run with `npx vitest bench --run bench/status.bench.ts`;
 * p50/p95 of both and their ratio are printed at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as bolt from '@slack/bolt';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { startBot, type RunningBot } from '../src/composition-root.js';
import { loadEnv } from '../src/config/env.js';
import { parseProfiles } from '../src/config/profiles.js';
import { createLogger } from '../src/log.js';
import { startCluster, type Cluster } from '../test/support/pg-cluster.js';
import { startFakeSlack, type FakeSlack } from '../test/support/fake-slack.js';
import { postSigned, slashCommandBody } from '../test/support/slack-requests.js';

const { App, HTTPReceiver } = bolt;
const SECRET = 'bench-signing-secret';
const CHANNELS = { postgres: 'C0BENCHPG', embedded: 'C0BENCHEM' } as const;
type StoreKind = keyof typeof CHANNELS;
const OPERATOR = 'U0BENCHOP';
const SLOT = 'bench_slot';
const CONCURRENCY = 20;
const ROUNDS = 15;

/** Where response_url answers land: resolves the waiter of each id with its arrival time. */
interface ResponseSink {
  url: string;
  arrival(id: string): Promise<number>;
  close(): Promise<void>;
}

async function startResponseSink(): Promise<ResponseSink> {
  const waiters = new Map<string, (at: number) => void>();
  const early = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const at = performance.now();
    req.resume();
    req.on('end', () => {
      const id = (req.url ?? '').replace(/^\/respond\//, '');
      const waiter = waiters.get(id);
      if (waiter) waiter(at);
      else early.set(id, at);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    arrival: (id) =>
      new Promise<number>((resolve, reject) => {
        const at = early.get(id);
        if (at !== undefined) return resolve(at);
        const timer = setTimeout(() => reject(new Error(`no response_url answer for ${id}`)), 15_000);
        waiters.set(id, (t) => {
          clearTimeout(timer);
          waiters.delete(id);
          resolve(t);
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let source: Cluster | undefined;
let fake: FakeSlack | undefined;
let sink: ResponseSink | undefined;
const bots: RunningBot[] = [];
let baseline: InstanceType<typeof App> | undefined;
const urls = { postgres: '', embedded: '', baseline: '' };
let round = 0;
const latencies = { postgres: [] as number[], embedded: [] as number[], baseline: [] as number[] };

/** One round: CONCURRENCY signed `/migrate status` at once; each latency runs until its response_url answer. */
async function statusRound(url: string, channelId: string, into: number[] | undefined): Promise<void> {
  const tag = `r${round++}`;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, i) => {
      const id = `${tag}-${i}`;
      const body = slashCommandBody({ text: 'status', userId: OPERATOR, channelId, responseUrl: `${sink!.url}/respond/${id}` });
      const arrived = sink!.arrival(id);
      const started = performance.now();
      const response = await postSigned(url, body, { secret: SECRET });
      if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${response.text}`);
      const at = await arrived;
      into?.push(at - started);
    }),
  );
}

const channelOf = (kind: StoreKind | 'baseline') => (kind === 'baseline' ? CHANNELS.postgres : CHANNELS[kind]);
const dataDirs: string[] = [];
const tempDataDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dataDirs.push(dir);
  return dir;
};

/** An active session with its status message, as `/migrate start` would have left it. */
async function activeSession(bot: RunningBot, channelId: string): Promise<void> {
  const sessions = bot.store.sessions;
  const created = await sessions.create({ channelId, profile: 'orders', strategy: 'connection-parameters', startedBy: OPERATOR });
  const syncing = await sessions.transition(created.id, created.version, 'migration_started', { doMigrationId: 'do-mig-bench' });
  const posted = await bot.app.client.chat.postMessage({ channel: channelId, text: 'status' });
  await sessions.setStatusMessage(syncing.id, posted.ts ?? '');
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
};

beforeAll(async () => {
  source = await startCluster({ logical: true, databases: ['orders', 'pgcutover'] });
  await source.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [SLOT], 'orders');
  fake = await startFakeSlack();
  sink = await startResponseSink();
  const config = parseProfiles(
    `
profiles:
  orders:
    channels: [${CHANNELS.postgres}, ${CHANNELS.embedded}]
    strategy: connection-parameters
    source: { host: ${source.host}, port: ${source.port}, database: orders, user: ${source.user}, password: "\${SOURCE_PW}" }
    digitalocean: { clusterUuid: 9cc10173-e9ea-4176-9dbc-a4cee4c4ff30, database: orders, ignoreDbs: [pgcutover, postgres] }
    replication: { slot: ${SLOT} }
    proxy: { kind: none }
    freeze: { method: read-only-database }
    gates: { operators: [${OPERATOR}], approvers: [${OPERATOR}] }
`,
    'bench-profiles.yml',
    { SOURCE_PW: source.password },
  );
  for (const kind of ['postgres', 'embedded'] as const) {
    const env = loadEnv({
      SLACK_BOT_TOKEN: 'xoxb-bench-token',
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_API_URL: fake.apiUrl,
      PORT: '0',
      DIGITALOCEAN_TOKEN: 'do-bench-token',
      // Never called by `/migrate status`; a closed port makes any stray call fail fast.
      DIGITALOCEAN_API_URL: 'http://127.0.0.1:9',
      // Embedded: PGlite under DATA_DIR, as a single-replica install runs it.
      ...(kind === 'postgres' ? { DATABASE_URL: source.connectionString('pgcutover') } : { DATA_DIR: tempDataDir('pgcutover-bench-') }),
      LOG_LEVEL: 'silent',
    });
    const bot = await startBot(env, config, createLogger('silent'), { reports: false, botIdentity: { botId: 'B_BENCH', botUserId: 'U_BENCH' } });
    bots.push(bot);
    urls[kind] = `http://127.0.0.1:${bot.port}/slack/events`;
    await activeSession(bot, CHANNELS[kind]);
  }

  const receiver = new HTTPReceiver({ signingSecret: SECRET, endpoints: '/slack/events' });
  baseline = new App({
    token: 'xoxb-bench-token',
    receiver,
    botId: 'B_BENCH',
    botUserId: 'U_BENCH',
    clientOptions: { slackApiUrl: fake.apiUrl },
    logLevel: bolt.LogLevel.ERROR,
  });
  baseline.command('/migrate', async ({ ack, respond }) => {
    await ack({ response_type: 'ephemeral', text: 'Working on it…' });
    await respond({ response_type: 'ephemeral', text: 'status' });
  });
  const server = (await baseline.start(0)) as unknown as Server;
  const address = server.address();

  urls.baseline = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/slack/events`;

  // Warm everything up (connections, JIT, the source pool) before anything is measured.
  for (const kind of ['postgres', 'embedded', 'baseline'] as const) await statusRound(urls[kind], channelOf(kind), undefined);
}, 120_000);

afterAll(async () => {
  await baseline?.stop().catch(() => undefined);
  for (const bot of bots) await bot.stop().catch(() => undefined);
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  await sink?.close();
  await fake?.close();
  await source?.stop();
  const line = (name: string, values: number[]) =>
    `  ${name.padEnd(28)} p50 ${percentile(values, 50).toFixed(1).padStart(7)} ms   p95 ${percentile(values, 95).toFixed(1).padStart(7)} ms   (${values.length} requests)`;
  const ratio = (kind: StoreKind, p: number) => (percentile(latencies[kind], p) / percentile(latencies.baseline, p)).toFixed(2);
  const updates = fake ? fake.callsTo('chat.update').length : 0;
  process.stdout.write(
    [
      '',
      `/migrate status, ${CONCURRENCY} concurrent signed requests per round, time until the response_url answer:`,
      line('pgcutover, PostgreSQL store', latencies.postgres),
      line('pgcutover, embedded store', latencies.embedded),
      line('minimal Bolt app', latencies.baseline),
      `  ratio pgcutover / Bolt: PostgreSQL store p50 ×${ratio('postgres', 50)}, p95 ×${ratio('postgres', 95)}; embedded store p50 ×${ratio('embedded', 50)}, p95 ×${ratio('embedded', 95)} (target ≤ 3)`,
      `  chat.update calls to the status messages: ${updates} for ${latencies.postgres.length + latencies.embedded.length + 2 * CONCURRENCY} status requests`,
      '',
    ].join('\n'),
  );
});

describe(`/migrate status, ${CONCURRENCY} at once`, () => {
  // Interleaved, round by round: a change in machine load hits the bot and the baseline alike.
  bench(
    'one round each: pgcutover on PostgreSQL, pgcutover embedded, minimal Bolt app',
    async () => {
      await statusRound(urls.postgres, CHANNELS.postgres, latencies.postgres);
      await statusRound(urls.embedded, CHANNELS.embedded, latencies.embedded);
      await statusRound(urls.baseline, CHANNELS.postgres, latencies.baseline);
    },
    { iterations: ROUNDS, time: 0, warmupIterations: 0, warmupTime: 0 },
  );
});
