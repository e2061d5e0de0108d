import { z } from 'zod';
import { CodedError, ErrorCode } from '../errors.js';
import { Secret } from '../secret.js';

const nonEmpty = z.string().trim().min(1);
const secret = (prefix?: string) =>
  (prefix ? nonEmpty.startsWith(prefix, `must start with "${prefix}"`) : nonEmpty).transform((v) => new Secret(v));

const envSchema = z
  .object({
    SLACK_BOT_TOKEN: secret('xoxb-'),
    SLACK_SIGNING_SECRET: secret().optional(),
    SLACK_APP_TOKEN: secret('xapp-').optional(),
    SLACK_API_URL: z.url().optional(),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    DIGITALOCEAN_TOKEN: secret(),
    DIGITALOCEAN_API_URL: z.url().default('https://api.digitalocean.com'),
    DATABASE_URL: secret().optional(),
    DATA_DIR: nonEmpty.default('./data'),
    PGCUTOVER_CONFIG: nonEmpty.default('./pgcutover.yml'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .superRefine((env, ctx) => {
    if (!env.SLACK_APP_TOKEN && !env.SLACK_SIGNING_SECRET) {
      ctx.addIssue({
        code: 'custom',
        path: ['SLACK_SIGNING_SECRET'],
        message: 'is required in HTTP mode (set SLACK_APP_TOKEN instead to use Socket Mode)',
      });
    }
  });

export type Env = z.infer<typeof envSchema>;

/** Reads the environment; a missing or malformed variable is a ConfigInvalid error naming it (never its value). */
export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  // Empty strings count as unset: `FOO= node ...` should fall back to the default, not fail validation.
  const present = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    const problem = present[name] === undefined && issue.code === 'invalid_type' ? 'is required' : issue.message;
    return `  ${name}: ${problem}`;
  });
  throw new CodedError(ErrorCode.ConfigInvalid, `Invalid environment:\n${lines.join('\n')}`);
}
