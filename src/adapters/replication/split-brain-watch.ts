/**
 * The split-brain watch on the source after the switch. A logical slot with the test_decoding plugin
 * (shipped with PostgreSQL's contrib) and `only-local` sees exactly the committed writes that did not
 * come through replication: the reverse subscription's apply carries a replication origin and is
 * skipped; after the switch the bot itself writes nothing on the source (sequence changes are not
 * decoded). Each check() consumes what the slot gathered, counted in SQL (a runaway writer's rows never
 * come to the bot), and names the sessions connected to the source database that are not the bot's.
 * Commit counters (pg_stat_database.xact_commit) count read-only transactions too, and WAL advances
 * with checkpoints, vacuum and the reverse apply, so neither tells a write apart; the slot does.
 * The slot retains WAL from start() until stop(): stop() belongs to finish, abort, rollback and crash
 * recovery (it finds the slot by name).
 */
import { splitBrainFinding, type ForeignWrites, type SourceClient, type SplitBrainFinding } from '../../domain/split-brain.js';
import type { SplitBrainWatch, WatchStart } from '../../domain/ports/split-brain.js';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import { dropSlots, objectName, slotsByPrefix, type Pool } from './common.js';

export const WATCH_PREFIX = 'pgcutover_watch_';

/** SQLSTATE 58P01 (undefined_file): the output plugin's library is not installed. */
const UNDEFINED_FILE = '58P01';
/** SQLSTATE 53400 (configuration_limit_exceeded): no free replication slot. */
const CONFIGURATION_LIMIT_EXCEEDED = '53400';

export interface SplitBrainWatchOptions {
  source: Pool;
  sessionId: string;
  /** Sessions whose application_name starts with this are the bot's own. Default `pgcutover`. */
  botApplicationPrefix?: string;
  /** At most this many changes are consumed per check (the rest on the next). Default 100000. */
  maxChangesPerCheck?: number;
  logger: Logger;
}

export class SlotSplitBrainWatch implements SplitBrainWatch {
  readonly #o: Required<SplitBrainWatchOptions>;
  readonly #name: string;
  readonly #log: Logger;

  constructor(options: SplitBrainWatchOptions) {
    this.#o = { botApplicationPrefix: 'pgcutover', maxChangesPerCheck: 100_000, ...options };
    this.#name = objectName(WATCH_PREFIX, options.sessionId);
    this.#log = options.logger.child({ name: 'split-brain-watch', slot: this.#name });
  }

  async start(): Promise<WatchStart> {
    if ((await slotsByPrefix(this.#o.source, this.#name)).some((s) => s.name === this.#name)) return { ok: true };
    try {
      await this.#o.source.query("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", [this.#name]);
      return { ok: true };
    } catch (error) {
      const code = (error as { code?: string }).code;
      const reason =
        code === UNDEFINED_FILE
          ? "the source has no test_decoding plugin (PostgreSQL's contrib package)"
          : code === CONFIGURATION_LIMIT_EXCEEDED
            ? 'the source has no free replication slot (max_replication_slots)'
            : `the watch slot could not be created: ${(error as Error).message}`;
      this.#log.warn({ err: error }, 'split-brain watch not started');
      return { ok: false, reason };
    }
  }

  async check(): Promise<SplitBrainFinding | null> {
    try {
      const [writes, clients] = await Promise.all([this.#consume(), this.#clients()]);
      const finding = splitBrainFinding(writes, clients, this.#o.botApplicationPrefix);
      if (finding) this.#log.warn({ finding }, 'writes on the source after the switch');
      return finding;
    } catch (cause) {
      throw new CodedError(ErrorCode.DatabaseUnavailable, `Could not watch the source for writes: ${(cause as Error).message}`, { cause });
    }
  }

  async stop(): Promise<void> {
    await dropSlots(this.#o.source, this.#name);
  }

  async #consume(): Promise<ForeignWrites> {
    const { rows } = await this.#o.source.query<{ transactions: number; changes: number; tables: string[] }>(
      `SELECT count(*) FILTER (WHERE data LIKE 'COMMIT%')::int AS transactions,
              count(*) FILTER (WHERE data LIKE 'table %')::int AS changes,
              coalesce(array_agg(DISTINCT substring(data FROM '^table (.*?): [A-Z]+')) FILTER (WHERE data LIKE 'table %'), '{}') AS tables
         FROM pg_logical_slot_get_changes($1, NULL, $2, 'include-xids', '0', 'skip-empty-xacts', '1', 'only-local', '1')`,
      [this.#name, this.#o.maxChangesPerCheck],
    );
    return rows[0] ?? { transactions: 0, changes: 0, tables: [] };
  }

  async #clients(): Promise<SourceClient[]> {
    const { rows } = await this.#o.source.query<{ pid: number; address: string | null; application_name: string; user: string | null; writing: boolean }>(
      `SELECT pid, host(client_addr) AS address, application_name, usename AS user, backend_xid IS NOT NULL AS writing
         FROM pg_stat_activity
        WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
    );
    return rows.map((r) => ({ pid: r.pid, address: r.address, applicationName: r.application_name, user: r.user ?? '', writing: r.writing }));
  }
}
