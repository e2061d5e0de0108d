/**
 * PgBouncer's repoint through its %include'd databases file: the entries' lines rewritten (written
 * ahead by stage() before the freeze, so inside it the rewrite is one rename), RELOAD, and one SHOW
 * DATABASES that must show every entry where it was sent; RELOAD says success even when the file is
 * bad, so a mismatch puts the previous file back. With `resume`, the entries' RESUMEs leave in the same
 * message: PgBouncer resumes right after it reloads, without waiting for the check to be read back.
 */
import type pg from 'pg';
import type { Endpoint } from '../../domain/ports/writes.js';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Logger } from '../../log.js';
import { atomicWrite, replaceThenFlush, stageReplacement, type StagedReplacement } from './files.js';
import { checkEndpoint, checkIdent, databaseRows, reload, resumeEntry } from './pgbouncer-console.js';
import { replaceDatabaseLine } from './pgbouncer-databases-file.js';

function checkTargets(targets: ReadonlyMap<string, Endpoint>): void {
  for (const [name, to] of targets) {
    checkIdent(name, 'PgBouncer database name');
    checkEndpoint(to);
  }
}

/** The databases file's text with every target's line repointed. */
const rewriteFor = (targets: ReadonlyMap<string, Endpoint>) => (text: string) =>
  [...targets].reduce((t, [name, to]) => replaceDatabaseLine(t, name, to), text);

/** TLS toward the target is PgBouncer's global server_tls_sslmode: the bot checks it, never changes it. */
function checkTls(config: ReadonlyMap<string, string>): void {
  const mode = config.get('server_tls_sslmode') ?? 'disable';
  if (mode === 'disable' || mode === 'allow') {
    throw new CodedError(
      ErrorCode.ProxyAdminFailed,
      `The target needs TLS but PgBouncer has server_tls_sslmode = ${mode} (a global setting). Set it to prefer, require or verify-full in pgbouncer.ini and reload before cutover.`,
      { details: { server_tls_sslmode: mode } },
    );
  }
}

export class DatabasesFileRepoint {
  readonly #file: string;
  /** The driver's own entry: an odd SHOW DATABASES row of it is an error. */
  readonly #own: string;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  /** The databases file stage() wrote ahead, put in place by the next repoint. */
  #staged: StagedReplacement | undefined;
  /** The last repoint's flush of the databases file, still running behind the freeze. */
  #flushing: Promise<void> | undefined;

  constructor(o: { file: string; own: string; queryTimeoutMs: number; logger: Logger }) {
    this.#file = o.file;
    this.#own = o.own;
    this.#timeoutMs = o.queryTimeoutMs;
    this.#log = o.logger;
  }

  /**
   * Before a freeze: the databases file repoint(targets) will write, written and flushed beside the
   * current one. The repoint does the whole rewrite instead when the file or the targets changed
   * since. Replaces an earlier stage.
   */
  async stage(targets: ReadonlyMap<string, Endpoint>): Promise<void> {
    checkTargets(targets);
    const staged = await stageReplacement(this.#file, rewriteFor(targets));
    const replaced = this.#staged;
    this.#staged = staged;
    await replaced?.discard();
  }

  /**
   * Repoints `targets` on `admin` (a warm console connection); `config` is PgBouncer's SHOW CONFIG,
   * asked only when a target needs TLS. Throws ProxyVerifyFailed when an entry did not take its line
   * (`details.resumed`: writes resumed where it still points).
   */
  async repoint(
    admin: pg.Client,
    targets: ReadonlyMap<string, Endpoint>,
    o: { config: () => Promise<ReadonlyMap<string, string>>; resume?: readonly string[] },
  ): Promise<void> {
    checkTargets(targets);
    if ([...targets.values()].some((to) => to.tls)) checkTls(await o.config());
    // Inside the freeze: the new file (staged, or written now) is renamed into place for the RELOAD
    // (PgBouncer reads it at once) and flushed to disk once PgBouncer has read it; close() waits for the flush.
    const rewrite = rewriteFor(targets);
    const staged = this.#staged;
    this.#staged = undefined;
    const { before, flush } = staged?.put(rewrite) ?? replaceThenFlush(this.#file, rewrite);
    // All on the wire at once (the console connections are pipelined; each call sends at once, in
    // this order): PgBouncer answers the SHOW only after the reload, so the rows show its outcome,
    // and it resumes (with `resume`) right after them, without waiting for us to read them.
    const resume = o.resume ?? [];
    const [reloaded, shown, ...resumed] = await Promise.allSettled([
      reload(admin, this.#timeoutMs),
      databaseRows(admin, this.#own, this.#timeoutMs),
      ...resume.map((name) => resumeEntry(admin, name, this.#timeoutMs)),
    ]);
    this.#flushing = flush()
      .catch((err: unknown) => this.#log.error({ err }, 'flushing the databases file to disk failed; it is in place but may not survive a power loss'))
      // A stage for other targets or an older file is dropped behind the freeze too.
      .then(() => staged?.discard())
      .catch((err: unknown) => this.#log.warn({ err }, 'removing the staged databases file failed'));
    if (reloaded.status === 'rejected') throw reloaded.reason;
    if (shown.status === 'rejected') throw shown.reason;
    const notResumed = resumed.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (notResumed) throw notResumed.reason;
    const rows = shown.value;
    const wrong = [...targets].filter(([name, to]) => {
      const row = rows.get(name);
      return !(row && row.host === to.host && row.port === to.port && row.database === to.database);
    });
    if (wrong.length === 0) {
      for (const [name, to] of targets) {
        this.#log.info({ entry: name, host: to.host, port: to.port, database: to.database, paused: rows.get(name)?.paused === 1 }, 'repointed');
      }
      return;
    }
    const [name, to] = wrong[0]!;
    const row = rows.get(name);
    const seen = row ? `${row.host}:${row.port}/${row.database}` : 'no entry';
    this.#log.error({ entry: name, seen, wanted: `${to.host}:${to.port}/${to.database}` }, 'RELOAD did not take; restoring');
    await atomicWrite(this.#file, before);
    let restored = 'restored';
    try {
      await reload(admin, this.#timeoutMs);
    } catch (error) {
      restored = `restore failed: ${(error as Error).message}`;
    }
    const writes = resume.length > 0 ? ' Writes resumed there.' : '';
    throw new CodedError(
      ErrorCode.ProxyVerifyFailed,
      `PgBouncer did not take the new line for "${name}" (it still points to ${seen}); RELOAD reports success even when the file is bad, see the PgBouncer log. The previous databases file was put back (${restored}).${writes}`,
      { details: { seen, wantedHost: to.host, wantedPort: to.port, resumed: resume.length > 0 } },
    );
  }

  /** Waits for the last flush and removes a stage no repoint used. */
  async close(): Promise<void> {
    await this.#flushing;
    const staged = this.#staged;
    this.#staged = undefined;
    await staged?.discard().catch(() => undefined);
  }
}
