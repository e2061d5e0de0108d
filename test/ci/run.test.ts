/**
 * `.ci/run` with apt-get, systemctl, service and npm replaced by stubs that only note their
 * arguments: it installs what the machine lacks, stops only the services it installed in this run,
 * and leaves a service the host already had alone.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('../../.ci/run', import.meta.url));
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Runs the script with stubs first on PATH (and only them, plus `dirname`, when `hostPath` is false). */
function runCi(hostPath: boolean): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'pgcutover-ci-'));
  dirs.push(dir);
  const log = join(dir, 'calls.log');
  for (const tool of ['apt-get', 'systemctl', 'service', 'npm']) {
    writeFileSync(join(dir, tool), `#!/bin/bash\necho "${tool} $*" >> "${log}"\n`);
    chmodSync(join(dir, tool), 0o755);
  }
  symlinkSync('/usr/bin/dirname', join(dir, 'dirname'));
  const result = spawnSync('/bin/bash', [SCRIPT], {
    env: { PATH: hostPath ? `${dir}:${process.env.PATH ?? '/usr/bin:/bin'}` : dir },
    encoding: 'utf8',
  });
  expect(result.status, result.stderr).toBe(0);
  return readFileSync(log, 'utf8').trim().split('\n');
}

const SERVICE_OF: Record<string, string> = { 'postgresql-15': 'postgresql', pgbouncer: 'pgbouncer', pgpool2: 'pgpool2' };

/** The services stopped are exactly those of the packages installed. */
function expectStopsMatchInstalls(calls: string[]): void {
  const installed = (calls.find((c) => c.startsWith('apt-get install')) ?? '').split(' ').filter((w) => w in SERVICE_OF);
  const stopped = calls.filter((c) => /^(systemctl|service) .*\bstop\b/.test(c)).map((c) => c.replace(/^(systemctl stop|service) (\S+).*$/, '$2'));
  expect(stopped.sort()).toEqual(installed.map((p) => SERVICE_OF[p]).sort());
}

describe('.ci/run', () => {
  it('stops only the services of the packages it installed, then runs the tests', () => {
    const calls = runCi(true);
    expectStopsMatchInstalls(calls);
    expect(calls.filter((c) => c.startsWith('npm'))).toEqual(['npm ci --no-audit --no-fund', 'npm test']);
  });

  it('installs PostgreSQL when the machine lacks it and stops that service', () => {
    // Without the host's PATH, pg_config is not found; pgbouncer and pgpool are looked up by absolute path.
    const calls = runCi(false);
    expect(calls.find((c) => c.startsWith('apt-get install'))).toContain('postgresql-15');
    expect(calls).toContain('systemctl stop postgresql');
    expectStopsMatchInstalls(calls);
  });
});
