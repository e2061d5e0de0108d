/**
 * The cutover benchmark (issue 11): how long writes are held, as PgBouncer logged it (its PAUSE and
 * RESUME command lines, stamped by PgBouncer to the ms; its SHOW DATABASES polled every ~3 ms from a
 * worker thread as a cross-check, whose gaps reach 10–20 ms on a busy 2-core machine), by the bot's
 * default path (switch approved ahead of time, one freeze() call), a DBA's hand-written pg script doing
 * the same steps, and the raw PAUSE/RESUME floor — alternated, each run on a fresh rig (two PostgreSQL 15
 * clusters with DO's logical replication through the simulator, PgBouncer in transaction pooling) so
 * every run starts from the same direction with fresh sequences; the target is logical, so the bot also
 * reads the reverse stream's switch point and exports the switch-point snapshots inside its freeze, as in
 * production. 8 clients write ~800/s through
 * PgBouncer during each run; every acknowledged write is then looked up on the side the writes ended on.
 * Prints per run and a final table; asserts nothing about timings.
 *
 *   npx vitest bench --run bench/cutover.bench.ts      (CUTOVER_BENCH_ROUNDS=5 for more rounds)
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { bench, describe } from 'vitest';
import { createLogger } from '../src/log.js';
import { startCutoverRig, type CutoverRig } from '../test/support/cutover-rig.js';
import { startPacedWriter, type PacedWriter } from '../test/support/paced-writer.js';
import {
  BENCH_FENCE,
  absoluteNow,
  pauseInLog,
  awaitReplication,
  prepareBaseline,
  prepareBot,
  prepareFloor,
  watchPause,
  type PauseSeen,
  type Prepared,
} from './cutover-paths.js';

const ROUNDS = Number(process.env.CUTOVER_BENCH_ROUNDS ?? 3);
const ALL_PATHS = ['bot', 'baseline', 'floor'] as const;
type Path = (typeof ALL_PATHS)[number];
/** CUTOVER_BENCH_PATHS=baseline,floor runs only those (to look at one path); all three by default. */
const PATHS = ALL_PATHS.filter((p) => (process.env.CUTOVER_BENCH_PATHS ?? p).split(',').includes(p));
const WARMUP_MS = 1500;
const AFTER_MS = 1500;
const RUN_GUARD_MS = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** PgBouncer's server-side lines leading up to its first warning or error, to show why writes failed. */
function bouncerTrouble(logFile: string): string[] {
  try {
    const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => /S-0x|WARNING|ERROR|FATAL|command issued/.test(l));
    const first = lines.findIndex((l) => /WARNING|ERROR|FATAL/.test(l));
    return first < 0 ? lines.slice(-6) : lines.slice(Math.max(0, first - 8), first + 2);
  } catch {
    return [];
  }
}

/** `work`, or an error after `ms`; a run that outlives the guard is torn down with its rig. */
async function guarded<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  work.catch(() => undefined);
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the cutover call did not return in ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

interface RunResult {
  path: Path;
  round: number;
  error?: string;
  seen?: PauseSeen;
  /** The freeze PgBouncer logged (PAUSE to RESUME command, its own ms stamps): the measure compared. */
  loggedMs?: number;
  callMs?: number;
  steps?: Record<string, number>;
  acked: number;
  perSecond: number;
  failed: number;
  firstFailure?: string;
  /** PgBouncer's log up to its first warning, kept when a run had failed writes, an error or a 1 s stall. */
  bouncerLog?: string[];
  lost: number;
  endedOn?: 'source' | 'target';
  expectedOn?: 'source' | 'target';
  maxMs?: number;
  /** When the slowest write was sent, ms from the cutover call's start (negative: before it). */
  maxSentMs?: number;
  p99Ms?: number;
}

async function oneRun(path: Path, round: number): Promise<RunResult> {
  const logger = createLogger('silent');
  const result: RunResult = { path, round, acked: 0, perSecond: 0, failed: 0, lost: 0 };
  let rig: CutoverRig | undefined;
  let prepared: Prepared | undefined;
  let writer: PacedWriter | undefined;
  let watch: Awaited<ReturnType<typeof watchPause>> | undefined;
  let call = { from: 0, to: 0 };
  try {
    // Every path on a logical target; the bot replicates back as in production (its switch point is read in the freeze).
    rig = await startCutoverRig(logger, { replicateBack: true });
    await rig.sourcePool.query(BENCH_FENCE);
    prepared = path === 'bot' ? await prepareBot(rig, logger) : path === 'baseline' ? await prepareBaseline(rig) : await prepareFloor(rig);
    result.expectedOn = prepared.endsOn;
    await awaitReplication(rig, `ready-${path}-${round}`);
    writer = startPacedWriter(rig.bouncer.connectionString('orders'), { prefix: `${path}-${round}`, workers: 8, perSecond: 800 });
    await writer.ready;
    await sleep(WARMUP_MS);
    watch = await watchPause(rig);
    const cutoverAt = Date.now();
    const t0 = absoluteNow();
    try {
      result.steps = await guarded(prepared.run(), RUN_GUARD_MS);
    } catch (error) {
      result.error = (error as Error).message;
    }
    call = { from: t0, to: absoluteNow() };
    result.callMs = call.to - t0;
    await sleep(AFTER_MS);
    const stopping = writer;
    writer = undefined;
    await stopping.stop();
    const watching = watch;
    watch = undefined;
    result.seen = await watching.stop(call);
    result.loggedMs = pauseInLog(rig.bouncer.logFile);

    const { acked, errors } = stopping;
    result.acked = acked.length;
    // The steady load before the cutover (held writes skip their missed ticks, so later rates say less).
    result.perSecond = Math.round(acked.filter((a) => a.ackedAt < cutoverAt).length / (WARMUP_MS / 1000));
    result.failed = errors.length;
    result.firstFailure = errors[0]?.message;
    const latencies = acked.map((a) => a.ackedAt - a.sentAt).sort((a, b) => a - b);
    result.maxMs = latencies.at(-1);
    const slowest = acked.reduce<(typeof acked)[number] | undefined>((s, a) => (!s || a.ackedAt - a.sentAt > s.ackedAt - s.sentAt ? a : s), undefined);
    if (slowest) result.maxSentMs = slowest.sentAt - cutoverAt;
    result.p99Ms = latencies[Math.max(0, Math.ceil(latencies.length * 0.99) - 1)];
    // The side the writes ended on is where the last acknowledged write went; every write must be there.
    const last = acked.reduce<(typeof acked)[number] | undefined>((l, a) => (!l || a.ackedAt > l.ackedAt ? a : l), undefined);
    result.endedOn = last?.port === rig.target.port ? 'target' : 'source';
    const side = result.endedOn === 'target' ? rig.targetPool : rig.sourcePool;
    const { rows } = await side.query<{ id: string }>('SELECT id FROM writes');
    const present = new Set(rows.map((r) => r.id));
    result.lost = acked.filter((a) => !present.has(a.id)).length;
  } catch (error) {
    result.error = `${result.error ? `${result.error}; then ` : ''}${(error as Error).message}`;
  } finally {
    // Failed writes, an error, or a stall of a second (PgBouncer's server_login_retry): show PgBouncer's view.
    if (rig && (result.failed > 0 || result.error || (result.maxMs ?? 0) >= 1000)) result.bouncerLog = bouncerTrouble(rig.bouncer.logFile);
    await writer?.stop().catch(() => undefined);
    await watch?.stop(call).catch(() => undefined);
    await prepared?.close().catch(() => undefined);
    await rig?.stop().catch(() => undefined);
  }
  return result;
}

const ms = (v: number | undefined) => (v === undefined ? '–' : `${v.toFixed(1)}`);
const median = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0 ? undefined : s.length % 2 ? s[mid] : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};
const defined = (values: (number | undefined)[]) => values.filter((v): v is number => v !== undefined);
/** The freeze PgBouncer showed, or the upper bound when it fell between two polls. */
/** The freeze PgBouncer logged: the measure compared. */
const logged = (r: RunResult) => r.loggedMs;
/** The freeze the watcher's polls showed, or the upper bound when it fell between two polls: a cross-check. */
const polled = (r: RunResult) => r.seen?.frozenMs ?? r.seen?.shorterThanMs;
const polledText = (r: RunResult) =>
  r.seen?.frozenMs === undefined && r.seen?.shorterThanMs !== undefined
    ? `< ${ms(r.seen.shorterThanMs)} ms (between two polls)`
    : `${ms(r.seen?.frozenMs)} ms`;

function runLine(r: RunResult): string {
  const trouble = [
    r.error ? `ERROR: ${r.error}` : '',
    r.failed > 0 ? `!!! ${r.failed} FAILED WRITES (first: ${r.firstFailure})` : '',
    ...(r.firstFailure?.includes('server_login_retry')
      ? ['(usually: a server connection still logging in when PAUSE came was closed "because: pause mode"; PgBouncer counts that as a failed login and refuses clients for server_login_retry)']
      : []),
    ...(r.bouncerLog?.map((line) => `pgbouncer: ${line}`) ?? []),
    r.lost > 0 ? `!!! ${r.lost} LOST WRITES` : '',
    r.seen?.stillPaused ? '!!! PGBOUNCER STILL PAUSED' : '',
    r.seen && polled(r) === undefined && !r.seen.stillPaused ? '!!! no pause seen' : '',
    r.loggedMs === undefined && !r.error ? '!!! no PAUSE and RESUME in the PgBouncer log' : '',
    r.expectedOn && r.endedOn && r.expectedOn !== r.endedOn ? `!!! writes ended on the ${r.endedOn}, expected the ${r.expectedOn}` : '',
  ].filter(Boolean);
  return (
    `[${r.path} #${r.round}] freeze ${ms(r.loggedMs)} ms as PgBouncer logged it, ${polledText(r)} as its polls showed it ` +
    `(${r.seen?.polls ?? 0} polls, max gap ${ms(r.seen?.maxGapMs)} ms; call ${ms(r.callMs)} ms), ` +
    `client latency max ${ms(r.maxMs)} ms (sent at ${r.maxSentMs === undefined ? '?' : `${r.maxSentMs >= 0 ? '+' : ''}${r.maxSentMs}`} ms of the call) p99 ${ms(r.p99Ms)} ms, ${r.acked} acked (${r.perSecond}/s before the cutover), ` +
    `${r.failed} failed, ${r.lost} lost, writes ended on the ${r.endedOn ?? '?'}` +
    (r.steps && Object.keys(r.steps).length ? `; steps ${Object.entries(r.steps).map(([k, v]) => `${k} ${ms(v)}`).join(', ')} ms` : '') +
    (trouble.length ? `\n    ${trouble.join('\n    ')}` : '')
  );
}

function table(results: RunResult[]): string {
  const of = (path: Path, measure: (r: RunResult) => number | undefined) => defined(results.filter((r) => r.path === path).map(measure));
  const range = (v: number[]) => (v.length ? ` (${ms(Math.min(...v))}–${ms(Math.max(...v))})` : '');
  const ratio = (measure: (r: RunResult) => number | undefined) => {
    const [bot, baseline] = [median(of('bot', measure)), median(of('baseline', measure))];
    return bot !== undefined && baseline ? bot / baseline : undefined;
  };
  const lines = [
    '| path | runs | freeze median (min–max) ms, PgBouncer log | polled median (min–max) ms | max client latency median (min–max) ms | p99 latency median ms | failed | lost | ratio to baseline (logged freeze medians) |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const baseline = median(of('baseline', logged));
  for (const path of PATHS) {
    const runs = results.filter((r) => r.path === path);
    const freezes = of(path, logged);
    const polls = of(path, polled);
    const maxes = defined(runs.map((r) => r.maxMs));
    const m = median(freezes);
    const failed = runs.reduce((n, r) => n + r.failed, 0);
    const lost = runs.reduce((n, r) => n + r.lost, 0);
    const errored = runs.filter((r) => r.error).length;
    const between = runs.filter((r) => r.seen?.frozenMs === undefined && r.seen?.shorterThanMs !== undefined).length;
    const note = between ? ` [${between} between two polls, at their upper bound]` : '';
    lines.push(
      `| ${path} | ${runs.length}${errored ? ` (${errored} errored)` : ''} | ${ms(m)}${range(freezes)} | ${ms(median(polls))}${range(polls)}${note} | ${ms(median(maxes))}${range(maxes)} | ` +
        `${ms(median(defined(runs.map((r) => r.p99Ms))))} | ${failed} | ${lost} | ${m !== undefined && baseline ? `×${(m / baseline).toFixed(2)}` : '–'} |`,
    );
  }
  const perRound = [...new Set(results.map((r) => r.round))].map((round) => {
    const [b, s] = (['bot', 'baseline'] as const).map((p) => results.find((r) => r.round === round && r.path === p));
    const [fb, fs] = [b && logged(b), s && logged(s)];
    return fb !== undefined && fs ? `#${round} ${(fb / fs).toFixed(2)}` : `#${round} –`;
  });
  const [byLog, byPolls] = [ratio(logged), ratio(polled)];
  lines.push(
    '',
    `bot/baseline ratio (median freeze, PgBouncer log): ${byLog !== undefined ? byLog.toFixed(2) : '–'}; per round: ${perRound.join(', ')}; ` +
      `by the polls: ${byPolls !== undefined ? byPolls.toFixed(2) : '–'}`,
  );
  return lines.join('\n');
}

describe('cutover: the bot against a hand-written script and the PAUSE/RESUME floor', () => {
  bench(
    `bot, baseline, floor alternated ×${ROUNDS} on fresh rigs, 8 clients at 800 writes/s through PgBouncer`,
    async () => {
      const loadBefore = loadavg();
      const results: RunResult[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        for (const path of PATHS) {
          const result = await oneRun(path, round);
          results.push(result);
          console.info(runLine(result));
        }
      }
      const trouble = results.filter((r) => r.error || r.failed > 0 || r.lost > 0 || r.seen?.stillPaused);
      const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(' ');
      console.info(
        `\n${table(results)}\nmachine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load average before ${load(loadBefore)}, after ${load(loadavg())}` +
          (trouble.length ? `\n!!! ${trouble.length} run(s) with errors, failed or lost writes — see the lines above` : '\nevery run: 0 failed, 0 lost'),
      );
    },
    { iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0, throws: true },
  );
});
