import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * Paths pino censors wherever they appear. Secrets are also wrapped in `Secret`, which prints
 * "[redacted]"; this list is the second net for plain strings (tokens in headers, DSNs).
 */
export const REDACTED_PATHS = [
  'password',
  'token',
  'dsn',
  'connectionString',
  'authorization',
  '*.password',
  '*.token',
  '*.dsn',
  '*.connectionString',
  '*.authorization',
  '*.*.password',
  '*.*.connectionString',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers["x-slack-signature"]',
];

export function createLogger(level: LevelWithSilent = 'info', destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      // Child loggers name their component ({ name: 'do' }, { name: 'slack' }, …).
      base: { app: 'pgcutover' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}
