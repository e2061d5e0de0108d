/**
 * The in-database write freeze, for proxies that cannot pause (Pgpool-II, HTTP routers without a hold)
 * and for the connection-parameters strategy. It locks the writers out: `ALTER ROLE … NOLOGIN`, then
 * `pg_terminate_backend` of their sessions. A read-only default (`default_transaction_read_only`) is
 * not enough: any client can `SET` it off or `BEGIN READ WRITE`, and no role but a superuser can be
 * kept from that. Locked out are, with read-only-roles, the application roles and every login role
 * that is a member of one (it could write with their privileges); with read-only-database, every
 * login role that can write in the database, or in any other database DigitalOcean migrates with it
 * (`databases`): by a table privilege (its own, a role's it belongs to,
 * PUBLIC's, ownership) or a SECURITY DEFINER function it may execute. Never superusers (nothing holds
 * them), never the bot's own role. Resume gives LOGIN back to exactly the roles that had it.
 *
 * The locked roles with their previous LOGIN are the freeze record. It is handed to `onRecord` before
 * anything changes, so the cutover engine can persist it; a fresh instance given that record resumes
 * exactly after a crash. Walsenders (logical replication) and the bot's own sessions are never
 * terminated. A record written by the earlier read-only-default mechanism (`previous`) is restored too.
 */
import type pg from 'pg';
import { z } from 'zod';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import { connect, type PostgresTarget } from '../source/connect.js';
import type { WriteFreeze } from '../../domain/ports/writes.js';

const SETTING = 'default_transaction_read_only';

/**
 * What the freeze changes, recorded before it changes it. `frozenAt`: server time of the freeze;
 * `locked`: the roles made NOLOGIN and whether each could log in before; `previous` (records of the
 * earlier mechanism only): default_transaction_read_only per role (or for the database when role is
 * absent), null when it was not set; sessions started after `frozenAt` are ended when it is restored.
 */
const freezeRecordSchema = z.object({
  method: z.enum(['read-only-roles', 'read-only-database']),
  database: z.string(),
  /** read-only-database: every database whose writers are locked out (`database` first); absent in older records. */
  databases: z.array(z.string()).optional(),
  frozenAt: z.string(),
  locked: z.array(z.object({ role: z.string(), login: z.boolean() })).default([]),
  previous: z.array(z.object({ role: z.string().optional(), value: z.string().nullable() })).default([]),
});
export type InDatabaseFreezeRecord = z.infer<typeof freezeRecordSchema>;
type LockedRole = InDatabaseFreezeRecord['locked'][number];

/** A record read back from the store (JSON), or undefined when there is none; a malformed one is an error. */
export function parseFreezeRecord(raw: unknown): InDatabaseFreezeRecord | undefined {
  if (raw === null || raw === undefined) return undefined;
  const parsed = freezeRecordSchema.safeParse(typeof raw === 'string' ? JSON.parse(raw) : raw);
  if (!parsed.success) throw new CodedError(ErrorCode.Internal, `The stored in-database freeze record is malformed: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

export interface InDatabaseFreezeOptions {
  /** The bot's admin connection to the database whose writes are frozen. */
  connection: PostgresTarget;
  method: 'read-only-roles' | 'read-only-database';
  /** The application roles (read-only-roles). */
  roles?: readonly string[];
  /** The database (read-only-database); defaults to the connection's database. */
  database?: string;
  /** read-only-database: the session's other migrated databases, whose writers are locked out too. */
  databases?: readonly string[];
  /** A record persisted by an earlier process: resume() restores from it. */
  record?: InDatabaseFreezeRecord;
  /** Called with the record before the first change, so it can be persisted. */
  onRecord?: (record: InDatabaseFreezeRecord) => void | Promise<void>;
  /** How long to wait for terminated sessions to go away (ms). */
  terminateTimeoutMs?: number;
  logger: Logger;
}

export class InDatabaseFreeze implements WriteFreeze {
  readonly clientImpact = 'connections-dropped' as const;
  readonly limitations: readonly string[];
  readonly #options: InDatabaseFreezeOptions;
  readonly #log: Logger;
  readonly #database: string;
  #record: InDatabaseFreezeRecord | undefined;

  constructor(options: InDatabaseFreezeOptions) {
    if (options.method === 'read-only-roles' && (options.roles ?? []).length === 0) {
      throw new CodedError(ErrorCode.FreezeFailed, 'The read-only-roles freeze needs at least one application role');
    }
    this.#options = options;
    this.#database = options.database ?? options.connection.database;
    this.#record = options.record;
    this.#log = options.logger.child({ name: 'proxy', freeze: options.method });
    this.limitations = [
      'Clients get errors while frozen, reads included: the locked roles\' sessions are ended and logging in fails with "role … is not permitted to log in".',
      options.method === 'read-only-roles'
        ? 'Login roles that are members of an application role are locked out too: they could write with its privileges.'
        : 'Every non-superuser login role that can write in the database is locked out of the whole cluster (all its databases) while frozen.',
      'Superusers cannot be held: their writes go on.',
    ];
  }

  /** The freeze record (for the engine to persist); undefined when not frozen by this instance. */
  get record(): InDatabaseFreezeRecord | undefined {
    return this.#record;
  }

  async freeze(): Promise<void> {
    await this.#withClient(async (client) => {
      let record = this.#record;
      if (!record) {
        const { rows } = await client.query<{ now: string }>('SELECT now()::text AS now');
        const databases = [this.#database, ...(this.#options.databases ?? []).filter((d) => d !== this.#database)];
        const locked = this.#options.method === 'read-only-roles' ? await this.#appRoles(client) : await this.#everyDatabaseWriters(client, databases);
        record = {
          method: this.#options.method,
          database: this.#database,
          ...(this.#options.method === 'read-only-database' ? { databases } : {}),
          frozenAt: rows[0]?.now ?? new Date().toISOString(),
          locked,
          previous: [],
        };
        await this.#remember(record);
      }
      const roles = record.locked.map((l) => l.role);
      for (const role of roles) await client.query(`ALTER ROLE ${ident(client, role)} NOLOGIN`);
      // Twice: a session that passed its login check just before NOLOGIN may show up only after the first pass.
      const where = record.method === 'read-only-roles' ? 'usename = ANY($1::text[])' : 'usename = ANY($1::text[]) AND datname = ANY($2::text[])';
      const params = record.method === 'read-only-roles' ? [roles] : [roles, record.databases ?? [record.database]];
      const ended = (await this.#terminate(client, where, params)) + (await this.#terminate(client, where, params));
      this.#log.info({ method: record.method, database: record.database, roles, ended }, 'writers locked out (NOLOGIN), their sessions ended');
    });
  }

  async resume(): Promise<void> {
    const record = this.#record;
    if (!record) {
      // The record is persisted before anything changes: without one, this freeze changed nothing.
      this.#log.info('resume: no freeze record, nothing to undo');
      return;
    }
    await this.#withClient(async (client) => {
      for (const { role, login } of record.locked) {
        if (login) await client.query(`ALTER ROLE ${ident(client, role)} LOGIN`);
      }
      if (record.previous.length > 0) await this.#restoreSettings(client, record);
      this.#record = undefined;
      this.#log.info({ unlocked: record.locked.filter((l) => l.login).map((l) => l.role) }, 'write freeze undone');
    });
  }

  /** A record of the earlier mechanism: puts each default_transaction_read_only back as it was. */
  async #restoreSettings(client: pg.Client, record: InDatabaseFreezeRecord): Promise<void> {
    for (const entry of record.previous) {
      const target = entry.role
        ? `ROLE ${ident(client, entry.role)}`
        : `DATABASE ${ident(client, record.database)}`;
      await client.query(
        entry.value === null
          ? `ALTER ${target} RESET ${SETTING}`
          : `ALTER ${target} SET ${SETTING} = ${client.escapeLiteral(entry.value)}`,
      );
    }
    // Sessions opened during the freeze started read-only: end them so they reconnect writable.
    const roles = record.previous.flatMap((p) => (p.role ? [p.role] : []));
    const ended =
      record.method === 'read-only-roles'
        ? await this.#terminate(client, 'usename = ANY($1::text[]) AND backend_start >= $2::timestamptz', [roles, record.frozenAt])
        : await this.#terminate(client, 'datname = $1 AND usename <> current_user AND backend_start >= $2::timestamptz', [
            record.database,
            record.frozenAt,
          ]);
    this.#log.info({ restored: record.previous.length, ended }, 'read-only defaults of an earlier freeze restored');
  }

  /** Whether this freeze is in force now: a role it locked out cannot log in (or an earlier freeze's setting is `on`). */
  async isFrozen(): Promise<boolean> {
    const record = this.#record;
    if (!record) return false;
    return this.#withClient(async (client) => {
      const unlocked = record.locked.filter((l) => l.login).map((l) => l.role);
      const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_roles WHERE rolname = ANY($1::text[]) AND NOT rolcanlogin', [
        unlocked,
      ]);
      if ((rows[0]?.n ?? 0) > 0) return true;
      for (const entry of record.previous) {
        if (isOn(entry.role ? await roleSetting(client, entry.role) : await databaseSetting(client, record.database))) return true;
      }
      return false;
    });
  }

  async #remember(record: InDatabaseFreezeRecord): Promise<void> {
    this.#record = record;
    await this.#options.onRecord?.(record);
  }

  /**
   * The application roles (refused: missing, superuser, the bot's own) and every non-superuser login
   * role that is a member of one of them, each with whether it can log in now.
   */
  async #appRoles(client: pg.Client): Promise<LockedRole[]> {
    const roles = [...new Set(this.#options.roles ?? [])];
    const { rows: named } = await client.query<{ rolname: string; rolsuper: boolean; rolcanlogin: boolean; me: boolean }>(
      'SELECT rolname, rolsuper, rolcanlogin, rolname = current_user AS me FROM pg_roles WHERE rolname = ANY($1::text[])',
      [roles],
    );
    const problems: string[] = [];
    for (const role of roles) {
      const row = named.find((r) => r.rolname === role);
      if (!row) problems.push(`role "${role}" does not exist`);
      else if (row.rolsuper) {
        problems.push(`role "${role}" is a superuser: nothing in the database can stop its writes. Use a non-superuser application role, or a proxy that can pause`);
      } else if (row.me) problems.push(`role "${role}" is the bot's own role; freezing it would stop the cutover itself`);
    }
    if (problems.length > 0) {
      throw new CodedError(ErrorCode.FreezeFailed, `Cannot freeze writes in the database: ${problems.join('; ')}.`, {
        details: { roles: roles.join(',') },
      });
    }
    // A member can write with the role's privileges (inherited, or after SET ROLE): it is locked out too.
    const { rows: members } = await client.query<{ role: string; login: boolean }>(
      `SELECT m.rolname AS role, m.rolcanlogin AS login FROM pg_roles m
        WHERE m.rolcanlogin AND NOT m.rolsuper AND m.rolname <> current_user AND NOT m.rolname = ANY($1::text[])
          AND EXISTS (SELECT 1 FROM pg_roles a WHERE a.rolname = ANY($1::text[]) AND pg_has_role(m.oid, a.oid, 'MEMBER'))
        ORDER BY m.rolname`,
      [roles],
    );
    return [...roles.map((role) => ({ role, login: named.find((r) => r.rolname === role)?.rolcanlogin ?? false })), ...members];
  }

  /** The writers of every database (each database's catalogs answer for its tables), each role once. */
  async #everyDatabaseWriters(client: pg.Client, databases: readonly string[]): Promise<LockedRole[]> {
    const others = await Promise.all(
      databases.slice(1).map(async (database) => {
        const other = await connect({ ...this.#options.connection, database }, { applicationName: 'pgcutover-freeze', queryTimeoutMs: 15_000 });
        try {
          return await this.#databaseWriters(other);
        } finally {
          await other.end().catch(() => undefined);
        }
      }),
    );
    const found = [...(await this.#databaseWriters(client)), ...others.flat()];
    return [...new Map(found.map((r) => [r.role, r])).values()].sort((a, b) => a.role.localeCompare(b.role));
  }

  /**
   * Every non-superuser login role but the bot's that can write in this database: it, or a role it
   * belongs to, may insert, update, delete or truncate a table (privileges from grants, PUBLIC or
   * ownership), or may execute a SECURITY DEFINER function.
   */
  async #databaseWriters(client: pg.Client): Promise<LockedRole[]> {
    const { rows } = await client.query<{ role: string; login: boolean }>(
      `WITH writers AS (
         SELECT r.oid FROM pg_roles r
          WHERE EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
                           AND (has_table_privilege(r.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
                                OR has_any_column_privilege(r.oid, c.oid, 'INSERT, UPDATE')))
             OR EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                         WHERE p.prosecdef AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
                           AND has_function_privilege(r.oid, p.oid, 'EXECUTE')))
       SELECT l.rolname AS role, l.rolcanlogin AS login FROM pg_roles l
        WHERE l.rolcanlogin AND NOT l.rolsuper AND l.rolname <> current_user
          AND EXISTS (SELECT 1 FROM writers w WHERE pg_has_role(l.oid, w.oid, 'MEMBER'))
        ORDER BY l.rolname`,
    );
    return rows;
  }

  /** Ends matching client sessions (never walsenders, never this one) and waits until they are gone. */
  async #terminate(client: pg.Client, where: string, params: unknown[]): Promise<number> {
    // Two steps: in one query the planner may call pg_terminate_backend before the other filters.
    const { rows } = await client.query<{ pid: number; me: number }>(
      `SELECT pid, pg_backend_pid() AS me FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND ${where}`,
      params,
    );
    const pids = rows.filter((r) => r.pid !== r.me).map((r) => r.pid);
    if (pids.length > 0) await client.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
    const deadline = Date.now() + (this.#options.terminateTimeoutMs ?? 5000);
    while (pids.length > 0) {
      const left = await client.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])',
        [pids],
      );
      if ((left.rows[0]?.n ?? 0) === 0) break;
      if (Date.now() > deadline) {
        throw new CodedError(ErrorCode.FreezeFailed, `${left.rows[0]?.n} session(s) did not end after pg_terminate_backend`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return pids.length;
  }

  async #withClient<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
    let client: pg.Client;
    try {
      // In the frozen database: which roles can write there is a question about its tables.
      client = await connect({ ...this.#options.connection, database: this.#database }, { applicationName: 'pgcutover-freeze', queryTimeoutMs: 15_000 });
    } catch (cause) {
      const { host, port } = this.#options.connection;
      const database = this.#database;
      throw new CodedError(
        ErrorCode.DatabaseUnavailable,
        `Cannot connect to ${host}:${port}/${database} for the write freeze: ${(cause as Error).message}`,
        { cause, details: { host, port, database } },
      );
    }
    try {
      // Under an earlier freeze's read-only database default this session starts read-only: ALTER ROLE must not.
      await client.query(`SET ${SETTING} = off`);
      return await run(client);
    } catch (error) {
      if (error instanceof CodedError) throw error;
      throw new CodedError(ErrorCode.FreezeFailed, `Write freeze (${this.#options.method}) failed: ${(error as Error).message}`, {
        cause: error,
      });
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

const ident = (client: pg.Client, name: string) => client.escapeIdentifier(name);
const isOn = (value: string | null) => value !== null && ['on', 'true', 'yes', '1'].includes(value.toLowerCase());

async function roleSetting(client: pg.Client, role: string): Promise<string | null> {
  const { rows } = await client.query<{ setconfig: string[] | null }>(
    `SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
      WHERE r.rolname = $1 AND s.setdatabase = 0`,
    [role],
  );
  return settingIn(rows[0]?.setconfig);
}

async function databaseSetting(client: pg.Client, database: string): Promise<string | null> {
  const { rows } = await client.query<{ setconfig: string[] | null }>(
    `SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
      WHERE d.datname = $1 AND s.setrole = 0`,
    [database],
  );
  return settingIn(rows[0]?.setconfig);
}

function settingIn(config: string[] | null | undefined): string | null {
  const entry = config?.find((c) => c.startsWith(`${SETTING}=`));
  return entry === undefined ? null : entry.slice(SETTING.length + 1);
}
