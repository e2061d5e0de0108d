/**
 * PgBouncer (1.18+) through its admin console. Freeze = `PAUSE <db>` (queries wait in cl_waiting, no
 * client errors in transaction pooling), confirmed from a second connection; repoint = rewrite the db's
 * line in the %include'd databases file atomically, RELOAD, verify with SHOW DATABASES (RELOAD says
 * success even when the file is bad, so a mismatch puts the old file back: pgbouncer-repoint.ts);
 * resume = `RESUME <db>`.
 *
 * The console speaks the simple query protocol only: never pass parameters, never set statement_timeout
 * (it is a startup parameter PgBouncer rejects), check every command tag (WAIT_CLOSE bug), never send
 * WAIT_CLOSE. A pause outlives the admin connection, so resume() is stateless: a fresh driver resumes
 * a database another (crashed) process paused.
 *
 * Nothing slow inside the freeze: freeze, repoint and resume run on two admin connections opened by
 * prepare() (or on first use) and kept until close(), so a cutover sends PAUSE + one SHOW DATABASES,
 * RELOAD + one SHOW DATABASES (sent together: one round trip), RESUME + one SHOW DATABASES, and opens
 * no connection in between; a run sends RELOAD, SHOW DATABASES and RESUME together (repointAndResume).
 * prepare(to) also writes the repoint's databases file ahead, so that the file's part of the repoint
 * inside the freeze is one rename.
 */
import pg from 'pg';
import type { Logger } from '../../log.js';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Secret } from '../../secret.js';
import { checkIdent, databaseRows, drainState, pools, reload, resumeEntry, showConfig, simple, sum, type DatabaseRow, type DrainState } from './pgbouncer-console.js';
export type { DrainState } from './pgbouncer-console.js';
import { ConsoleConnections } from './pgbouncer-connections.js';
import { pgbouncerPreflight, type PreflightCheck } from './pgbouncer-preflight.js';
export type { PreflightCheck } from './pgbouncer-preflight.js';
import { DatabasesFileRepoint } from './pgbouncer-repoint.js';
import type { Endpoint } from '../../domain/ports/writes.js';
import type { ProxyAdmin, ProxyStatus } from './proxy-admin.js';

export interface PgBouncerAdminOptions {
  admin: { host: string; port: number; user: string; password?: Secret | undefined };
  /** The database name clients use in PgBouncer (its line in the databases file). */
  database: string;
  /** The absolute path of the %include'd [databases] file. */
  databasesFile: string;
  /** How long PAUSE may take to drain before the freeze is abandoned (RESUME) and fails. */
  pauseTimeoutSeconds: number;
  /** Limit on each admin query other than PAUSE, and on connecting (ms). */
  queryTimeoutMs?: number;
  logger: Logger;
}


export class PgBouncerAdmin implements ProxyAdmin {
  readonly kind = 'pgbouncer' as const;
  readonly canPause = true;
  readonly clientImpact = 'queries-wait' as const;
  readonly limitations: readonly string[];

  readonly #options: PgBouncerAdminOptions;
  readonly #db: string;
  readonly #log: Logger;
  readonly #console: ConsoleConnections;
  /** What freeze() and repoint() check before acting, read by prepare(): the entry is pausable, and PgBouncer's config. */
  #checked: { config: Map<string, string> } | undefined;
  readonly #repoint: DatabasesFileRepoint;

  constructor(options: PgBouncerAdminOptions) {
    this.#db = checkIdent(options.database, 'PgBouncer database name');
    this.#options = options;
    this.#log = options.logger.child({ name: 'proxy', proxy: 'pgbouncer', database: this.#db });
    this.#console = new ConsoleConnections(options.admin, this.#queryTimeout, this.#log);
    this.#repoint = new DatabasesFileRepoint({ file: options.databasesFile, own: this.#db, queryTimeoutMs: this.#queryTimeout, logger: this.#log });
    this.limitations = [
      'PAUSE holds queries only in transaction pooling; a session-pooled database cannot be paused while clients stay connected.',
      `A transaction still open ${options.pauseTimeoutSeconds} s after PAUSE aborts the freeze (the database is resumed).`,
      "Clients held longer than PgBouncer's query_wait_timeout (default 120 s) are disconnected with an error.",
      'TLS toward the target is a global PgBouncer setting (server_tls_sslmode); the bot checks it but does not change it.',
    ];
  }

  async inspect(): Promise<ProxyStatus> {
    return this.#console.withFresh(async (admin) => {
      const row = await this.#databaseRow(admin);
      const poolRows = await pools(admin, this.#db, this.#queryTimeout);
      const config = await showConfig(admin, this.#queryTimeout);
      const version = await simple(admin, 'SHOW VERSION', this.#queryTimeout)
        .then((r) => String(Object.values(r.rows[0] ?? {})[0] ?? 'pgbouncer'))
        .catch(() => 'pgbouncer');
      if (!row) {
        return { pointsTo: null, frozen: false, healthy: false, detail: `${version}: no database "${this.#db}"` };
      }
      const mode = row.pool_mode ?? config.get('pool_mode') ?? 'unknown';
      const active = sum(poolRows, 'cl_active');
      const waiting = sum(poolRows, 'cl_waiting');
      return {
        pointsTo: { host: row.host ?? 'unix socket', port: row.port, database: row.database },
        frozen: row.paused === 1,
        healthy: row.disabled === 0,
        detail:
          `${version}, ${mode} pooling, ${active + waiting} clients (${waiting} waiting)` +
          `${row.paused === 1 ? ', paused' : ''}${row.disabled === 1 ? ', disabled' : ''}`,
      };
    });
  }

  /** What the proxy looks like for the pause right now (a fresh driver after a restart can call this). */
  async drainState(): Promise<DrainState> {
    return this.#console.withFresh((admin) => this.#drainState(admin));
  }

  /**
   * Opens the two admin connections and runs the checks freeze() needs (the entry exists and is not
   * session-pooled; SHOW CONFIG for repoint's TLS check), so nothing of this happens inside the freeze;
   * given `to`, stages the repoint to it (stageRepoint). Optional: freeze() calls it on first use.
   * Calling it again re-runs the checks on the same connections.
   */
  async prepare(to?: Endpoint): Promise<void> {
    const [checker] = await Promise.all([this.#console.warm('checker'), this.#console.warm('pauser')]);
    const row = await this.#databaseRow(checker);
    if (!row) throw this.#noDatabase();
    const config = await showConfig(checker, this.#queryTimeout);
    if ((row.pool_mode ?? config.get('pool_mode')) === 'session') {
      throw new CodedError(
        ErrorCode.FreezeFailed,
        `PgBouncer database "${this.#db}" uses session pooling: PAUSE would never finish while clients stay connected. Switch it to transaction pooling first.`,
      );
    }
    this.#checked = { config };
    if (to) await this.stageRepoint(new Map([[this.#db, to]]));
  }

  /**
   * Before a freeze: the databases file repointEntries(targets) will write, written and flushed beside
   * the current one, so that inside the freeze the rewrite is one rename. The repoint does the whole
   * rewrite instead when the file or the targets changed since. Replaces an earlier stage.
   */
  async stageRepoint(targets: ReadonlyMap<string, Endpoint>): Promise<void> {
    await this.#repoint.stage(targets);
  }

  /**
   * PAUSE on the warm pauser connection; PgBouncer answers only once every server connection of the
   * database is closed, so one SHOW DATABASES on the checker confirms it (paused, no server connection).
   * Idempotent: PAUSE on a paused database answers once it is drained. PAUSE not answered within the
   * pause timeout, refused, answered with another tag (a WAIT_CLOSE left behind), or not confirmed:
   * RESUME from the checker, then destroy the pauser (pgbouncer#715), and throw FreezeFailed.
   */
  async freeze(): Promise<void> {
    await (await this.freezeThenConfirm()).confirmed;
  }

  /** freeze(), resolving once PAUSE is answered; the SHOW DATABASES check settles `confirmed`. */
  async freezeThenConfirm(): Promise<{ confirmed: Promise<void> }> {
    if (!this.#checked) await this.prepare();
    const checker = await this.#console.warm('checker');
    const pauser = await this.#console.warm('pauser');
    const started = Date.now();
    const timeoutMs = this.#options.pauseTimeoutSeconds * 1000;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      simple(pauser, `PAUSE ${this.#db}`).then(
        (result) => ({ tag: result.command }),
        (error: Error) => ({ error }),
      ),
      new Promise<{ timedOut: true }>((resolve) => {
        timer = setTimeout(() => resolve({ timedOut: true }), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    // Give up: RESUME from the checker first, then destroy the pauser (PAUSE/RESUME race,
    // pgbouncer#715: a PAUSE still waiting when RESUME arrives would otherwise hang forever).
    const abandon = async (error: unknown): Promise<never> => {
      await this.#resumeOn(checker).catch((resumeError: unknown) =>
        this.#log.error({ err: resumeError }, 'freeze abort: RESUME failed; the database may still be paused'),
      );
      this.#console.discard('pauser', pauser);
      this.#log.warn({ err: error }, 'freeze abandoned and resumed');
      throw error;
    };
    if ('timedOut' in outcome) {
      const row = await this.#databaseRow(checker).catch(() => undefined);
      const busy = row?.current_connections ?? 0;
      return abandon(
        new CodedError(
          ErrorCode.FreezeFailed,
          `PAUSE ${this.#db} did not drain within ${this.#options.pauseTimeoutSeconds} s: ${busy} server connection(s) still busy (a long transaction?). The database was resumed.`,
          { details: { serverConnections: busy } },
        ),
      );
    }
    if ('error' in outcome) {
      return abandon(new CodedError(ErrorCode.FreezeFailed, `PgBouncer refused PAUSE ${this.#db}: ${outcome.error.message}`, { cause: outcome.error }));
    }
    if (outcome.tag !== 'PAUSE') {
      return abandon(
        new CodedError(
          ErrorCode.FreezeFailed,
          `PgBouncer answered PAUSE with "${outcome.tag}" instead of PAUSE (a WAIT_CLOSE left behind?); the pause was abandoned`,
          { details: { tag: outcome.tag } },
        ),
      );
    }
    const confirmed = (async () => {
      const row = await this.#databaseRow(checker);
      if (!row || row.paused !== 1 || row.current_connections !== 0) {
        throw new CodedError(
          ErrorCode.FreezeFailed,
          `PgBouncer answered PAUSE ${this.#db} but SHOW DATABASES shows ${row ? `paused=${row.paused}, ${row.current_connections} server connection(s)` : 'no entry'}; the pause was abandoned`,
          { details: { paused: row?.paused ?? null, serverConnections: row?.current_connections ?? null } },
        );
      }
      this.#log.info({ ms: Date.now() - started }, 'freeze: paused and drained');
    })().catch(abandon);
    // Awaited by the caller; never an unhandled rejection meanwhile.
    confirmed.catch(() => undefined);
    return { confirmed };
  }

  async resume(): Promise<void> {
    const admin = await this.#console.warm('checker');
    await this.#resumeOn(admin);
    const row = await this.#databaseRow(admin);
    if (row && row.paused !== 0) {
      throw new CodedError(ErrorCode.ProxyAdminFailed, `PgBouncer still shows "${this.#db}" paused after RESUME`);
    }
    this.#log.info('resumed');
  }

  /**
   * Rewrites the database's line (host, port, dbname; user and password when `to` has them; every other
   * key kept), RELOADs, and checks SHOW DATABASES. On a mismatch the previous file is put back and
   * reloaded, and ProxyVerifyFailed is thrown. The pause state is left as it was.
   */
  async repoint(to: Endpoint): Promise<void> {
    await this.repointEntries(new Map([[this.#db, to]]));
  }

  /** repoint(), with RESUME sent right behind its RELOAD and SHOW DATABASES (Router.repointAndResume). */
  async repointAndResume(to: Endpoint): Promise<void> {
    await this.repointEntries(new Map([[this.#db, to]]), { resume: [this.#db] });
  }

  /**
   * repoint() for several entries of the same databases file at once: one rewrite, one RELOAD, one
   * SHOW DATABASES that must show every entry where it was sent (else the previous file is put back).
   * With `resume`, a RESUME of each of those entries leaves with them: PgBouncer resumes right after
   * the RELOAD, and a mismatch then means writes resumed where the entries still pointed.
   */
  async repointEntries(targets: ReadonlyMap<string, Endpoint>, o: { resume?: readonly string[] } = {}): Promise<void> {
    const admin = await this.#console.warm('checker');
    // The config prepare() read, when it ran: the bot itself never changes server_tls_sslmode.
    const config = async () => this.#checked?.config ?? (await showConfig(admin, this.#queryTimeout));
    await this.#repoint.repoint(admin, targets, { config, ...o });
  }

  /** Every entry of SHOW DATABASES by name, on a fresh connection (which entries a cutover covers). */
  async databaseRows(): Promise<Map<string, DatabaseRow>> {
    return this.#console.withFresh((admin) => this.#databaseRows(admin));
  }

  /**
   * Checks before a cutover, without traffic impact (pgbouncer-preflight.ts): admin access, the entry
   * and its pooling mode, the include file, TLS mode, and, when `target` carries a user and password, a
   * real login to the target through PgBouncer via a temporary probe entry.
   */
  async preflight(target?: Endpoint): Promise<PreflightCheck[]> {
    return this.#console.withFresh((admin) =>
      pgbouncerPreflight(
        {
          admin,
          database: this.#db,
          options: this.#options,
          queryTimeoutMs: this.#queryTimeout,
          row: () => this.#databaseRow(admin),
          reload: () => this.#reload(admin),
          probeClient: (name) => new pg.Client(this.#console.config(name)),
        },
        target,
      ),
    );
  }

  /** Clients waiting in the database's pools now: one SHOW POOLS on the warm checker (counted while a fence runs). */
  async clientsWaiting(): Promise<number> {
    return sum(await pools(await this.#console.warm('checker'), this.#db, this.#queryTimeout), 'cl_waiting');
  }

  /** One SHOW VERSION on the warm checker (opened first if need be; the connect is not counted). */
  async roundTripMs(): Promise<number> {
    const checker = await this.#console.warm('checker');
    const started = performance.now();
    await simple(checker, 'SHOW VERSION', this.#queryTimeout);
    return performance.now() - started;
  }

  /** Ends every admin connection, the warm ones included; a later call opens new ones. */
  async close(): Promise<void> {
    await this.#repoint.close();
    this.#checked = undefined;
    await this.#console.close();
  }

  // --- internals ---

  get #queryTimeout(): number {
    return this.#options.queryTimeoutMs ?? 10_000;
  }

  #reload(admin: pg.Client): Promise<void> {
    return reload(admin, this.#queryTimeout);
  }

  #resumeOn(admin: pg.Client): Promise<void> {
    return resumeEntry(admin, this.#db, this.#queryTimeout);
  }

  async #drainState(admin: pg.Client): Promise<DrainState> {
    const state = await drainState(admin, this.#db, this.#queryTimeout);
    if (!state) throw this.#noDatabase();
    return state;
  }

  async #databaseRow(admin: pg.Client): Promise<DatabaseRow | undefined> {
    return (await this.#databaseRows(admin)).get(this.#db);
  }

  #databaseRows(admin: pg.Client): Promise<Map<string, DatabaseRow>> {
    return databaseRows(admin, this.#db, this.#queryTimeout);
  }

  #noDatabase(): CodedError {
    return new CodedError(ErrorCode.ProxyAdminFailed, `PgBouncer has no database "${this.#db}" (SHOW DATABASES)`);
  }
}
