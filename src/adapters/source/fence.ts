/**
 * The fence: proof that everything committed on the source before the call is applied on the target.
 * Preferred: a marker row written on the source (table `pgcutover_fence`, created by installFence()
 * before DO starts the migration so DO's schema copy includes it) and awaited on the target.
 * Fallback: the migration slot's confirmed_flush_lsn passing the source LSN taken at the call.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import { lsnToBigInt, resolveSlot, type Queryable } from './lag-probe.js';
import type { Fence, FenceResult } from '../../domain/ports/replication.js';

export const FENCE_TABLE = 'pgcutover_fence';

/**
 * Creates the marker table on the source (idempotent). Call it before DO starts the migration: DO copies
 * the schema at the start, so a table created later would not exist on the target.
 */
export async function installFence(source: Queryable): Promise<void> {
  // CREATE … IF NOT EXISTS is not safe against itself: two starts sharing a source can both pass the
  // check and collide on pg_type. One simple-protocol message (no parameters) is one implicit
  // transaction on one connection, so the transaction-level advisory lock serialises the installs.
  await source.query(`SELECT pg_advisory_xact_lock(hashtext('pgcutover:install-fence'));
    CREATE TABLE IF NOT EXISTS public.${FENCE_TABLE} (
      id          bigserial PRIMARY KEY,
      token       uuid NOT NULL UNIQUE,
      written_at  timestamptz NOT NULL DEFAULT now()
    );
    COMMENT ON TABLE public.${FENCE_TABLE} IS 'pgcutover: marker rows proving replication reached the target; safe to drop after the cutover'`);
}

export interface FenceOptions {
  source: Queryable & Pick<pg.Pool, 'connect'>;
  target: Queryable;
  /** The migration slot (profile `replication.slot`, `auto` = the only active logical slot). */
  slot: string;
  logger: Logger;
  /** `auto` (default): marker when the table exists on both sides, else slot-lsn. */
  method?: 'auto' | 'marker' | 'slot-lsn';
  pollIntervalMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export class ReplicationFence implements Fence {
  readonly #o: Required<Omit<FenceOptions, 'logger'>>;
  readonly #log: Logger;

  constructor(options: FenceOptions) {
    this.#o = {
      method: 'auto',
      pollIntervalMs: 20,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      now: () => performance.now(),
      ...options,
    };
    this.#log = options.logger.child({ name: 'fence' });
  }

  async prove(timeoutMs: number): Promise<FenceResult> {
    const started = this.#o.now();
    const deadline = started + timeoutMs;
    const method = await this.#choose();
    let lsn: string;
    let done: () => Promise<boolean>;
    if (method === 'marker') {
      const token = randomUUID();
      lsn = await this.#writeMarker(token);
      done = async () =>
        (await this.#o.target.query(`SELECT 1 FROM public.${FENCE_TABLE} WHERE token = $1`, [token])).rows.length > 0;
    } else {
      const slot = await resolveSlot(this.#o.source, this.#o.slot);
      if (!slot.ok) throw new CodedError(ErrorCode.LagUnknown, `Cannot prove replication by slot position: ${slot.reason}.`);
      lsn = await this.#currentLsn();
      const wanted = lsnToBigInt(lsn);
      done = async () => {
        const { rows } = await this.#o.source.query<{ lsn: string | null }>(
          'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
          [slot.slot],
        );
        const confirmed = rows[0]?.lsn;
        return confirmed != null && lsnToBigInt(confirmed) >= wanted;
      };
    }
    for (;;) {
      if (await done()) {
        const result: FenceResult = { method, lsn, elapsedMs: Math.round(this.#o.now() - started) };
        this.#log.info(result, 'fence proved');
        return result;
      }
      if (this.#o.now() >= deadline) {
        throw new CodedError(
          ErrorCode.FenceTimeout,
          `The target did not confirm the source's writes up to ${lsn} within ${Math.round(timeoutMs / 1000)} s (${method}). ` +
            'Replication may be stalled: check the migration status and lag; writes stay frozen only as long as the freeze budget allows.',
          { details: { method, lsn, timeoutMs } },
        );
      }
      await this.#o.sleep(this.#o.pollIntervalMs);
    }
  }

  async #choose(): Promise<'marker' | 'slot-lsn'> {
    if (this.#o.method !== 'auto') return this.#o.method;
    const exists = async (db: Queryable) =>
      (await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`public.${FENCE_TABLE}`])).rows[0]?.t != null;
    const [onSource, onTarget] = await Promise.all([exists(this.#o.source), exists(this.#o.target)]);
    if (onSource && onTarget) return 'marker';
    this.#log.warn({ onSource, onTarget }, 'fence marker table missing; proving by slot position');
    return 'slot-lsn';
  }

  /** Inserts the marker in its own read-write transaction (works under a read-only-database freeze) and returns the LSN after its commit. */
  async #writeMarker(token: string): Promise<string> {
    const client = await this.#o.source.connect();
    try {
      await client.query('BEGIN READ WRITE');
      // Flush this commit (and all WAL before it) now: the walsender only sends flushed WAL, and with
      // synchronous_commit=off the WAL writer could hold it for wal_writer_delay. `local` waits for no standby.
      await client.query("SET LOCAL synchronous_commit = 'local'");
      await client.query(`INSERT INTO public.${FENCE_TABLE} (token) VALUES ($1)`, [token]);
      await client.query('COMMIT');
      const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      return rows[0]?.lsn ?? '0/0';
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw new CodedError(ErrorCode.DatabaseUnavailable, `Could not write the fence marker on the source: ${(error as Error).message}`, {
        cause: error,
      });
    } finally {
      client.release();
    }
  }

  /**
   * The end of all WAL inserted so far. Not pg_current_wal_lsn(): that is the *write* position, which
   * under synchronous_commit=off can lie before commits already acknowledged to clients, and a fence
   * on it could pass before those commits reach the target.
   */
  async #currentLsn(): Promise<string> {
    const { rows } = await this.#o.source.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    return rows[0]?.lsn ?? '0/0';
  }
}
