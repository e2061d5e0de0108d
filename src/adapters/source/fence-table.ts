/**
 * The fence's marker table on the source (`pgcutover_fence`): created before DigitalOcean starts the
 * migration, so its schema copy brings the table to the target, where the fence looks for its markers.
 */
import type { Queryable } from './lag-probe.js';

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
    COMMENT ON TABLE public.${FENCE_TABLE} IS 'pgcutover: marker rows proving replication reached the target; safe to drop after the cutover';
    ${DROP_NOTIFY_TRIGGER}`);
}

/**
 * An earlier version notified the marker's arrival from a trigger on the fence table. A notifying
 * transaction takes a global lock and queues the notification at commit: under 800 writes/s the
 * marker's commit took 11–13 ms with the trigger firing, 2–4 ms without, and polling the target every
 * millisecond saw the marker sooner than the notification came (bench/cutover.bench.ts): the fence
 * polls, and installing it removes that trigger.
 */
const DROP_NOTIFY_TRIGGER = `DROP TRIGGER IF EXISTS ${FENCE_TABLE}_notify ON public.${FENCE_TABLE}; DROP FUNCTION IF EXISTS public.${FENCE_TABLE}_notify();`;
