/** A pino logger whose output is kept in memory, so tests can assert what was (not) logged. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

export function captureLogger(level: 'debug' | 'info' = 'debug'): { logger: Logger; output: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { logger: createLogger(level, sink), output: () => chunks.join('') };
}
