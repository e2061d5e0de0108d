import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { Secret } from '../src/secret.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, log: createLogger('debug', stream) };
}

describe('logging', () => {
  it('writes JSON lines with child-logger bindings', () => {
    const { lines, log } = capture();
    log.child({ name: 'slack', channel: 'C1', session: 's-1' }).info({ action: 'freeze' }, 'requested');
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
      app: 'pgcutover',
      name: 'slack',
      channel: 'C1',
      session: 's-1',
      action: 'freeze',
      msg: 'requested',
    });
  });

  it('never writes a token, password or connection string', () => {
    const { lines, log } = capture();
    log.info(
      {
        password: 'pw-plain-1',
        token: 'xoxb-plain-2',
        connectionString: 'postgres://u:pw-plain-3@h/db',
        source: { host: 'h', password: 'pw-plain-4' },
        headers: { authorization: 'Bearer dop_v1_plain-5' },
        wrapped: new Secret('pw-wrapped-6'),
        profile: { source: { password: new Secret('pw-wrapped-7') } },
      },
      'connecting',
    );
    const text = lines.join('');
    for (const leaked of ['pw-plain-1', 'xoxb-plain-2', 'pw-plain-3', 'pw-plain-4', 'plain-5', 'pw-wrapped-6', 'pw-wrapped-7']) {
      expect(text).not.toContain(leaked);
    }
    expect(JSON.parse(text)).toMatchObject({ source: { host: 'h', password: '[redacted]' } });
  });

  it('keeps secrets out of string conversion and inspection', async () => {
    const { inspect } = await import('node:util');
    const secret = new Secret('pw-inspect');
    expect(`${secret}`).toBe('[redacted]');
    expect(inspect({ secret })).not.toContain('pw-inspect');
    expect(secret.reveal()).toBe('pw-inspect');
  });
});
