import { z } from 'zod';
import { CodedError, ErrorCode } from '../errors.js';
import { Secret } from '../secret.js';
import { describeIssue } from './issues.js';

const nonEmpty = z.string().trim().min(1);
const secret = (prefix?: string) =>
  (prefix ? nonEmpty.startsWith(prefix, `must start with "${prefix}"`) : nonEmpty).transform((v) => new Secret(v));
/** pg reads anything else as a host name relative to `postgres://base` (`getaddrinfo ENOTFOUND base`). */
const postgresUrl = nonEmpty
  .refine(isPostgresUrl, 'must be a PostgreSQL URL like postgres://user:password@host:5432/database')
  .transform((v) => new Secret(v));

function isPostgresUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const url = new URL(text);
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') return false;
  try {
    // pg percent-decodes these; a bad escape would throw at connect time instead.
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
    decodeURIComponent(url.pathname);
  } catch {
    return false;
  }
  return url.hostname !== '' || url.searchParams.has('host');
}

export const DEFAULT_CONFIG_PATH = './pgcutover.yml';

const envSchema = z
  .object({
    SLACK_BOT_TOKEN: secret('xoxb-'),
    SLACK_SIGNING_SECRET: secret().optional(),
    SLACK_APP_TOKEN: secret('xapp-').optional(),
    SLACK_API_URL: z.url().optional(),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    /** The address the HTTP server binds to; unset: every interface. */
    HOST: z.union([z.ipv4(), z.ipv6(), z.hostname()], { message: 'must be an IP address or a host name' }).optional(),
    DIGITALOCEAN_TOKEN: secret(),
    DIGITALOCEAN_API_URL: z.url().default('https://api.digitalocean.com'),
    DATABASE_URL: postgresUrl.optional(),
    DATA_DIR: nonEmpty.default('./data'),
    PGCUTOVER_CONFIG: nonEmpty.default(DEFAULT_CONFIG_PATH),
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
    // Also beside other problems: every missing variable in one message, not one per attempt.
  }, { when: () => true });

export type Env = z.infer<typeof envSchema>;

/** Where each credential comes from, said with the problem (docs/guide.md has the steps). */
const WHERE_FROM: Record<string, string> = {
  SLACK_BOT_TOKEN: "the Bot User OAuth Token (xoxb-…) on your Slack app's OAuth & Permissions page",
  SLACK_SIGNING_SECRET: "the Signing Secret on your Slack app's Basic Information page",
  SLACK_APP_TOKEN: "an app-level token (xapp-…) with connections:write, under App-Level Tokens on your Slack app's Basic Information page",
  DIGITALOCEAN_TOKEN: 'a DigitalOcean API token (control panel → API → Tokens) with the database scopes listed in docs/guide.md',
};

/** Reads the environment; a missing or malformed variable is a ConfigInvalid error naming it (never its value). */
export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  // Empty strings count as unset: `FOO= node ...` should fall back to the default, not fail validation.
  const present = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    const from = WHERE_FROM[name];
    return `  ${name}: ${describeIssue(issue, present[name], false)}${from ? `; it is ${from}` : ''}`;
  });
  throw new CodedError(ErrorCode.ConfigInvalid, `Invalid environment:\n${lines.join('\n')}`);
}
