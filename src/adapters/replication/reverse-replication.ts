/**
 * Reverse replication, target -> source, starting exactly at the switch point.
 *
 * Where the stream starts. A subscription on an existing logical slot streams the transactions that
 * commit after the slot's confirmed position. Before the fence the target still applies source writes
 * (DO's subscription); streamed back, the source would apply them a second time (duplicate keys, a
 * stuck apply worker). After the resume the applications write on the target, and none of that may
 * be missed. So the slot is created in prepare(), before the freeze (creating it waits for running
 * transactions and builds a snapshot: tens of ms that never belong inside a freeze), and the switch
 * point is only *read* inside the freeze: establish() takes the target's WAL insert position once the
 * fence proved source == target and before the repoint/resume (one round trip on a held connection,
 * beside the other steps). The insert position, not the write position: DO's apply worker commits
 * asynchronously, so its last commit may be inserted but not yet written. attach(), after the resume,
 * advances the slot just past that position (the forward rows before it are skipped, every application
 * write after it is kept) and subscribes the source on the slot (create_slot = false, copy_data = false).
 * The publication is created in prepare() too: it must exist before the switch point for pgoutput to read it.
 *
 * Loops (PostgreSQL 15 has no `origin = none`). A publication publishes every change, also changes
 * applied by a subscription. With DO's forward stream still running, a row written on the target and
 * applied on the source by the reverse subscription would be decoded by DO's publication on the source
 * and applied on the target again (a duplicate key: DO's apply worker stops and retries forever), and a
 * row written directly on the source would go forward and come back. Hence attach() only after the
 * forward stream is stopped (DO's migration stopped): nothing is lost by stopping it, since after the
 * switch the source is frozen against the application roles and the fence proved that every source
 * write before the freeze is on the target; the only forward rows after the fence are none (the bot
 * writes no fence marker on the source after the switch). A write made directly on the source between
 * the resume and the forward stop would reach the target and come back (a duplicate on the source, the
 * reverse apply stops): the source stays frozen against the application roles, and the split-brain
 * watch reports such a write. Until attach(), target writes accumulate in
 * the slot (status() reports the retained WAL). A rollback "to try again" then needs a new forward
 * migration: DO's is stopped.
 *
 * The source's in-database freeze does not stop the reverse apply: the apply worker writes even under a
 * database-level default_transaction_read_only (checked on PostgreSQL 15).
 *
 * Rollback: freeze the target (the engine's write freeze), `rollback.fence` (a marker row written on
 * the target, awaited on the source: the fence with its roles swapped), `rollback.sequences` (the target's
 * sequence values onto the source, past every id the target handed out), repoint, resume.
 *
 * On the target, DO's admin user is no superuser: it can publish the tables it owns (FOR TABLE) when it
 * has the REPLICATION attribute; a superuser publishes FOR ALL TABLES. The subscription on the source
 * needs a superuser (PostgreSQL 15). prepare() says which right is missing instead of failing later.
 */
import pg from 'pg';
import type { ReverseAnchor, ReverseCapability, ReverseDropResult, ReverseReplication, ReverseStatus } from '../../domain/ports/reverse-replication.js';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { PostgresTarget } from '../source/connect.js';
import { ReplicationFence } from '../source/fence.js';
import { sequenceCopier } from '../source/sequences.js';
import { USER_SCHEMA, conninfo, dropSlots, objectName, type Pool } from './common.js';

/** Every reverse object (publication, slot, subscription) is named `pgcutover_rev_<session>`. */
export const REVERSE_PREFIX = 'pgcutover_rev_';

export interface ReverseReplicationOptions {
  /** The source: subscribes after the switch. Its user must be a superuser (PostgreSQL 15). */
  source: Pool;
  /** The target: publishes; its user needs REPLICATION, and superuser or ownership of the tables. */
  target: Pool;
  /** How the source's subscription reaches the target (kept in the source's pg_subscription). */
  targetConnection: PostgresTarget;
  sessionId: string;
  /**
   * Set for every migrated database but the profile's own: slot names are unique in the whole target
   * cluster, so each database's objects are named `pgcutover_rev_<session>_<database>`.
   */
  database?: string;
  /** Steps added to each sequence copied back (as the forward copy's margin). */
  sequenceMargin: number;
  logger: Logger;
}

interface TargetFacts {
  wal_level: string;
  rolsuper: boolean;
  rolreplication: boolean;
  free_slots: number;
  can_create: boolean;
  tables: string[];
  not_owned: string[];
  no_identity: string[];
}

/** User tables: ordinary tables (partitions included, as pgoutput publishes leaves) outside the system schemas. */
const USER_TABLES = `c.relkind = 'r' AND ${USER_SCHEMA}`;

const TARGET_FACTS = `
  SELECT current_setting('wal_level') AS wal_level, r.rolsuper, r.rolreplication,
         current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int AS free_slots,
         has_database_privilege(current_database(), 'CREATE') AS can_create,
         coalesce(array_agg(t.name ORDER BY t.name) FILTER (WHERE t.name IS NOT NULL), '{}') AS tables,
         coalesce(array_agg(t.name ORDER BY t.name) FILTER (WHERE NOT t.owned), '{}') AS not_owned,
         coalesce(array_agg(t.name ORDER BY t.name) FILTER (WHERE NOT t.identity), '{}') AS no_identity
    FROM pg_roles r
    LEFT JOIN (
      SELECT format('%I.%I', n.nspname, c.relname) AS name, pg_has_role(c.relowner, 'USAGE') AS owned,
             c.relreplident = 'f' OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident))
               OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)) AS identity
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE ${USER_TABLES}) t ON true
   WHERE r.rolname = current_user
   GROUP BY r.rolsuper, r.rolreplication`;

/** What stops reverse replication, in words; empty when nothing does. */
function missingRights(t: TargetFacts, sourceSuperuser: boolean): string[] {
  const reasons: string[] = [];
  const list = (names: string[]) => `${names.slice(0, 5).join(', ')}${names.length > 5 ? `, … (${names.length})` : ''}`;
  if (t.wal_level !== 'logical') reasons.push(`the target's wal_level is ${t.wal_level}, not logical`);
  if (!t.rolsuper && !t.rolreplication) reasons.push("the target user has neither SUPERUSER nor REPLICATION, so it cannot keep a replication slot");
  if (t.free_slots < 1) reasons.push('the target has no free replication slot (max_replication_slots)');
  if (!t.rolsuper && !t.can_create) reasons.push('the target user may not create publications in the database (CREATE privilege)');
  if (!t.rolsuper && t.not_owned.length > 0) reasons.push(`the target user does not own ${list(t.not_owned)}, so it cannot publish them`);
  if (t.no_identity.length > 0) reasons.push(`${list(t.no_identity)} ha${t.no_identity.length === 1 ? 's' : 've'} no primary key or replica identity: publishing would make their updates and deletes fail on the target`);
  if (!sourceSuperuser) reasons.push('the source user is not a superuser, which a subscription needs on PostgreSQL 15');
  return reasons;
}

export class PgReverseReplication implements ReverseReplication {
  readonly #o: ReverseReplicationOptions;
  readonly #log: Logger;
  readonly #name: string;
  #held: pg.PoolClient | undefined;
  /** prepare() created the slot in this process (a fence's reading can then be the switch point). */
  #slotMade = false;
  readonly rollback: ReverseReplication['rollback'];

  constructor(options: ReverseReplicationOptions) {
    this.#o = options;
    const suffix = options.database === undefined ? '' : `_${options.database.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 30)}`;
    this.#name = `${objectName(REVERSE_PREFIX, options.sessionId)}${suffix}`;
    this.#log = options.logger.child({ name: 'reverse-replication', object: this.#name });
    this.rollback = {
      fence: new ReplicationFence({ source: options.target, target: options.source, slot: this.#name, logger: options.logger }),
      sequences: sequenceCopier({ source: options.target, target: options.source, margin: options.sequenceMargin }),
    };
  }

  /** The publication's, the slot's and the subscription's name. */
  get name(): string {
    return this.#name;
  }

  async capability(): Promise<ReverseCapability> {
    return (await this.#capability()).capability;
  }

  async prepare(): Promise<ReverseCapability> {
    const { capability, tables } = await this.#capability();
    if (!capability.ok || !capability.publication) {
      this.#log.warn({ reasons: capability.reasons }, 'reverse replication not possible');
      return capability;
    }
    // A slot left by an earlier attempt starts before this switch point: never reused.
    await this.#dropSlot();
    await this.#createPublication(capability.publication, tables);
    await this.#o.target.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [this.#name]);
    this.#slotMade = true;
    this.#held ??= await this.#o.target.connect();
    return capability;
  }

  async #capability(): Promise<{ capability: ReverseCapability; tables: string[] }> {
    const [facts, sourceRole] = await Promise.all([
      this.#o.target.query<TargetFacts>(TARGET_FACTS),
      this.#o.source.query<{ rolsuper: boolean }>('SELECT rolsuper FROM pg_roles WHERE rolname = current_user'),
    ]).catch((cause: unknown) => {
      throw new CodedError(ErrorCode.DatabaseUnavailable, `Could not check whether the target can replicate back: ${(cause as Error).message}`, { cause });
    });
    const t = facts.rows[0];
    if (!t) throw new CodedError(ErrorCode.Internal, 'The target did not describe its own user.');
    const reasons = missingRights(t, sourceRole.rows[0]?.rolsuper === true);
    const capability: ReverseCapability = reasons.length > 0 ? { ok: false, reasons, publication: null } : { ok: true, reasons: [], publication: t.rolsuper ? 'all-tables' : 'table-list' };
    return { capability, tables: t.tables };
  }

  async establish(proven?: string): Promise<ReverseAnchor | null> {
    if (proven !== undefined && this.#slotMade) {
      // The fence read a position past everything it proved, on the target, as it found the marker: no round trip.
      await this.close();
      const anchor = { slot: this.#name, lsn: proven, elapsedMs: 0 };
      this.#log.info(anchor, 'switch point taken for the reverse stream (the fence read it)');
      return anchor;
    }
    const started = performance.now();
    const client = this.#held ?? (await this.#o.target.connect());
    this.#held = undefined;
    let failed = false;
    try {
      const { rows } = await client.query<{ lsn: string; slot: boolean }>(
        'SELECT pg_current_wal_insert_lsn()::text AS lsn, EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) AS slot',
        [this.#name],
      );
      const row = rows[0];
      if (!row?.slot) return null;
      const anchor = { slot: this.#name, lsn: row.lsn, elapsedMs: Math.round(performance.now() - started) };
      this.#log.info(anchor, 'switch point taken for the reverse stream');
      return anchor;
    } catch (cause) {
      failed = true;
      throw new CodedError(ErrorCode.CutoverStepFailed, `Could not read the target's switch point for reverse replication: ${(cause as Error).message}`, { cause });
    } finally {
      client.release(failed ? true : undefined);
    }
  }

  async attach(from: string): Promise<void> {
    const { rows } = await this.#o.source.query<{ enabled: boolean }>(
      'SELECT subenabled AS enabled FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())',
      [this.#name],
    );
    const existing = rows[0];
    if (existing?.enabled) return;
    // The forward stream is DO's subscription on the target: while it runs, the source's rows would loop back.
    const forward = await this.#o.target.query<{ subname: string }>(
      'SELECT subname FROM pg_subscription WHERE subenabled AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())',
    );
    if (forward.rows.length > 0) {
      throw new CodedError(
        ErrorCode.CutoverStepFailed,
        `The forward replication still runs on the target (subscription ${forward.rows.map((r) => r.subname).join(', ')}): stop DigitalOcean's migration before replicating back, or every row would come back to the target.`,
        { details: { forward: forward.rows.length } },
      );
    }
    // Forward rows applied before the switch point are skipped (a slot is never moved back). Moved one
    // byte past it: when the last forward commit record ends exactly at the switch point (nothing else was
    // written on the target since), a slot moved *to* it still sends that transaction back (a duplicate
    // key on the source, the reverse apply stuck; caught by the adapter's test). Every application write
    // starts at or after the switch point, so its commit record lies beyond that byte.
    const slot = await this.#o.target.query<{ behind: boolean }>('SELECT confirmed_flush_lsn <= $2::pg_lsn AS behind FROM pg_replication_slots WHERE slot_name = $1', [this.#name, from]);
    if (!slot.rows[0]) {
      throw new CodedError(ErrorCode.CutoverStepFailed, `The reverse replication slot ${this.#name} is gone from the target: the target's writes since the switch cannot be carried back.`);
    }
    if (slot.rows[0].behind) await this.#o.target.query('SELECT pg_replication_slot_advance($1, $2::pg_lsn + 1)', [this.#name, from]);
    const ident = pg.escapeIdentifier(this.#name);
    const literal = pg.escapeLiteral(conninfo(this.#o.targetConnection, 'pgcutover-reverse'));
    try {
      // Created disabled, its origin set past the switch point, then enabled: the apply worker asks for
      // the stream from there, so the start does not rest on the slot's position alone (moved there,
      // the slot still sent a forward transaction committed well before it now and then, under load).
      if (!existing) {
        await this.#o.source.query(
          `CREATE SUBSCRIPTION ${ident} CONNECTION ${literal} PUBLICATION ${ident} WITH (create_slot = false, slot_name = ${ident}, copy_data = false, enabled = false)`,
        );
      }
      await this.#o.source.query(
        `SELECT pg_replication_origin_advance('pg_' || oid, $2::pg_lsn + 1) FROM pg_subscription
          WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        [this.#name, from],
      );
      await this.#o.source.query(`ALTER SUBSCRIPTION ${ident} ENABLE`);
    } catch (cause) {
      // The message may quote the connection string: only the SQLSTATE goes out.
      const code = (cause as { code?: string }).code ?? 'unknown';
      throw new CodedError(ErrorCode.CutoverStepFailed, `Could not create the reverse subscription on the source (SQLSTATE ${code}).`, { details: { sqlstate: code } });
    }
    this.#log.info('reverse subscription created on the source, from the switch point');
  }

  async status(): Promise<ReverseStatus> {
    const { rows } = await this.#o.target.query<{ active: boolean; retained: string | null; lag: string | null }>(
      `SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained,
              pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag
         FROM pg_replication_slots WHERE slot_name = $1`,
      [this.#name],
    );
    const row = rows[0];
    if (!row) return { slot: false, streaming: false, retainedWalBytes: null, lagBytes: null };
    const bytes = (v: string | null) => (v === null ? null : Math.max(0, Number(v)));
    return { slot: true, streaming: row.active, retainedWalBytes: bytes(row.retained), lagBytes: bytes(row.lag) };
  }

  async drop(): Promise<ReverseDropResult> {
    await this.close();
    this.#slotMade = false;
    const result = await dropReverseReplication(this.#o.source, this.#o.target, this.#name);
    this.#log.info(result, 'reverse replication removed');
    return result;
  }

  close(): Promise<void> {
    this.#held?.release();
    this.#held = undefined;
    return Promise.resolve();
  }

  async #dropSlot(): Promise<void> {
    const { rows } = await this.#o.target.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [this.#name]);
    if (rows.length > 0) await dropSlots(this.#o.target, this.#name);
  }

  async #createPublication(kind: 'all-tables' | 'table-list', tables: string[]): Promise<void> {
    const { rows } = await this.#o.target.query<{ puballtables: boolean }>('SELECT puballtables FROM pg_publication WHERE pubname = $1', [this.#name]);
    const ident = pg.escapeIdentifier(this.#name);
    // Table names come from format('%I.%I'): already quoted. A list kept from an earlier attempt is brought up to date.
    const list = tables.join(', ');
    if (rows[0]) {
      if (!rows[0].puballtables && tables.length > 0) await this.#o.target.query(`ALTER PUBLICATION ${ident} SET TABLE ${list}`);
      return;
    }
    const what = kind === 'all-tables' ? ' FOR ALL TABLES' : tables.length > 0 ? ` FOR TABLE ${list}` : '';
    await this.#o.target.query(`CREATE PUBLICATION ${ident}${what}`);
  }
}

/**
 * Removes every reverse object whose name starts with `prefix` (one session's name, or REVERSE_PREFIX
 * for all, after a crash): the source's subscriptions (disabled and detached from their slot first, so
 * this works even when the target is gone), then the target's slots and publications. Idempotent.
 */
export async function dropReverseReplication(source: Pool, target: Pool, prefix: string): Promise<ReverseDropResult> {
  const subscriptions = await reverseSubscriptions(source, prefix);
  for (const subname of subscriptions) {
    const ident = pg.escapeIdentifier(subname);
    await source.query(`ALTER SUBSCRIPTION ${ident} DISABLE`);
    await source.query(`ALTER SUBSCRIPTION ${ident} SET (slot_name = NONE)`);
    await source.query(`DROP SUBSCRIPTION IF EXISTS ${ident}`);
  }
  const slots = await dropSlots(target, prefix);
  const publications = await reversePublications(target, prefix);
  for (const pubname of publications) await target.query(`DROP PUBLICATION IF EXISTS ${pg.escapeIdentifier(pubname)}`);
  return { subscriptions: subscriptions.length, slots, publications: publications.length };
}

/** The source's subscriptions in the current database whose name starts with `prefix`. */
export async function reverseSubscriptions(source: Pick<Pool, 'query'>, prefix: string): Promise<string[]> {
  const { rows } = await source.query<{ subname: string }>(
    'SELECT subname FROM pg_subscription WHERE starts_with(subname, $1) AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())',
    [prefix],
  );
  return rows.map((r) => r.subname);
}

/** The target's publications whose name starts with `prefix`. */
export async function reversePublications(target: Pick<Pool, 'query'>, prefix: string): Promise<string[]> {
  const { rows } = await target.query<{ pubname: string }>('SELECT pubname FROM pg_publication WHERE starts_with(pubname, $1)', [prefix]);
  return rows.map((r) => r.pubname);
}
