/** What the replication adapters share: how they reach a database, and how they name what they create. */
import type pg from 'pg';
import { CodedError, ErrorCode } from '../../errors.js';
import type { PostgresTarget } from '../source/connect.js';

/** A pool (or a stand-in with the same calls): queries, and connections held across a freeze. */
export type Pool = Pick<pg.Pool, 'query' | 'connect'>;

/**
 * A name for a replication object of one session: `<prefix><first 20 letters/digits of the session id>`,
 * lower case (slot names allow only [a-z0-9_]) and well under 63 bytes. Objects are found again by
 * prefix, so a crashed run's objects are removed too.
 */
export function objectName(prefix: string, sessionId: string): string {
  return `${prefix}${sessionId.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 20)}`;
}

/** libpq conninfo for a subscription (every value quoted): it is stored in the subscriber's catalog, never logged. */
export function conninfo(target: PostgresTarget, applicationName: string): string {
  const fields: Record<string, string> = {
    host: target.host,
    port: String(target.port),
    dbname: target.database,
    user: target.user,
    password: target.password.reveal(),
    sslmode: target.sslmode ?? 'prefer',
    connect_timeout: '10',
    application_name: applicationName,
  };
  return Object.entries(fields)
    .map(([key, value]) => `${key}='${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`)
    .join(' ');
}

/** SQL condition on `n` (pg_namespace): the schemas of user tables, not the system's. */
export const USER_SCHEMA = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`;

/** The slots of the current database whose name starts with `prefix`, with the walsender using each. */
export async function slotsByPrefix(db: Pick<pg.Pool, 'query'>, prefix: string): Promise<{ name: string; activePid: number | null }[]> {
  const { rows } = await db.query<{ slot_name: string; active_pid: number | null }>(
    'SELECT slot_name, active_pid FROM pg_replication_slots WHERE starts_with(slot_name, $1) AND database = current_database()',
    [prefix],
  );
  return rows.map((r) => ({ name: r.slot_name, activePid: r.active_pid }));
}

/**
 * Drops the slots named by `prefix`, ending a walsender still holding one (it lets go once its
 * subscriber is disabled or gone). Returns how many were dropped.
 */
export async function dropSlots(db: Pick<pg.Pool, 'query'>, prefix: string, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let dropped = 0;
  for (;;) {
    const slots = await slotsByPrefix(db, prefix);
    if (slots.length === 0) return dropped;
    for (const slot of slots) {
      if (slot.activePid !== null) {
        await db.query('SELECT pg_terminate_backend($1)', [slot.activePid]);
        continue;
      }
      // Another dropper (or the walsender taking it again) may win the race: looked at again next round.
      const gone = await db.query('SELECT pg_drop_replication_slot($1)', [slot.name]).then(
        () => true,
        () => false,
      );
      if (gone) dropped += 1;
    }
    if (Date.now() > deadline) {
      throw new CodedError(
        ErrorCode.CutoverStepFailed,
        `Replication slot(s) ${slots.map((s) => s.name).join(', ')} still in use after ${Math.round(timeoutMs / 1000)} s; drop them by hand with pg_drop_replication_slot.`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
