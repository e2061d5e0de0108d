import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CodedError, ErrorCode } from '../../errors.js';

/**
 * Write a sibling temp file with the same mode, fsync it, rename it over the original, fsync the
 * directory. Without the first fsync a crash after the rename can leave an empty file (the rename
 * reaches the disk before the data); without the second the rename itself can be lost.
 */
export async function atomicWrite(file: string, text: string): Promise<void> {
  const mode = await stat(file)
    .then((s) => s.mode & 0o777)
    .catch(() => 0o644);
  const directory = dirname(file);
  const temp = join(directory, `.${basename(file)}.pgcutover-${process.pid}-${Date.now()}`);
  try {
    const handle = await open(temp, 'w', mode);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
    const dir = await open(directory, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (cause) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw new CodedError(ErrorCode.ProxyAdminFailed, `Cannot rewrite ${file}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

