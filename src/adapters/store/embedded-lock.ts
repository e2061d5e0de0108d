/**
 * The embedded store (PGlite) is single-process: two processes writing one directory corrupt it.
 * A lock file beside the directory names its holder ({pid, host}) and is touched every few seconds
 * while held. A second process is refused unless the lock is stale: its holder's pid is dead on this
 * host (a crash or SIGKILL; also our own pid, left by an earlier life in a container where we are
 * always pid 1), or, for a holder on another host sharing the volume, it was not touched for
 * STALE_AFTER_MS. The lock is removed on close and on process exit.
 */
import { readFileSync, unlinkSync } from 'node:fs';
import { link, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { z } from 'zod';
import { CodedError, ErrorCode } from '../../errors.js';

const HEARTBEAT_MS = 5_000;
const STALE_AFTER_MS = 30_000;

/** Lock files held by this process: a lock naming our own pid and not in here is from an earlier life. */
const heldHere = new Set<string>();

const holderSchema = z.object({ pid: z.number().int(), host: z.string(), since: z.string() });
type Holder = z.infer<typeof holderSchema>;

export interface EmbeddedLock {
  release(): Promise<void>;
}

/** Takes the lock of the store in `dataDir`, or throws ConfigInvalid (exit code 2) naming its holder. */
export async function lockEmbeddedStore(dataDir: string): Promise<EmbeddedLock> {
  const file = `${dataDir}.lock`;
  if (heldHere.has(file)) throw new CodedError(ErrorCode.ConfigInvalid, `The embedded store ${dataDir} (DATA_DIR) is already open in this process.`);
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() } satisfies Holder);
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await createExclusive(file, mine)) return held(file, mine);
    const seen = await readFile(file, 'utf8').catch(() => null);
    if (seen === null) continue; // released meanwhile
    const touchedAt = await stat(file).then((s) => s.mtimeMs, () => 0);
    const holder = parseHolder(seen);
    if (holder && !isStale(holder, touchedAt, heldHere.has(file))) {
      throw new CodedError(
        ErrorCode.ConfigInvalid,
        `The embedded store ${dataDir} (DATA_DIR) is in use by process ${holder.pid} on ${holder.host} since ${holder.since}. ` +
          'It is single-process: stop that process first, or set DATABASE_URL to run several replicas.',
        { details: { lockFile: file, pid: holder.pid, host: holder.host } },
      );
    }
    await takeAway(file, seen);
  }
  throw new CodedError(ErrorCode.ConfigInvalid, `Could not lock the embedded store ${dataDir} (DATA_DIR): other processes keep taking it.`, {
    details: { lockFile: file },
  });
}

/** Written whole, then linked into place (fails if it exists): a reader never sees a half-written lock. */
async function createExclusive(file: string, text: string): Promise<boolean> {
  const temp = `${file}.new-${process.pid}`;
  try {
    await writeFile(temp, text);
    await link(temp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new CodedError(ErrorCode.ConfigInvalid, `Cannot create the embedded store's lock file ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/**
 * Moves a stale lock aside. If another starting process replaced it in between, the moved file is
 * theirs: it goes back, and the next round refuses.
 */
async function takeAway(file: string, stale: string): Promise<void> {
  const aside = `${file}.stale-${process.pid}`;
  try {
    await rename(file, aside);
  } catch {
    return; // gone already
  }
  if ((await readFile(aside, 'utf8').catch(() => stale)) !== stale) await link(aside, file).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

function held(file: string, mine: string): EmbeddedLock {
  heldHere.add(file);
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(file, now, now).catch(() => undefined);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  const releaseNow = () => {
    clearInterval(heartbeat);
    process.off('exit', releaseNow);
    heldHere.delete(file);
    try {
      if (readFileSync(file, 'utf8') === mine) unlinkSync(file);
    } catch {
      // already gone
    }
  };
  // A crash that still runs exit handlers (an uncaught error, process.exit) releases it too.
  process.on('exit', releaseNow);
  return { release: async () => releaseNow() };
}

function parseHolder(text: string): Holder | undefined {
  try {
    const parsed = holderSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined; // torn or foreign content: treated as stale
  }
}

function isStale(holder: Holder, touchedAtMs: number, heldByUs: boolean): boolean {
  if (holder.host === hostname()) return holder.pid === process.pid ? !heldByUs : !isAlive(holder.pid);
  return Date.now() - touchedAtMs > STALE_AFTER_MS;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
