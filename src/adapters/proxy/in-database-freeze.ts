/**
 * The in-database write freeze, for proxies that cannot pause (Pgpool-II, HTTP routers without a hold)
 * and for the connection-parameters strategy: `ALTER ROLE … SET default_transaction_read_only = on`
 * for the application roles (or `ALTER DATABASE …`), then `pg_terminate_backend` of their sessions so
 * they reconnect read-only. Resume puts back exactly the previous setting of each role (or the
 * database) and ends the sessions that started read-only during the freeze.
 *
 * The previous settings are the freeze record. It is handed to `onRecord` before anything changes, so
 * the cutover engine can persist it; a fresh instance given that record resumes exactly after a crash.
 * Walsenders (logical replication) and the bot's own sessions are never terminated.
 */
import type pg from 'pg';
import { z } from 'zod';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import { connect, type PostgresTarget } from '../source/connect.js';
import type { WriteFreeze } from '../../domain/ports/writes.js';

const SETTING = 'default_transaction_read_only';

/**
 * The settings before the freeze. `frozenAt`: server time of the freeze (sessions started after it are
 * read-only and are ended on resume); `previous`: the setting per role (or for the database when role
 * is absent), null when it was not set.
 */
const freezeRecordSchema = z.object({
  method: z.enum(['read-only-roles', 'read-only-database']),
  database: z.string(),
  frozenAt: z.string(),
  previous: z.array(z.object({ role: z.string().optional(), value: z.string().nullable() })),
});
export type InDatabaseFreezeRecord = z.infer<typeof freezeRecordSchema>;

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
  /** A record persisted by an earlier process: resume() restores from it. */
  record?: InDatabaseFreezeRecord;
  /** Called with the record before the first change, so it can be persisted. */
  onRecord?: (record: InDatabaseFreezeRecord) => void | Promise<void>;
  /** How long to wait for terminated sessions to go away (ms). */
  terminateTimeoutMs?: number;
  logger: Logger;
}

export class InDatabaseFreeze implements WriteFreeze {
  readonly clientImpact = 'writes-fail' as const;
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
      'Clients get errors while frozen: open sessions are ended and every write fails with "cannot execute … in a read-only transaction".',
      'A client that runs SET default_transaction_read_only = off (or BEGIN READ WRITE) bypasses the freeze.',
      ...(options.method === 'read-only-database'
        ? [
            "New sessions of the bot itself in that database start read-only too (the bot's existing sessions are kept); its own writes there must SET default_transaction_read_only = off.",
          ]
        : []),
    ];
  }

  /** The freeze record (for the engine to persist); undefined when not frozen by this instance. */
  get record(): InDatabaseFreezeRecord | undefined {
    return this.#record;
  }

  async freeze(): Promise<void> {
    await this.#withClient(async (client) => {
      const { rows } = await client.query<{ now: string; me: string }>('SELECT now()::text AS now, current_user AS me');
      const now = rows[0]?.now ?? new Date().toISOString();
      const me = rows[0]?.me ?? '';
      if (this.#options.method === 'read-only-roles') {
        const roles = [...new Set(this.#options.roles ?? [])];
        await this.#checkRoles(client, roles, me);
        if (!this.#record) {
          const previous = await Promise.all(roles.map(async (role) => ({ role, value: await roleSetting(client, role) })));
          await this.#remember({ method: 'read-only-roles', database: this.#database, frozenAt: now, previous });
        }
        for (const role of roles) await client.query(`ALTER ROLE ${ident(client, role)} SET ${SETTING} = on`);
        const ended = await this.#terminate(client, 'usename = ANY($1::text[])', [roles]);
        this.#log.info({ roles, ended }, 'roles frozen read-only, sessions ended');
      } else {
        await this.#checkDatabase(client);
        if (!this.#record) {
          const value = await databaseSetting(client, this.#database);
          await this.#remember({ method: 'read-only-database', database: this.#database, frozenAt: now, previous: [{ value }] });
        }
        await client.query(`ALTER DATABASE ${ident(client, this.#database)} SET ${SETTING} = on`);
        const ended = await this.#terminate(client, 'datname = $1 AND usename <> current_user', [this.#database]);
        this.#log.info({ database: this.#database, ended }, 'database frozen read-only, sessions ended');
      }
    });
  }

  async resume(): Promise<void> {
    await this.#withClient(async (client) => {
      const record = this.#record;
      if (!record) {
        await this.#resumeWithoutRecord(client);
        return;
      }
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
      this.#record = undefined;
      this.#log.info({ restored: record.previous.length, ended }, 'write freeze undone');
    });
  }

  /** Whether the freeze's setting is in force now (role-level or database-level `on`). */
  async isFrozen(): Promise<boolean> {
    return this.#withClient(async (client) => {
      if (this.#options.method === 'read-only-roles') {
        const values = await Promise.all((this.#options.roles ?? []).map((r) => roleSetting(client, r)));
        return values.some((v) => isOn(v));
      }
      return isOn(await databaseSetting(client, this.#database));
    });
  }

  /** No record (nothing persisted): undo only what is visibly our freeze (`on`), by RESET. */
  async #resumeWithoutRecord(client: pg.Client): Promise<void> {
    if (this.#options.method === 'read-only-roles') {
      for (const role of this.#options.roles ?? []) {
        if (isOn(await roleSetting(client, role))) {
          this.#log.warn({ role }, 'resume without a freeze record: resetting default_transaction_read_only');
          await client.query(`ALTER ROLE ${ident(client, role)} RESET ${SETTING}`);
          await this.#terminate(client, 'usename = $1', [role]);
        }
      }
    } else if (isOn(await databaseSetting(client, this.#database))) {
      this.#log.warn('resume without a freeze record: resetting the database default_transaction_read_only');
      await client.query(`ALTER DATABASE ${ident(client, this.#database)} RESET ${SETTING}`);
      await this.#terminate(client, 'datname = $1 AND usename <> current_user', [this.#database]);
    }
  }

  async #remember(record: InDatabaseFreezeRecord): Promise<void> {
    this.#record = record;
    await this.#options.onRecord?.(record);
  }

  async #checkRoles(client: pg.Client, roles: string[], me: string): Promise<void> {
    const { rows } = await client.query<{ rolname: string; rolsuper: boolean; overrides: string | null }>(
      `SELECT r.rolname, r.rolsuper,
              (SELECT string_agg(coalesce(d.datname, '?'), ', ')
                 FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase
                WHERE s.setrole = r.oid AND s.setdatabase <> 0
                  AND EXISTS (SELECT 1 FROM unnest(s.setconfig) c WHERE c LIKE '${SETTING}=%')) AS overrides
         FROM pg_roles r WHERE r.rolname = ANY($1::text[])`,
      [roles],
    );
    const problems: string[] = [];
    for (const role of roles) {
      const row = rows.find((r) => r.rolname === role);
      if (!row) problems.push(`role "${role}" does not exist`);
      else if (row.rolsuper) {
        problems.push(
          `role "${role}" is a superuser: it can override default_transaction_read_only, so a read-only freeze cannot stop its writes. Use a non-superuser application role, or a proxy that can pause`,
        );
      } else if (role === me) problems.push(`role "${role}" is the bot's own role; freezing it would stop the cutover itself`);
      else if (row.overrides) {
        problems.push(
          `role "${role}" has its own ${SETTING} in database(s) ${row.overrides} (ALTER ROLE … IN DATABASE), which wins over the role-wide freeze`,
        );
      }
    }
    if (problems.length > 0) {
      throw new CodedError(ErrorCode.FreezeFailed, `Cannot freeze writes in the database: ${problems.join('; ')}.`, {
        details: { roles: roles.join(',') },
      });
    }
  }

  async #checkDatabase(client: pg.Client): Promise<void> {
    const { rows } = await client.query<{ exists: boolean; overriding: string | null }>(
      `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists,
              (SELECT string_agg(DISTINCT r.rolname, ', ') FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
                WHERE (s.setdatabase = 0 OR s.setdatabase = (SELECT oid FROM pg_database WHERE datname = $1))
                  AND EXISTS (SELECT 1 FROM unnest(s.setconfig) c WHERE c LIKE '${SETTING}=%')) AS overriding`,
      [this.#database],
    );
    const row = rows[0];
    if (!row?.exists) throw new CodedError(ErrorCode.FreezeFailed, `Database "${this.#database}" does not exist`);
    if (row.overriding) {
      throw new CodedError(
        ErrorCode.FreezeFailed,
        `Cannot freeze database "${this.#database}" read-only: role(s) ${row.overriding} have their own ${SETTING}, which wins over the database setting. Use read-only-roles for them.`,
      );
    }
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
      client = await connect(this.#options.connection, { applicationName: 'pgcutover-freeze', queryTimeoutMs: 15_000 });
    } catch (cause) {
      const { host, port, database } = this.#options.connection;
      throw new CodedError(
        ErrorCode.DatabaseUnavailable,
        `Cannot connect to ${host}:${port}/${database} for the write freeze: ${(cause as Error).message}`,
        { cause, details: { host, port, database } },
      );
    }
    try {
      // Under read-only-database this very session starts read-only too: the bot's own work must not be.
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
