import { closeSync, fsync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { link, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CodedError, ErrorCode } from '../../errors.js';

/**
 * Puts `transform(current text)` in place of `file` through a sibling temp file with the same mode and
 * a rename, so a reader sees the old file or the new one, never half of one. For inside a freeze: the
 * read, write and rename are synchronous (page-cache calls of microseconds, where each asynchronous
 * file call is a thread-pool round trip), and the flush to disk (fsync of the file, then of the
 * directory) runs when the caller starts it, with `flush()` (once its reader has the file: a flush
 * forces a file-system journal commit that held up PgBouncer's RELOAD reading the file). Until it ends,
 * a power loss (not a process crash) can leave the old file or an empty one: PgBouncer then refuses the
 * entry rather than sending it anywhere unintended.
 */
export function replaceThenFlush(file: string, transform: (text: string) => string): { before: string; flush(): Promise<void> } {
  const directory = dirname(file);
  const temp = tempName(file);
  let fd: number | undefined;
  let before: string;
  try {
    before = readFileSync(file, 'utf8');
    fd = openSync(temp, 'w', statSync(file).mode & 0o777);
    writeFileSync(fd, transform(before));
    renameSync(temp, file);
  } catch (cause) {
    if (fd !== undefined) closeSync(fd);
    rmSync(temp, { force: true });
    throw rewriteFailed(file, cause);
  }
  const written = fd;
  const flush = async () => {
    try {
      try {
        await new Promise<void>((resolve, reject) => fsync(written, (error) => (error ? reject(error) : resolve())));
      } finally {
        closeSync(written);
      }
      await syncDirectory(directory);
    } catch (cause) {
      throw rewriteFailed(file, cause);
    }
  };
  return { before, flush };
}

/** A replacement of a file written and flushed ahead of time, put in place later by one rename. */
export interface StagedReplacement {
  /**
   * Renames the staged file into place when the file still holds the text it was staged from and
   * `transform` still gives the staged text (undefined otherwise, nothing touched); `flush()` then
   * flushes the directory (see replaceThenFlush for when to start it).
   */
  put(transform: (text: string) => string): { before: string; flush(): Promise<void> } | undefined;
  /** Removes what the stage left beside the file (after put() too: the second name is then all there is). */
  discard(): Promise<void>;
}

/**
 * replaceThenFlush in two parts, for a freeze: before it, the new text is written to a sibling temp
 * file and fsynced, and the current file gets a second name; inside it, put() is a read and a rename.
 * Measured on ext4 under write load: 0.2 ms against 2.3 ms for replaceThenFlush, whose rename over a
 * file allocates and starts writing the new file's blocks and frees the old file's (the second name
 * keeps them until the flush).
 */
export async function stageReplacement(file: string, transform: (text: string) => string): Promise<StagedReplacement> {
  const { temp, mode, directory } = await sibling(file);
  const previous = `${temp}.previous`;
  const discard = async () => void (await Promise.all([rm(temp, { force: true }), rm(previous, { force: true })]));
  let before: string;
  let after: string;
  try {
    before = await readFile(file, 'utf8');
    after = transform(before);
    await writeDurably(temp, after, mode);
    // Only speed depends on it: a file system without hard links frees the old blocks in the rename.
    await link(file, previous).catch(() => undefined);
  } catch (cause) {
    await discard().catch(() => undefined);
    throw rewriteFailed(file, cause);
  }
  return {
    put(again) {
      let current: string;
      try {
        current = readFileSync(file, 'utf8');
      } catch {
        return undefined;
      }
      if (current !== before || again(current) !== after) return undefined;
      try {
        renameSync(temp, file);
      } catch (cause) {
        throw rewriteFailed(file, cause);
      }
      const flush = () =>
        syncDirectory(directory)
          .then(discard)
          .catch((cause: unknown) => {
            throw rewriteFailed(file, cause);
          });
      return { before, flush };
    },
    discard,
  };
}

/**
 * Write a sibling temp file with the same mode, fsync it, rename it over the original, fsync the
 * directory. Without the first fsync a crash after the rename can leave an empty file (the rename
 * reaches the disk before the data); without the second the rename itself can be lost.
 */
export async function atomicWrite(file: string, text: string): Promise<void> {
  const { temp, mode, directory } = await sibling(file);
  try {
    await writeDurably(temp, text, mode);
    await rename(temp, file);
    await syncDirectory(directory);
  } catch (cause) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw rewriteFailed(file, cause);
  }
}

/** Writes `text` to a new file and fsyncs it. */
async function writeDurably(file: string, text: string, mode: number): Promise<void> {
  const handle = await open(file, 'w', mode);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function sibling(file: string): Promise<{ temp: string; mode: number; directory: string }> {
  const mode = await stat(file)
    .then((s) => s.mode & 0o777)
    .catch(() => 0o644);
  const directory = dirname(file);
  return { temp: tempName(file), mode, directory };
}

let siblings = 0;
/** Unique within the process: two rewrites of the same file in one millisecond get two names. */
const tempName = (file: string) => join(dirname(file), `.${basename(file)}.pgcutover-${process.pid}-${Date.now()}-${++siblings}`);

async function syncDirectory(directory: string): Promise<void> {
  const dir = await open(directory, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

const rewriteFailed = (file: string, cause: unknown) =>
  new CodedError(ErrorCode.ProxyAdminFailed, `Cannot rewrite ${file}: ${(cause as Error).message}`, { cause });
