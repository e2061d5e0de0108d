import { describe, expect, it } from 'vitest';
import { closestVerb, editDistance, helpText, isMutating, parseCommand, USAGE, VERBS } from '../../src/domain/commands.js';

describe('parseCommand', () => {
  it('parses every verb without arguments, and empty text as help', () => {
    expect(parseCommand('')).toEqual({ ok: true, command: { kind: 'help' } });
    for (const verb of VERBS.filter((v) => v !== 'start' && v !== 'report' && v !== 'setup' && v !== 'finish')) {
      expect(parseCommand(`  ${verb.toUpperCase()} `)).toEqual({ ok: true, command: { kind: verb } });
    }
  });

  it('parses finish, with --acknowledge-differences to finish although the verification found differences', () => {
    expect(parseCommand('finish')).toEqual({ ok: true, command: { kind: 'finish', acknowledgeDifferences: false } });
    expect(parseCommand('FINISH --Acknowledge-Differences')).toEqual({ ok: true, command: { kind: 'finish', acknowledgeDifferences: true } });
    expect(parseCommand('finish --force')).toEqual({ ok: false, problem: expect.stringContaining('the only option is --acknowledge-differences'), usage: USAGE.finish });
    expect(parseCommand('finish now')).toMatchObject({ ok: false, problem: expect.stringContaining('takes no arguments') });
  });

  it('parses start with a profile and --dry-run', () => {
    expect(parseCommand('start orders')).toEqual({ ok: true, command: { kind: 'start', profile: 'orders', dryRun: false } });
    expect(parseCommand('start orders --dry-run')).toEqual({ ok: true, command: { kind: 'start', profile: 'orders', dryRun: true } });
    expect(parseCommand('start --dry-run orders')).toMatchObject({ ok: true, command: { dryRun: true, profile: 'orders' } });
  });

  it('explains malformed start commands with the usage line', () => {
    expect(parseCommand('start')).toEqual({ ok: false, problem: expect.stringContaining('needs a profile name'), usage: USAGE.start });
    expect(parseCommand('start a b')).toMatchObject({ ok: false, problem: expect.stringContaining('one profile name') });
    expect(parseCommand('start Orders!')).toMatchObject({ ok: false, problem: expect.stringContaining('a-z, 0-9') });
    expect(parseCommand('start orders --force')).toMatchObject({ ok: false, problem: expect.stringContaining('--dry-run') });
  });

  it('parses report schedules and explains bad ones', () => {
    expect(parseCommand('report every 5m')).toMatchObject({ ok: true, command: { kind: 'report', schedule: { kind: 'interval', seconds: 300 } } });
    expect(parseCommand('report */10 * * * *')).toMatchObject({ ok: true, command: { schedule: { kind: 'cron', expression: '*/10 * * * *' } } });
    expect(parseCommand('report off')).toMatchObject({ ok: true, command: { schedule: { kind: 'off' } } });
    expect(parseCommand('report')).toMatchObject({ ok: false, problem: expect.stringContaining('needs a schedule'), usage: USAGE.report });
    expect(parseCommand('report whenever')).toMatchObject({ ok: false, problem: expect.stringContaining('not a schedule') });
  });

  it('refuses arguments to verbs that take none', () => {
    expect(parseCommand('status now')).toEqual({ ok: false, problem: '`status` takes no arguments', usage: USAGE.status });
    expect(parseCommand('abort --yes')).toMatchObject({ ok: false, problem: '`abort` takes no options' });
  });

  it('suggests the closest command for typos, and none for nonsense', () => {
    expect(parseCommand('stauts')).toMatchObject({ ok: false, suggestion: 'status' });
    expect(parseCommand('frezee')).toMatchObject({ ok: false, suggestion: 'freeze' });
    expect(parseCommand('rolback')).toMatchObject({ ok: false, suggestion: 'rollback' });
    expect(parseCommand('pre')).toMatchObject({ ok: false, suggestion: 'preflight' });
    expect(parseCommand('xylophone')).not.toHaveProperty('suggestion');
    expect(closestVerb('hist')).toBe('history');
  });

  it('computes edit distance with transpositions', () => {
    expect(editDistance('status', 'status')).toBe(0);
    expect(editDistance('stauts', 'status')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('knows which commands change something and documents every verb', () => {
    expect(isMutating({ kind: 'status' })).toBe(false);
    expect(isMutating({ kind: 'freeze' })).toBe(true);
    expect(isMutating({ kind: 'start', profile: 'x', dryRun: true })).toBe(true);
    for (const verb of VERBS) expect(helpText()).toContain(USAGE[verb]);
  });
});

describe('bounded input (hostile testing: a 100 KB verb blocked the event loop for 5 s)', () => {
  it('refuses command text over the limit without reading it, and names the limit', () => {
    const result = parseCommand(`x${'y'.repeat(100_000)}`);
    expect(result).toMatchObject({ ok: false, problem: expect.stringContaining('too long') });
    expect(result).toMatchObject({ problem: expect.stringContaining('at most 500') });
  });

  it('compares no word much longer than every verb: no suggestion, and no quadratic table', () => {
    // The old code lower-cased and aligned the whole word against every verb (O(n·m) each time).
    let reads = 0;
    const word = new Proxy(new String('s'.repeat(400)), {
      get(target, key) {
        if (key === 'toLowerCase') reads++;
        const value = Reflect.get(target, key) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }) as unknown as string;
    expect(closestVerb(word)).toBeUndefined();
    expect(reads).toBe(0);
    expect(parseCommand(`${'s'.repeat(400)} now`)).toMatchObject({ ok: false, problem: expect.stringContaining('is not a /migrate command') });
    expect(parseCommand(`${'s'.repeat(400)} now`)).not.toHaveProperty('suggestion');
    expect(closestVerb('sttaus')).toBe('status');
  });
});
