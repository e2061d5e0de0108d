/**
 * PgBouncer for a session that covers several migrated databases: every entry that serves one of them
 * is paused and repointed, the profile's own entry (`proxy.database`) first. Which entries: the profile's
 * list (`proxy.databases`), or every entry pointing at a migrated database on the source (or, after a
 * switch, on the target), found with one SHOW DATABASES on first use and kept for this driver's life.
 *
 * Each entry keeps its own PgBouncerAdmin (its warm pauser and checker), so the entries are paused at
 * once and the freeze lasts as long as the slowest drain, not their sum; a pause that fails on one entry
 * resumes the ones that paused. The repoint is one rewrite of the databases file, one RELOAD and one
 * SHOW DATABASES for all entries; resume is one RESUME per entry, at once. Entries not selected (an
 * ignored database's) are never touched.
 */
import { CodedError, ErrorCode } from '../../errors.js';
import { settleAll } from '../settle-all.js';
import type { Endpoint, RouterStatus } from '../../domain/ports/writes.js';
import type { DatabaseRow } from './pgbouncer-console.js';
import { PgBouncerAdmin, type DrainState, type PgBouncerAdminOptions, type PreflightCheck } from './pgbouncer.js';
import type { ProxyAdmin } from './proxy-admin.js';

/** An entry the cutover covers: its name in PgBouncer and the migrated database it serves. */
export interface BouncerEntry {
  name: string;
  database: string;
}

export interface EntrySelection {
  /** The profile's entry (`proxy.database`): always covered. */
  primary: string;
  /** `proxy.databases` when the profile lists them. */
  listed?: readonly string[];
  /** The databases DigitalOcean migrates (their names on the source; the target's are the same). */
  migrated: readonly string[];
  /** Where a covered entry may point: the source, and the target once switched. */
  servers: readonly { host: string; port: number }[];
}

const PROBE_SUFFIX = '_pgcutover_probe';

/** The entries a cutover covers, the primary first. Pure: SHOW DATABASES rows in, entries out. */
export function selectEntries(rows: ReadonlyMap<string, DatabaseRow>, s: EntrySelection): BouncerEntry[] {
  const entry = (name: string): BouncerEntry => {
    const row = rows.get(name);
    if (!row) throw new CodedError(ErrorCode.ProxyAdminFailed, `PgBouncer has no database "${name}" (SHOW DATABASES)`);
    return { name, database: row.database };
  };
  const names = s.listed
    ? s.listed
    : [...rows.values()]
        .filter(
          (r) =>
            !r.name.endsWith(PROBE_SUFFIX) &&
            s.migrated.includes(r.database) &&
            s.servers.some((server) => server.host === r.host && server.port === r.port),
        )
        .map((r) => r.name);
  return [s.primary, ...names.filter((n) => n !== s.primary)].map(entry);
}

export interface PgBouncerEntriesOptions extends PgBouncerAdminOptions {
  /** Answers what selectEntries needs besides the rows (asked once, on first use). */
  selection: () => Promise<Omit<EntrySelection, 'primary'>>;
  /** The profile's database on the source and on the target: an entry serving it goes to `to.database`. */
  profileDatabases: readonly string[];
}

interface Covered extends BouncerEntry {
  admin: PgBouncerAdmin;
}

export class PgBouncerEntries implements ProxyAdmin {
  readonly kind = 'pgbouncer' as const;
  readonly canPause = true;
  readonly clientImpact = 'queries-wait' as const;
  readonly limitations: readonly string[];

  readonly #o: PgBouncerEntriesOptions;
  readonly #primary: PgBouncerAdmin;
  #covered: Promise<Covered[]> | undefined;

  constructor(options: PgBouncerEntriesOptions) {
    this.#o = options;
    this.#primary = new PgBouncerAdmin(options);
    this.limitations = this.#primary.limitations;
  }

  /** The covered entries (found on first use; a failed look-up is asked again next time). */
  entries(): Promise<BouncerEntry[]> {
    return this.#entries().then((covered) => covered.map(({ name, database }) => ({ name, database })));
  }

  /**
   * Every entry's console, and the one repoint() rewrites the file through: nothing opens inside the
   * freeze. Given `to`, the repoint's databases file is written ahead (one rename inside the freeze).
   */
  async prepare(to?: Endpoint): Promise<void> {
    const covered = await this.#entries();
    await Promise.all([settleAll(covered, (e) => e.admin.prepare()), this.#primary.prepare()]);
    if (to) await this.#primary.stageRepoint(new Map(covered.map((e) => [e.name, this.#endpointOf(e, to)])));
  }

  async freeze(): Promise<void> {
    await (await this.freezeThenConfirm()).confirmed;
  }

  /** Every entry paused at once; `confirmed` once every entry's check is back. */
  async freezeThenConfirm(): Promise<{ confirmed: Promise<void> }> {
    const covered = await this.#entries();
    // An entry whose PAUSE or check failed resumed itself; the others are resumed here.
    const resumeOthers = async (outcomes: PromiseSettledResult<unknown>[]) =>
      void (await Promise.allSettled(covered.filter((_, i) => outcomes[i]?.status === 'fulfilled').map((e) => e.admin.resume())));
    const paused = await Promise.allSettled(covered.map((e) => e.admin.freezeThenConfirm()));
    const failed = paused.find((p): p is PromiseRejectedResult => p.status === 'rejected');
    if (failed) {
      await resumeOthers(paused);
      throw failed.reason;
    }
    const confirmed = (async () => {
      const checks = await Promise.allSettled(paused.map((p) => (p.status === 'fulfilled' ? p.value.confirmed : undefined)));
      const wrong = checks.find((c): c is PromiseRejectedResult => c.status === 'rejected');
      if (!wrong) return;
      await resumeOthers(checks);
      throw wrong.reason;
    })();
    confirmed.catch(() => undefined);
    return { confirmed };
  }

  async resume(): Promise<void> {
    await settleAll(await this.#entries(), (e) => e.admin.resume());
  }

  async repoint(to: Endpoint): Promise<void> {
    const covered = await this.#entries();
    await this.#primary.repointEntries(new Map(covered.map((e) => [e.name, this.#endpointOf(e, to)])));
  }

  /** repoint() with every entry's RESUME in the same message, on the primary's console connection. */
  async repointAndResume(to: Endpoint): Promise<void> {
    const covered = await this.#entries();
    await this.#primary.repointEntries(new Map(covered.map((e) => [e.name, this.#endpointOf(e, to)])), { resume: covered.map((e) => e.name) });
  }

  /** The primary entry's status; frozen when any entry is paused, healthy when every entry is. */
  async inspect(): Promise<RouterStatus> {
    const covered = await this.#entries();
    const [primary, ...others] = await settleAll(covered, (e) => e.admin.inspect());
    // selectEntries always puts the primary first.
    if (!primary) throw new CodedError(ErrorCode.Internal, 'no PgBouncer entry to inspect');
    if (others.length === 0) return primary;
    return {
      pointsTo: primary.pointsTo,
      frozen: primary.frozen || others.some((o) => o.frozen),
      healthy: primary.healthy && others.every((o) => o.healthy),
      detail: `${primary.detail}; also ${covered.slice(1).map((e, i) => `${e.name}${others[i]?.frozen ? ' (paused)' : ''}`).join(', ')}`,
    };
  }

  /** Each entry's checks toward its own target database, one entry after the other (each probe rewrites the file). */
  async preflight(target?: Endpoint): Promise<PreflightCheck[]> {
    const covered = await this.#entries();
    const checks: PreflightCheck[] = [];
    for (const e of covered) {
      const own = await e.admin.preflight(target ? this.#endpointOf(e, target) : undefined);
      checks.push(...(covered.length === 1 ? own : own.map((c) => ({ ...c, name: `${e.name}: ${c.name}` }))));
    }
    return checks;
  }

  /** Every covered entry's pause, summed. */
  async drainState(): Promise<DrainState> {
    const states = await settleAll(await this.#entries(), (e) => e.admin.drainState());
    return {
      paused: states.every((s) => s.paused),
      serverConnections: states.reduce((n, s) => n + s.serverConnections, 0),
      clientsWaiting: states.reduce((n, s) => n + s.clientsWaiting, 0),
      clientsActive: states.reduce((n, s) => n + s.clientsActive, 0),
      maxWaitSeconds: Math.max(0, ...states.map((s) => s.maxWaitSeconds)),
    };
  }

  /** Clients waiting across the covered entries, each on its warm console. */
  async clientsWaiting(): Promise<number> {
    const counts = await settleAll(await this.#entries(), (e) => e.admin.clientsWaiting());
    return counts.reduce((n, c) => n + c, 0);
  }

  /** The entries share one console: one round trip on it. */
  roundTripMs(): Promise<number> {
    return this.#primary.roundTripMs();
  }

  async close(): Promise<void> {
    const covered = this.#covered;
    this.#covered = undefined;
    const admins = new Set([this.#primary, ...((await covered?.catch(() => [])) ?? []).map((e) => e.admin)]);
    await Promise.all([...admins].map((a) => a.close().catch(() => undefined)));
  }

  /** `to` for an entry: the profile's database goes to `to.database`, any other to its namesake on `to`'s server. */
  #endpointOf(e: BouncerEntry, to: Endpoint): Endpoint {
    const own = e.name === this.#o.database || this.#o.profileDatabases.includes(e.database);
    return { ...to, database: own ? to.database : e.database };
  }

  #entries(): Promise<Covered[]> {
    if (!this.#covered) {
      const pending = (async () => {
        const [rows, selection] = await Promise.all([this.#primary.databaseRows(), this.#o.selection()]);
        return selectEntries(rows, { ...selection, primary: this.#o.database }).map(
          (e): Covered => ({ ...e, admin: e.name === this.#o.database ? this.#primary : new PgBouncerAdmin({ ...this.#o, database: e.name }) }),
        );
      })();
      pending.catch(() => {
        if (this.#covered === pending) this.#covered = undefined;
      });
      this.#covered = pending;
    }
    return this.#covered;
  }
}
