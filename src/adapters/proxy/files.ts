import { rename, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CodedError, ErrorCode } from '../../errors.js';

/** Write a sibling temp file with the same mode, then rename it over the original. */
export async function atomicWrite(file: string, text: string): Promise<void> {
  const mode = await stat(file)
    .then((s) => s.mode & 0o777)
    .catch(() => 0o644);
  const temp = join(dirname(file), `.${basename(file)}.pgcutover-${process.pid}-${Date.now()}`);
  try {
    await writeFile(temp, text, { mode });
    await rename(temp, file);
  } catch (cause) {
    throw new CodedError(ErrorCode.ProxyAdminFailed, `Cannot rewrite ${file}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

