/**
 * The admin console connections of one PgBouncer driver: a fresh one per inspection (withFresh), and
 * two kept warm for a cutover, `pauser` (sends PAUSE) and `checker` (confirms, repoints, resumes, and
 * RESUMEs to abandon a PAUSE), so nothing connects inside the freeze. close() ends them all.
 */
import pg from 'pg';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Secret } from '../../secret.js';
import { destroy } from './pgbouncer-console.js';

export type WarmRole = 'pauser' | 'checker';

export interface ConsoleLogin {
  host: string;
  port: number;
  user: string;
  password?: Secret | undefined;
}

export class ConsoleConnections {
  readonly #login: ConsoleLogin;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  readonly #open = new Set<pg.Client>();
  readonly #warm = new Map<WarmRole, { pending: Promise<pg.Client>; client?: pg.Client }>();

  constructor(login: ConsoleLogin, timeoutMs: number, log: Logger) {
    this.#login = login;
    this.#timeoutMs = timeoutMs;
    this.#log = log;
  }

  /** The client settings for `database` on PgBouncer's port (the console, or a pooled database). */
  config(database = 'pgbouncer'): pg.ClientConfig {
    const login = this.#login;
    // No statement_timeout/options: PgBouncer rejects unknown startup parameters.
    return {
      host: login.host,
      port: login.port,
      user: login.user,
      ...(login.password ? { password: login.password.reveal() } : {}),
      database,
      application_name: 'pgcutover',
      connectionTimeoutMillis: this.#timeoutMs,
    };
  }

  /** The kept connection for `role`, opened on first use; one that ended or failed is replaced on the next call. */
  warm(role: WarmRole): Promise<pg.Client> {
    const current = this.#warm.get(role);
    if (current) return current.pending;
    const entry: { pending: Promise<pg.Client>; client?: pg.Client } = {
      pending: this.#connect().then((client) => {
        entry.client = client;
        client.on('end', () => this.discard(role, client));
        client.on('error', () => this.discard(role, client));
        return client;
      }),
    };
    entry.pending.catch(() => {
      if (this.#warm.get(role) === entry) this.#warm.delete(role);
    });
    this.#warm.set(role, entry);
    return entry.pending;
  }

  /** Forgets a warm connection and destroys it (a PAUSE still waiting on it dies with it). */
  discard(role: WarmRole, client: pg.Client): void {
    if (this.#warm.get(role)?.client === client) this.#warm.delete(role);
    this.#open.delete(client);
    destroy(client);
  }

  /** Runs `run` on a new connection, ended afterwards (inspections: they never queue behind a cutover). */
  async withFresh<T>(run: (admin: pg.Client) => Promise<T>): Promise<T> {
    const admin = await this.#connect();
    try {
      return await run(admin);
    } finally {
      await this.#end(admin);
    }
  }

  /** Ends every connection, the warm ones included; a later call opens new ones. */
  async close(): Promise<void> {
    this.#warm.clear();
    await Promise.all([...this.#open].map((client) => this.#end(client)));
  }

  async #connect(): Promise<pg.Client> {
    // Pipelined (pg's own mode): commands issued together leave together and PgBouncer answers them
    // in order, so RELOAD and the SHOW DATABASES that checks it take one round trip, not two.
    const client = new pg.Client({ ...this.config(), pipeline: true });
    client.on('error', (error) => this.#log.debug({ err: error }, 'admin connection error'));
    try {
      await client.connect();
    } catch (cause) {
      const { host, port, user } = this.#login;
      throw new CodedError(
        ErrorCode.ProxyAdminFailed,
        `Cannot reach the PgBouncer admin console at ${host}:${port} as ${user}: ${(cause as Error).message}`,
        { cause, details: { host, port, user } },
      );
    }
    this.#open.add(client);
    return client;
  }

  async #end(client: pg.Client): Promise<void> {
    this.#open.delete(client);
    await Promise.race([client.end().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000))]);
    destroy(client);
  }
}
