/**
 * atomicWrite (the PgBouncer databases file, pgpool.conf): the new content is fsynced before the
 * rename and the directory after it, so a crash can leave the old file or the new one, never an empty
 * one. fsync is not observable from outside, so the test watches Node's FileHandle.sync and names
 * each synced descriptor through /proc.
 */
import { chmod, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { atomicWrite } from '../../src/adapters/proxy/files.js';

describe('atomicWrite', () => {
  let dir: string | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('fsyncs the new content before the rename and the directory after it, keeping the mode', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgcutover-atomic-'));
    const file = join(dir, 'databases.ini');
    await writeFile(file, 'old\n');
    await chmod(file, 0o640);
    const probe = await open(file, 'r');
    const handleProto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
    await probe.close();
    const synced: { path: string; content: string | null; fileContent: string }[] = [];
    const sync = handleProto.sync;
    vi.spyOn(handleProto, 'sync').mockImplementation(async function (this: { fd: number }) {
      const path = readlinkSync(`/proc/self/fd/${this.fd}`);
      const isDir = (await stat(path)).isDirectory();
      synced.push({ path, content: isDir ? null : await readFile(path, 'utf8'), fileContent: await readFile(file, 'utf8') });
      return sync.call(this);
    });

    await atomicWrite(file, 'new\n');

    expect(await readFile(file, 'utf8')).toBe('new\n');
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    expect(await readdir(dir)).toEqual(['databases.ini']);
    // The temp file with the new content, while the original still held the old; then the directory.
    expect(synced).toHaveLength(2);
    expect(synced[0]).toMatchObject({ content: 'new\n', fileContent: 'old\n' });
    expect(synced[0]?.path).toMatch(/\/\.databases\.ini\.pgcutover-/);
    expect(synced[1]).toEqual({ path: dir, content: null, fileContent: 'new\n' });
  });

  it('leaves the original and no temp file behind when it cannot write', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgcutover-atomic-'));
    const missing = join(dir, 'no-such-dir', 'databases.ini');
    await expect(atomicWrite(missing, 'x')).rejects.toThrow(/Cannot rewrite/);
    expect(await readdir(dir)).toEqual([]);
  });
});
