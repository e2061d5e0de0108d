/**
 * The embedded store is single-process: a lock file beside its directory refuses a second opener,
 * names the holder, goes away on close, and a lock left by a dead process (or by another host that
 * stopped touching it) does not block a restart.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CodedError, ErrorCode } from '../../src/errors.js';
import { openEmbedded } from '../../src/adapters/store/database.js';
import { lockEmbeddedStore } from '../../src/adapters/store/embedded-lock.js';

describe('the embedded store lock', () => {
  let dir: string;
  let store: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pgcutover-lock-'));
    store = join(dir, 'store');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const deadPid = () => {
    // A child that has exited: its pid is (for now) nobody's.
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    return Number(child.stdout);
  };

  it('refuses a second opener naming the holder, and is free again after close', async () => {
    const first = await openEmbedded(store);
    try {
      const error = await lockEmbeddedStore(store).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CodedError);
      expect((error as CodedError).code).toBe(ErrorCode.ConfigInvalid);
      expect((error as CodedError).message).toContain(`embedded store ${store} (DATA_DIR)`);
    } finally {
      await first.close();
    }
    expect(existsSync(`${store}.lock`)).toBe(false);
    const again = await openEmbedded(store);
    await again.close();
  });

  it('refuses a lock held by another live process on this host', async () => {
    writeFileSync(`${store}.lock`, JSON.stringify({ pid: process.ppid, host: hostname(), since: '2026-12-07T00:00:00Z' }));
    await expect(lockEmbeddedStore(store)).rejects.toThrow(`in use by process ${process.ppid} on ${hostname()}`);
    expect(JSON.parse(readFileSync(`${store}.lock`, 'utf8'))).toMatchObject({ pid: process.ppid });
  });

  it('takes over the lock of a dead process on this host', async () => {
    writeFileSync(`${store}.lock`, JSON.stringify({ pid: deadPid(), host: hostname(), since: '2026-12-07T00:00:00Z' }));
    const lock = await lockEmbeddedStore(store);
    expect(JSON.parse(readFileSync(`${store}.lock`, 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
    await lock.release();
    expect(existsSync(`${store}.lock`)).toBe(false);
  });

  it('another host: refused while its lock is touched, taken over once it is not', async () => {
    const file = `${store}.lock`;
    writeFileSync(file, JSON.stringify({ pid: 1, host: 'other-host.example', since: '2026-12-07T00:00:00Z' }));
    await expect(lockEmbeddedStore(store)).rejects.toThrow('in use by process 1 on other-host.example');
    const longAgo = new Date(Date.now() - 120_000);
    utimesSync(file, longAgo, longAgo);
    const lock = await lockEmbeddedStore(store);
    await lock.release();
  });
});
