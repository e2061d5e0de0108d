/**
 * Lag of DO's migration, measured on the source: the migration's logical slot in pg_replication_slots
 * (bytes = pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)) joined to pg_stat_replication
 * (replay_lag). Which slot: the configured one, or with `auto` the only active logical slot of the
 * source database. Anything else is an explicit unknown with the reason; unknown is never zero.
 */
import type pg from 'pg';
import type { LagProbe, LagSample } from '../../domain/ports/replication.js';

/** What the probe needs from the source: queries (a pg.Pool or pg.Client). */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.Client, 'query'>;

export interface LagProbeOptions {
  source: Queryable;
  /** The slot name, or `auto` (profile `replication.slot`). */
  slot: string;
  now?: () => Date;
}

interface SlotRow {
  slot_name: string;
  active: boolean;
  wal_status: string | null;
  confirmed_flush_lsn: string | null;
  bytes: string | null;
  replay_lag_seconds: number | null;
  current_lsn: string;
}

const SLOTS_SQL = `
  SELECT s.slot_name, s.active, s.wal_status, s.confirmed_flush_lsn::text AS confirmed_flush_lsn,
         pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::text AS bytes,
         extract(epoch FROM r.replay_lag)::float8 AS replay_lag_seconds,
         pg_current_wal_lsn()::text AS current_lsn
    FROM pg_replication_slots s
    LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
   WHERE s.slot_type = 'logical' AND s.database = current_database()
     -- The bot's own (the split-brain watch's, active while it reads) are never the migration's.
     AND NOT starts_with(s.slot_name, 'pgcutover_')
   ORDER BY s.slot_name`;

/** One look at the source: the slot's lag, and the source's WAL position (bytes since 0/0) when the query ran. */
export interface SlotReading {
  sample: LagSample;
  walPosition: number | null;
}

export class SlotLagProbe implements LagProbe {
  readonly #source: Queryable;
  readonly #slot: string;
  readonly #now: () => Date;
  /** The previous known sample, for a time estimate from the apply rate when replay_lag is NULL. */
  #previous: { at: Date; confirmed: bigint; slot: string } | undefined;

  constructor(options: LagProbeOptions) {
    this.#source = options.source;
    this.#slot = options.slot;
    this.#now = options.now ?? (() => new Date());
  }

  async measure(): Promise<LagSample> {
    return (await this.read()).sample;
  }

  /** The lag and, from the same query, the WAL position (null when the source has no logical slot to join). */
  async read(): Promise<SlotReading> {
    const at = this.#now();
    let rows: SlotRow[];
    try {
      rows = (await this.#source.query<SlotRow>(SLOTS_SQL)).rows;
    } catch (error) {
      return { sample: { known: false, at, reason: `the source cannot be queried: ${(error as Error).message}` }, walPosition: null };
    }
    const walPosition = rows[0] ? Number(lsnToBigInt(rows[0].current_lsn)) : null;
    return { sample: this.#sample(rows, at), walPosition };
  }

  #sample(rows: SlotRow[], at: Date): LagSample {
    const picked = pickSlot(rows, this.#slot);
    if (!picked.ok) return { known: false, at, reason: picked.reason };
    const row = picked.row;
    if (row.wal_status === 'lost') {
      return { known: false, at, reason: `slot "${row.slot_name}" was invalidated (wal_status=lost): the migration must restart` };
    }
    if (row.confirmed_flush_lsn === null || row.bytes === null) {
      return { known: false, at, reason: `slot "${row.slot_name}" has no confirmed position yet` };
    }
    const bytes = Math.max(0, Number(row.bytes));
    const confirmed = lsnToBigInt(row.confirmed_flush_lsn);
    let seconds: number | null = null;
    if (bytes === 0) seconds = 0;
    else if (row.replay_lag_seconds !== null) seconds = row.replay_lag_seconds;
    else if (this.#previous && this.#previous.slot === row.slot_name) {
      const dt = (at.getTime() - this.#previous.at.getTime()) / 1000;
      const applied = Number(confirmed - this.#previous.confirmed);
      if (dt > 0 && applied > 0) seconds = bytes / (applied / dt);
    }
    this.#previous = { at, confirmed, slot: row.slot_name };
    return { known: true, at, slot: row.slot_name, slotActive: row.active, bytes, seconds };
  }
}

function pickSlot(rows: SlotRow[], wanted: string): { ok: true; row: SlotRow } | { ok: false; reason: string } {
  if (wanted !== 'auto') {
    const row = rows.find((r) => r.slot_name === wanted);
    return row
      ? { ok: true, row }
      : { ok: false, reason: `the configured slot "${wanted}" does not exist on the source database` };
  }
  const active = rows.filter((r) => r.active);
  if (active.length === 1 && active[0]) return { ok: true, row: active[0] };
  if (active.length === 0) {
    return {
      ok: false,
      reason:
        rows.length === 0
          ? 'no logical replication slot on the source database: has the migration started?'
          : `no active logical slot (inactive: ${rows.map((r) => r.slot_name).join(', ')}): is the migration connected?`,
    };
  }
  return {
    ok: false,
    reason: `${active.length} active logical slots (${active.map((r) => r.slot_name).join(', ')}): set replication.slot in the profile`,
  };
}

/** `16/B374D848` → a comparable integer. */
export function lsnToBigInt(lsn: string): bigint {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi ?? '0'}`) << 32n) + BigInt(`0x${lo ?? '0'}`);
}

/** Resolves the slot the same way the probe does (configured or the only active logical slot), or a reason. */
export async function resolveSlot(source: Queryable, wanted: string): Promise<{ ok: true; slot: string } | { ok: false; reason: string }> {
  const { rows } = await source.query<SlotRow>(SLOTS_SQL);
  const picked = pickSlot(rows, wanted);
  return picked.ok ? { ok: true, slot: picked.row.slot_name } : picked;
}
