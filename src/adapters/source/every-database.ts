/**
 * A session covers every database DigitalOcean migrates, each with its own slot: these compose the
 * one-database parts (slot lag probe, fence, sequence copier) over all of them, behind the engine's
 * unchanged ports. Everything runs on every database at once: the fence inside the freeze takes as long
 * as the slowest database's, not their sum. With one database each is exactly that database's part.
 */
import { settleAll } from '../settle-all.js';
import type { DatabaseLag, Fence, FenceResult, LagSample } from '../../domain/ports/replication.js';
import type { SequenceCopyResult } from '../../domain/ports/sequences.js';
import { lsnToBigInt, type SlotReading } from './lag-probe.js';
import type { SequencePusher, SequencePushResult } from './sequences.js';

export interface DatabasePart<T> {
  database: string;
  part: T;
}

/** One reading of every database's slot: the largest lag, unknown when any database's is, each one listed. */
export function combineReadings(readings: readonly DatabasePart<SlotReading>[]): SlotReading {
  const [first, ...rest] = readings;
  if (!first) throw new Error('combineReadings needs at least one database');
  if (rest.length === 0) return first.part;
  const databases = readings.map(({ database, part: { sample } }): DatabaseLag =>
    sample.known ? { database, known: true, bytes: sample.bytes, seconds: sample.seconds } : { database, known: false, reason: sample.reason },
  );
  const at = first.part.sample.at;
  const walPosition = readings.find((r) => r.part.walPosition !== null)?.part.walPosition ?? null;
  const unknown = databases.filter((d): d is Extract<DatabaseLag, { known: false }> => !d.known);
  if (unknown.length > 0) {
    return { sample: { known: false, at, reason: unknown.map((d) => `${d.database}: ${d.reason}`).join('; '), databases }, walPosition };
  }
  const samples = readings.map((r) => r.part.sample as Extract<LagSample, { known: true }>);
  const seconds = samples.map((s) => s.seconds);
  return {
    sample: {
      known: true,
      at,
      slot: samples.map((s) => s.slot).join(', '),
      slotActive: samples.every((s) => s.slotActive),
      bytes: Math.max(...samples.map((s) => s.bytes)),
      seconds: seconds.some((s) => s === null) ? null : Math.max(...(seconds as number[])),
      databases,
    },
    walPosition,
  };
}

/** Every database's slot read at once (the list asked each time: a database added later is seen). */
export class EveryDatabaseLagProbe {
  readonly #databases: () => Promise<string[]>;
  readonly #probe: (database: string) => { read(): Promise<SlotReading> };
  readonly #now: () => Date;

  constructor(options: { databases: () => Promise<string[]>; probe: (database: string) => { read(): Promise<SlotReading> }; now: () => Date }) {
    this.#databases = options.databases;
    this.#probe = options.probe;
    this.#now = options.now;
  }

  async read(): Promise<SlotReading> {
    let databases: string[];
    try {
      databases = await this.#databases();
    } catch (error) {
      return { sample: { known: false, at: this.#now(), reason: `the source cannot be queried: ${(error as Error).message}` }, walPosition: null };
    }
    const readings = await Promise.all(databases.map(async (database) => ({ database, part: await this.#probe(database).read() })));
    return combineReadings(readings);
  }
}

/** The latest of some LSNs of one cluster (`16/B374D848`), by WAL order. */
export function latestLsn(lsns: readonly string[]): string | undefined {
  return lsns.reduce<string | undefined>((a, b) => (a === undefined || lsnToBigInt(b) > lsnToBigInt(a) ? b : a), undefined);
}

/** A fence per database, proved at once: resolves when every database's marker arrived on the target. */
export class EveryDatabaseFence implements Fence {
  readonly #fences: readonly DatabasePart<Fence>[];

  constructor(fences: readonly DatabasePart<Fence>[]) {
    this.#fences = fences;
  }

  async prepare(): Promise<void> {
    await settleAll(this.#fences, (f) => f.part.prepare?.() ?? Promise.resolve());
  }

  async close(): Promise<void> {
    await Promise.all(this.#fences.map((f) => f.part.close?.().catch(() => undefined)));
  }

  prove(timeoutMs: number): Promise<FenceResult> {
    return this.#every((f) => f.prove(timeoutMs));
  }

  /** Every database caught up at once (a fence without catchUp proves once: the same catch-up, its connections not kept). */
  catchUp(timeoutMs: number): Promise<FenceResult> {
    return this.#every((f) => (f.catchUp ? f.catchUp(timeoutMs) : f.prove(timeoutMs)));
  }

  async #every(proof: (fence: Fence) => Promise<FenceResult>): Promise<FenceResult> {
    const results = await settleAll(this.#fences, async (f) => ({ database: f.database, ...(await proof(f.part)) }));
    // One target cluster: the latest position any database's proof read is past every one of them.
    const targetLsns = results.map((r) => r.targetLsn);
    const targetLsn = targetLsns.every((l): l is string => l !== undefined) ? latestLsn(targetLsns) : undefined;
    const at = targetLsn === undefined ? {} : { targetLsn };
    const slowest = results.reduce((a, b) => (b.elapsedMs > a.elapsedMs ? b : a));
    return { method: slowest.method, lsn: slowest.lsn, elapsedMs: slowest.elapsedMs, ...at, ...(results.length > 1 ? { databases: results } : {}) };
  }
}

/** The sequences of every database: each database's copier on its own connections, all at once. */
export function everyDatabaseSequences(copiers: readonly DatabasePart<SequencePusher>[]): SequencePusher {
  return {
    async pushAhead(): Promise<SequencePushResult> {
      const t = performance.now();
      const results = await settleAll(copiers, (c) => c.part.pushAhead());
      return {
        sequences: results.reduce((n, r) => n + r.sequences, 0),
        pushed: results.reduce((n, r) => n + r.pushed, 0),
        elapsedMs: Math.round(performance.now() - t),
      };
    },
    async copy(): Promise<SequenceCopyResult & { set: number }> {
      const t = performance.now();
      const results = await settleAll(copiers, (c) => c.part.copy());
      return {
        copied: results.reduce((n, r) => n + r.copied, 0),
        unused: results.reduce((n, r) => n + r.unused, 0),
        set: results.reduce((n, r) => n + r.set, 0),
        elapsedMs: Math.round(performance.now() - t),
      };
    },
    async close(): Promise<void> {
      await settleAll(copiers, (c) => c.part.close());
    },
  };
}
