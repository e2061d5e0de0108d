import { closeSync, fsync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CodedError, ErrorCode } from '../../errors.js';

/**
 * Puts `transform(current text)` in place of `file` through a sibling temp file with the same mode and
 * a rename, so a reader sees the old file or the new one, never half of one. For inside a freeze: the
 * read, write and rename are synchronous (page-cache calls of microseconds, where each asynchronous
 * file call is a thread-pool round trip), and the flush to disk (fsync of the file, then of the
 * directory) runs after, in `flushed`. Until it ends, a power loss (not a process crash) can leave the
 * old file or an empty one: PgBouncer then refuses the entry rather than sending it anywhere unintended.
 */
export function replaceThenFlush(file: string, transform: (text: string) => string): { before: string; flushed: Promise<void> } {
  const directory = dirname(file);
  const temp = join(directory, `.${basename(file)}.pgcutover-${process.pid}-${Date.now()}`);
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
  const flushed = (async () => {
    try {
      await new Promise<void>((resolve, reject) => fsync(written, (error) => (error ? reject(error) : resolve())));
    } finally {
      closeSync(written);
    }
    await syncDirectory(directory);
  })().catch((cause: unknown) => {
    throw rewriteFailed(file, cause);
  });
  // Awaited by the caller; never an unhandled rejection meanwhile.
  flushed.catch(() => undefined);
  return { before, flushed };
}

/**
 * Write a sibling temp file with the same mode, fsync it, rename it over the original, fsync the
 * directory. Without the first fsync a crash after the rename can leave an empty file (the rename
 * reaches the disk before the data); without the second the rename itself can be lost.
 */
export async function atomicWrite(file: string, text: string): Promise<void> {
  const { temp, mode, directory } = await sibling(file);
  try {
    const handle = await open(temp, 'w', mode);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
    await syncDirectory(directory);
  } catch (cause) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw rewriteFailed(file, cause);
  }
}

async function sibling(file: string): Promise<{ temp: string; mode: number; directory: string }> {
  const mode = await stat(file)
    .then((s) => s.mode & 0o777)
    .catch(() => 0o644);
  const directory = dirname(file);
  return { temp: join(directory, `.${basename(file)}.pgcutover-${process.pid}-${Date.now()}`), mode, directory };
}

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
