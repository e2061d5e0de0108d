/**
 * Start-up and memory of the bot as a process (`node dist/main.js`, after `npm run build`): time from
 * spawn to the first 200 from /healthz (and the CPU time used by then, which other work on the machine
 * changes less), and resident memory after a quiet spell, on a fresh and on an existing data directory,
 * for the embedded store and for an external PostgreSQL store (a fresh database, then the same one
 * again). In the same run, the baseline: a minimal Bolt app (HTTPReceiver and a /healthz route) started
 * the same way. Slack is a local fake; nothing else is contacted at start-up. Run with
 * `npx vitest bench --run bench/footprint.bench.ts`; the figures are printed at the end (targets of
 * issue 13 for the embedded store: fresh start ≤ 2 s, idle RSS ≤ 200 MB). /healthz is polled every
 * 100 ms, so start times are that coarse.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { startBotProcess } from '../test/support/bot-process.js';
import { startFakeSlack, type FakeSlack } from '../test/support/fake-slack.js';
import { freePort } from '../test/support/free-port.js';
import { startCluster, type Cluster } from '../test/support/pg-cluster.js';

const ROUNDS = 3;
/** How long a process sits idle after its first /healthz before its memory is read. */
const IDLE_MS = 8_000;
const SECRET = 'footprint-signing-secret';

const BOLT_BASELINE = `
import bolt from '@slack/bolt';
const receiver = new bolt.HTTPReceiver({
  signingSecret: process.env.SLACK_SIGNING_SECRET,
  customRoutes: [{ path: '/healthz', method: ['GET'], handler: (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"status":"ok"}'); } }],
});
const app = new bolt.App({ token: process.env.SLACK_BOT_TOKEN, receiver, clientOptions: { slackApiUrl: process.env.SLACK_API_URL } });
app.command('/migrate', async ({ ack }) => { await ack(); });
await app.start(Number(process.env.PORT));
`;

type Kind = 'embedded, fresh' | 'embedded, existing' | 'PostgreSQL, fresh' | 'PostgreSQL, existing' | 'minimal Bolt app';
interface Sample {
  startMs: number;
  /** CPU time (all threads, user and system) the process had used by then: what other work on the machine changes least. */
  cpuMs: number;
  rssMb: number;
  peakMb: number;
}
const samples = new Map<Kind, Sample[]>();

let dir: string;
let slack: FakeSlack | undefined;
let store: Cluster | undefined;
let round = 0;
/** The 1-minute load average before each round: the machine may be busy with other work. */
const loads: number[] = [];

/** utime + stime of a process (fields 14 and 15 of /proc/PID/stat, in clock ticks of 10 ms), in ms. */
function cpuTimeOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** VmRSS (now) and VmHWM (the peak) of a process, in MB. */
function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

async function measure(kind: Kind, env: Record<string, string>, args?: string[]): Promise<void> {
  const port = await freePort();
  const started = performance.now();
  const process = startBotProcess({ ...env, PORT: String(port) }, args);
  try {
    const pid = process.child.pid;
    if (pid === undefined) throw new Error(`${kind}: no pid`);
    await process.waitForHealth(port);
    const startMs = performance.now() - started;
    const cpuMs = cpuTimeOf(pid);
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    samples.set(kind, [...(samples.get(kind) ?? []), { startMs, cpuMs, ...memoryOf(pid) }]);
  } finally {
    await process.stop('SIGTERM');
  }
}

const botEnv = (): Record<string, string> => {
  if (!slack) throw new Error('the fake Slack is not running');
  return {
    SLACK_BOT_TOKEN: 'xoxb-footprint-token',
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    DIGITALOCEAN_TOKEN: 'dop_v1_footprint',
    DIGITALOCEAN_API_URL: 'http://127.0.0.1:9',
    PGCUTOVER_CONFIG: join(dir, 'pgcutover.yml'),
    SOURCE_PW: 'not-contacted-at-start',
    LOG_LEVEL: 'warn',
  };
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgcutover-footprint-'));
  writeFileSync(
    join(dir, 'pgcutover.yml'),
    `profiles:
  orders:
    channels: [C0FOOTPRNT]
    strategy: connection-parameters
    source: { host: 127.0.0.1, database: orders, user: migrator, password: "\${SOURCE_PW}" }
    digitalocean: { clusterUuid: 9cc10173-e9ea-4176-9dbc-a4cee4c4ff30, database: orders }
    proxy: { kind: none }
    freeze: { method: read-only-roles, appRoles: [orders_app] }
    gates: { operators: [U0FOOTPRNT] }
`,
  );
  slack = await startFakeSlack();
  store = await startCluster();
}, 120_000);

afterAll(async () => {
  await slack?.close();
  await store?.stop();
  rmSync(dir, { recursive: true, force: true });
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
  const range = (values: number[], digits: number) => `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
  const lines = [...samples].map(([kind, s]) => {
    const start = s.map((x) => x.startMs / 1000);
    const cpu = s.map((x) => x.cpuMs / 1000);
    const rss = s.map((x) => x.rssMb);
    const peak = s.map((x) => x.peakMb);
    return `  ${kind.padEnd(22)} first /healthz median ${median(start).toFixed(2)} s (${range(start, 2)}; CPU median ${median(cpu).toFixed(2)} s)   RSS after ${IDLE_MS / 1000} s idle median ${median(rss).toFixed(0)} MB (${range(rss, 0)})   peak ${range(peak, 0)} MB`;
  });
  const load = loads.length ? `, load average ${range([...loads, loadavg()[0] ?? NaN], 1)}` : '';
  process.stdout.write(['', `Start-up and memory, ${ROUNDS} rounds alternated${load}:`, ...lines, ''].join('\n'));
});

describe('start-up and memory', () => {
  bench(
    'one round: embedded fresh and existing, PostgreSQL fresh and existing, minimal Bolt app',
    async () => {
      round++;
      loads.push(loadavg()[0] ?? NaN);
      const dataDir = join(dir, `data-${round}`);
      await measure('embedded, fresh', { ...botEnv(), DATA_DIR: dataDir });
      await measure('embedded, existing', { ...botEnv(), DATA_DIR: dataDir });
      if (!store) throw new Error('the store cluster is not running');
      const database = `store_${round}`;
      await store.query(`CREATE DATABASE ${database}`);
      const postgres = { ...botEnv(), DATABASE_URL: store.connectionString(database) };
      await measure('PostgreSQL, fresh', postgres);
      await measure('PostgreSQL, existing', postgres);
      if (!slack) throw new Error('the fake Slack is not running');
      await measure('minimal Bolt app', { SLACK_BOT_TOKEN: 'xoxb-footprint-token', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: slack.apiUrl }, ['--input-type=module', '-e', BOLT_BASELINE]);
    },
    { iterations: ROUNDS, time: 0, warmupIterations: 0, warmupTime: 0 },
  );
});
