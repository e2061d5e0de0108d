/**
 * The fence: proof that everything committed on the source before the call is applied on the target.
 * Preferred: a marker row written on the source (table `pgcutover_fence`, created by installFence()
 * before DO starts the migration so DO's schema copy includes it) and awaited on the target.
 * Fallback: the migration slot's confirmed_flush_lsn passing the source LSN taken at the call.
 *
 * Nothing slow inside the freeze: prepare() (before the freeze; else prove() on first use) chooses the
 * method and checks out a source connection and, when the target is a pool, a target connection;
 * prove() then writes the marker in one round trip and, from the same moment, polls for it every
 * millisecond on those connections, and gives them back to their pools when it ends (warm there, and a
 * pool's end() never waits on the fence).
 * catchUp(), just before the freeze, proves once on them and keeps them.
 *
 * Given a `switchPoint` holder, the proof inside the freeze also takes the switch-point snapshots with
 * no round trip of its own: the marker's message ends in a transaction exporting the source's snapshot
 * (the source writes nothing more), and the polls run in one whose statement that finds the marker
 * exports the target's (the target then has everything the source committed, and nothing else).
 * Both connections, their transactions open, go to the holder (the verifier) instead of their pools.
 * Given `alongTheMarker` (the sequences' read), the proof inside the freeze sends that read in the
 * marker's message too, after the marker's commit: nothing else is sent to the source while it runs.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import { lsnToBigInt, resolveSlot, type Queryable } from './lag-probe.js';
import type { Fence, FenceResult } from '../../domain/ports/replication.js';
import { FENCE_TABLE } from './fence-table.js';

/** An exported snapshot and the connection whose open transaction keeps it importable. */
export interface HeldSnapshot {
  snapshot: string;
  client: pg.PoolClient;
}

/** Takes over the snapshots a proof inside the freeze exported (the verifier): it ends their transactions and gives the connections back. */
export interface SwitchPointHolder {
  adopt(held: { source: HeldSnapshot; target: HeldSnapshot }): void;
}

/**
 * A read of the source inside the freeze that rides in the fence marker's message (after its commit,
 * when the drain is over): one statement without parameters. arm() is called as a proof inside the
 * freeze starts, and what it returns once the read's rows are known, or that there are none (the
 * proof failed first, or by another method).
 */
export interface ReadAlongTheMarker {
  readonly sql: string;
  arm(): (outcome: { rows: unknown[] } | { failed: true }) => void;
}

export interface FenceOptions {
  source: Queryable & Pick<pg.Pool, 'connect'>;
  /** With `connect` (a pool), the fence holds one of its connections; without, it polls through `query`. */
  target: Queryable & Partial<Pick<pg.Pool, 'connect'>>;
  /** The migration slot (profile `replication.slot`, `auto` = the only active logical slot). */
  slot: string;
  logger: Logger;
  /** Given, prove() sends this read in the marker's message and hands it the rows. */
  alongTheMarker?: ReadAlongTheMarker;
  /** Given, prove() exports the switch-point snapshots in its own messages and hands them over (marker method, held target connection). */
  switchPoint?: SwitchPointHolder;
  /** `auto` (default): marker when the table exists on both sides, else slot-lsn. */
  method?: 'auto' | 'marker' | 'slot-lsn';
  pollIntervalMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/** How long a proof may take, for its polls and its timeout. */
interface Limit {
  deadline: number;
  timeoutMs: number;
  method: 'marker' | 'slot-lsn';
}

/** A read riding in the marker's message, armed for one proof. */
interface Along {
  sql: string;
  settle: ReturnType<ReadAlongTheMarker['arm']>;
}

/** What a proof inside the freeze does besides proving (catchUp() does neither). */
interface InFreeze {
  switchPoint?: SwitchPointHolder | undefined;
  along?: Along | undefined;
}

/** What a proof found: the source LSN, the target's position (marker), the switch-point snapshots (when asked). */
interface Proved {
  lsn: string;
  targetLsn?: string;
  snapshots?: { source: string; target: string };
}

/** A connection checked out of a pool for the fence, and whether it failed (then it is not reused). */
interface Held {
  client: pg.PoolClient;
  failed: boolean;
  onError: () => void;
}

export class ReplicationFence implements Fence {
  readonly #o: Required<Omit<FenceOptions, 'logger' | 'switchPoint' | 'alongTheMarker'>>;
  readonly #along: ReadAlongTheMarker | undefined;
  readonly #switchPoint: SwitchPointHolder | undefined;
  readonly #log: Logger;
  #method: 'marker' | 'slot-lsn' | undefined;
  #held: { source: Held; target: Held | undefined } | undefined;

  constructor(options: FenceOptions) {
    this.#o = {
      method: 'auto',
      // Every poll interval can be added to the freeze: poll often (each poll is one indexed lookup).
      pollIntervalMs: 1,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      now: () => performance.now(),
      ...options,
    };
    this.#log = options.logger.child({ name: 'fence' });
    this.#switchPoint = options.switchPoint;
    this.#along = options.alongTheMarker;
  }

  /**
   * Before the freeze: checks out the connections prove() uses and chooses the method, so prove()
   * opens nothing. Optional (prove() does it on first use); close() gives them back if prove() never runs.
   */
  async prepare(): Promise<void> {
    await this.#ready();
  }

  async #ready(): Promise<{ held: { source: Held; target: Held | undefined }; method: 'marker' | 'slot-lsn' }> {
    if (!this.#held) {
      const { connect } = this.#o.target;
      const [source, target] = await Promise.allSettled([
        hold(this.#o.source),
        connect ? hold({ connect: connect.bind(this.#o.target) as pg.Pool['connect'] }) : undefined,
      ]);
      if (source.status === 'rejected' || target.status === 'rejected') {
        for (const h of [source, target]) if (h.status === 'fulfilled' && h.value) h.value.client.release();
        const cause: unknown = source.status === 'rejected' ? source.reason : (target as PromiseRejectedResult).reason;
        throw new CodedError(ErrorCode.DatabaseUnavailable, 'Could not open the fence connections to the source and the target', { cause });
      }
      this.#held = { source: source.value, target: target.value };
    }
    const held = this.#held;
    try {
      this.#method ??= await this.#choose(held.source.client, held.target?.client ?? this.#o.target);
      return { held, method: this.#method };
    } catch (error) {
      for (const h of [held.source, held.target]) if (h) h.failed = true;
      await this.close();
      throw error;
    }
  }

  /** Gives the held connections back to their pools (prove() does it too when it ends). */
  close(): Promise<void> {
    const held = this.#held;
    this.#held = undefined;
    for (const h of [held?.source, held?.target]) {
      if (!h) continue;
      h.client.off('error', h.onError);
      h.client.release(h.failed ? true : undefined);
    }
    return Promise.resolve();
  }

  /** Writes the marker (or takes the LSN) and polls until the target has it; gives the connections back (or to the switch-point holder) when done. */
  async prove(timeoutMs: number): Promise<FenceResult> {
    // Armed before the first await: whoever waits on the read knows a proof will answer it.
    const along = this.#along && { sql: this.#along.sql, settle: this.#along.arm() };
    try {
      return await this.#proveHeld(timeoutMs, { switchPoint: this.#switchPoint, along });
    } finally {
      along?.settle({ failed: true });
      await this.close();
    }
  }

  /** prove() before the freeze, keeping the connections for the proof inside it; gives them back when it fails. */
  async catchUp(timeoutMs: number): Promise<FenceResult> {
    try {
      return await this.#proveHeld(timeoutMs);
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  async #proveHeld(timeoutMs: number, inFreeze: InFreeze = {}): Promise<FenceResult> {
    const { switchPoint } = inFreeze;
    const started = this.#o.now();
    // Snapshots need a transaction kept open on each side: the marker method, on a held target connection.
    let snapshots = false;
    try {
      const { held, method } = await this.#ready();
      snapshots = switchPoint !== undefined && method === 'marker' && held.target !== undefined;
      return await this.#prove(held, method, started, timeoutMs, { ...inFreeze, switchPoint: snapshots ? switchPoint : undefined });
    } catch (error) {
      // Only a timeout leaves the connections in a known state (and no transaction open); after anything else they are not reused.
      const timedOut = error instanceof CodedError && error.code === ErrorCode.FenceTimeout;
      if (!timedOut || snapshots) for (const h of [this.#held?.source, this.#held?.target]) if (h) h.failed = true;
      throw error;
    }
  }

  async #prove(
    held: { source: Held; target: Held | undefined },
    method: 'marker' | 'slot-lsn',
    started: number,
    timeoutMs: number,
    { switchPoint, along }: InFreeze,
  ): Promise<FenceResult> {
    const limit = { deadline: started + timeoutMs, timeoutMs, method };
    const source = held.source.client;
    const target: Queryable = held.target?.client ?? this.#o.target;
    const proved: Proved = method === 'marker' ? await this.#proveByMarker(source, target, limit, { snapshots: switchPoint !== undefined, along }) : await this.#proveBySlot(source, limit);
    if (switchPoint) {
      const { snapshots } = proved;
      if (snapshots && held.target) {
        this.#handOver(switchPoint, { source: { snapshot: snapshots.source, client: held.source.client }, target: { snapshot: snapshots.target, client: held.target.client } });
      } else {
        // Their transactions are open: never back to a pool (the verifier exports its own instead).
        for (const h of [held.source, held.target]) if (h) h.failed = true;
      }
    }
    const result: FenceResult = { method, lsn: proved.lsn, ...(proved.targetLsn ? { targetLsn: proved.targetLsn } : {}), elapsedMs: Math.round(this.#o.now() - started) };
    this.#log.info(result, 'fence proved');
    return result;
  }

  /**
   * The marker is written on the source and looked for on the target from the same moment: it can only
   * arrive there after everything the source committed before it, so finding it is the proof, and the
   * polls overlap the marker's own round trip (whose answer brings the source LSN).
   */
  async #proveByMarker(
    source: pg.PoolClient,
    target: Queryable,
    limit: Limit,
    { snapshots, along }: { snapshots: boolean; along: Along | undefined },
  ): Promise<Proved> {
    const token = randomUUID();
    // The token is our own UUID (hex and dashes): inlined, the poll is one simple-protocol message.
    // The insert position is read after the statement's snapshot, which shows the marker: it lies past it.
    // With snapshots, the polls run in one read-committed transaction (each statement sees what is
    // committed when it starts) and the one that sees the marker exports its own snapshot (the function
    // runs per row found): still one statement per poll, the first one opening the transaction.
    const select = `SELECT pg_current_wal_insert_lsn()::text AS at${snapshots ? ', pg_export_snapshot() AS snapshot' : ''} FROM public.${FENCE_TABLE} WHERE token = '${token}'`;
    let opened = !snapshots;
    const poll = async () => {
      const text = opened ? select : `${SNAPSHOT_TRANSACTION}; ${select}`;
      opened = true;
      return lastRow<{ at: string; snapshot?: string }>(await target.query(text));
    };
    let written: { lsn: string; snapshot?: string } | undefined;
    let failed = false;
    const writing = this.#writeMarker(source, token, { snapshot: snapshots, along }).then(
      (lsn) => (written = lsn),
      (error: unknown) => {
        failed = true;
        throw error;
      },
    );
    const seeking = this.#until(poll, limit, {
      stopped: () => failed,
      upTo: () => written?.lsn ?? 'the marker',
    });
    // Both ended before anything is thrown: no poll runs on the held connection once it is given back.
    const [wrote, seen] = await Promise.allSettled([writing, seeking]);
    if (wrote.status === 'rejected') throw wrote.reason;
    if (seen.status === 'rejected') throw seen.reason;
    const found = seen.value as { at: string; snapshot?: string };
    const taken = wrote.value.snapshot && found.snapshot ? { snapshots: { source: wrote.value.snapshot, target: found.snapshot } } : {};
    return { lsn: wrote.value.lsn, targetLsn: found.at, ...taken };
  }

  /** The held connections go to `holder` with their transactions open; the fence forgets them (close() releases nothing). */
  #handOver(holder: SwitchPointHolder, held: { source: HeldSnapshot; target: HeldSnapshot }): void {
    const mine = this.#held;
    this.#held = undefined;
    holder.adopt(held);
    for (const h of [mine?.source, mine?.target]) h?.client.off('error', h.onError);
  }

  async #proveBySlot(source: pg.PoolClient, limit: Limit): Promise<{ lsn: string }> {
    const slot = await resolveSlot(source, this.#o.slot);
    if (!slot.ok) throw new CodedError(ErrorCode.LagUnknown, `Cannot prove replication by slot position: ${slot.reason}.`);
    const lsn = await this.#currentLsn(source);
    const wanted = lsnToBigInt(lsn);
    await this.#until(
      async () => {
        const { rows } = await source.query<{ lsn: string | null }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot.slot]);
        const confirmed = rows[0]?.lsn;
        return confirmed != null && lsnToBigInt(confirmed) >= wanted ? confirmed : undefined;
      },
      limit,
      { stopped: () => false, upTo: () => lsn },
    );
    return { lsn };
  }

  /** Asks `ask` every poll interval until it answers (its answer), `stopped()` says to give up (undefined), or the deadline passes (FenceTimeout). */
  async #until<T>(ask: () => Promise<T | undefined>, limit: Limit, o: { stopped: () => boolean; upTo: () => string }): Promise<T | undefined> {
    for (;;) {
      if (o.stopped()) return undefined;
      const answer = await ask();
      if (answer !== undefined) return answer;
      if (this.#o.now() >= limit.deadline) {
        const lsn = o.upTo();
        throw new CodedError(
          ErrorCode.FenceTimeout,
          `The target did not confirm the source's writes up to ${lsn} within ${Math.round(limit.timeoutMs / 1000)} s (${limit.method}). ` +
            'Replication may be stalled: check the migration status and lag; writes stay frozen only as long as the freeze budget allows.',
          { details: { method: limit.method, lsn, timeoutMs: limit.timeoutMs } },
        );
      }
      await this.#o.sleep(this.#o.pollIntervalMs);
    }
  }

  async #choose(source: Queryable, target: Queryable): Promise<'marker' | 'slot-lsn'> {
    if (this.#o.method !== 'auto') return this.#o.method;
    const exists = async (db: Queryable) =>
      (await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`public.${FENCE_TABLE}`])).rows[0]?.t != null;
    const [onSource, onTarget] = await Promise.all([exists(source), exists(target)]);
    if (onSource && onTarget) return 'marker';
    this.#log.warn({ onSource, onTarget }, 'fence marker table missing; proving by slot position');
    return 'slot-lsn';
  }

  /**
   * Inserts the marker in its own read-write transaction (works under a read-only-database freeze) and
   * returns the LSN after its commit, in one round trip: one simple-protocol message of five statements
   * (the token is our own UUID, inlined). With `snapshot`, the message ends in a transaction, left
   * open, that exports the source's snapshot just after the marker.
   */
  async #writeMarker(source: pg.PoolClient, token: string, o: { snapshot: boolean; along: Along | undefined }): Promise<{ lsn: string; snapshot?: string }> {
    try {
      // Flush this commit (and all WAL before it) now: the walsender only sends flushed WAL, and with
      // synchronous_commit=off the WAL writer could hold it for wal_writer_delay. `local` waits for no standby.
      const after = o.snapshot ? `${SNAPSHOT_TRANSACTION}; SELECT pg_current_wal_lsn()::text AS lsn, pg_export_snapshot() AS snapshot` : 'SELECT pg_current_wal_lsn()::text AS lsn';
      const results: unknown = await source.query(
        `BEGIN READ WRITE; SET LOCAL synchronous_commit = 'local'; INSERT INTO public.${FENCE_TABLE} (token) VALUES ('${token}'); COMMIT; ${after}${o.along ? `; ${o.along.sql}` : ''}`,
      );
      const all = (Array.isArray(results) ? results : [results]) as pg.QueryResult[];
      if (o.along) o.along.settle({ rows: all.at(-1)?.rows ?? [] });
      const row = (o.along ? all.at(-2) : all.at(-1))?.rows[0] as { lsn?: string; snapshot?: string } | undefined;
      return { lsn: row?.lsn ?? '0/0', ...(row?.snapshot ? { snapshot: row.snapshot } : {}) };
    } catch (error) {
      // A failed statement leaves the rest of the message skipped and the transaction open (aborted).
      await source.query('ROLLBACK').catch(() => undefined);
      throw new CodedError(ErrorCode.DatabaseUnavailable, `Could not write the fence marker on the source: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /**
   * The end of all WAL inserted so far. Not pg_current_wal_lsn(): that is the *write* position, which
   * under synchronous_commit=off can lie before commits already acknowledged to clients, and a fence
   * on it could pass before those commits reach the target.
   */
  async #currentLsn(source: pg.PoolClient): Promise<string> {
    const { rows } = await source.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    return rows[0]?.lsn ?? '0/0';
  }
}


/**
 * The transaction a switch-point snapshot is exported in, kept open until the verifier has imported it.
 * Read committed is enough: pg_export_snapshot() exports the snapshot of the statement calling it, and
 * the importing transaction (the verifier's) is the repeatable-read one.
 */
const SNAPSHOT_TRANSACTION = 'BEGIN READ ONLY';

/** The first row of the last statement's result of a simple-protocol message. */
function lastRow<T>(results: unknown): T | undefined {
  const last = (Array.isArray(results) ? results.at(-1) : results) as pg.QueryResult<T & pg.QueryResultRow> | undefined;
  return last?.rows[0];
}

/** Checks a connection out of `pool`, noting a failure (an error event on a checked-out client would otherwise be unhandled). */
async function hold(pool: Pick<pg.Pool, 'connect'>): Promise<Held> {
  const client = await pool.connect();
  const held: Held = {
    client,
    failed: false,
    onError: () => {
      held.failed = true;
    },
  };
  client.on('error', held.onError);
  return held;
}
