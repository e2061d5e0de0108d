/**
 * `npm run sandbox [-- --source <dsn> --target <dsn>] [--port <n>] [--writes-per-second <n>]`: starts the
 * sandbox, prints the console's address, and on SIGINT or SIGTERM removes everything it started.
 * The rehearsal's servers may also come from SANDBOX_SOURCE_URL and SANDBOX_TARGET_URL.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { startSandbox, type Sandbox } from './sandbox.js';
import { serverUrlSchema } from './sandbox-profile.js';

const argsSchema = z
  .object({
    source: serverUrlSchema.optional(),
    target: serverUrlSchema.optional(),
    port: z.coerce.number().int().min(0).max(65535).default(0),
    'writes-per-second': z.coerce.number().int().min(1).max(1000).default(40),
  })
  .refine((a) => (a.source === undefined) === (a.target === undefined), 'a rehearsal needs both --source and --target');

function usage(message: string): never {
  process.stderr.write(`pgcutover sandbox: ${message}\nusage: npm run sandbox [-- --source <postgres-url> --target <postgres-url>] [--port <n>] [--writes-per-second <n>]\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let raw;
  try {
    raw = parseArgs({
      options: { source: { type: 'string' }, target: { type: 'string' }, port: { type: 'string' }, 'writes-per-second': { type: 'string' } },
    }).values;
  } catch (error) {
    usage((error as Error).message);
  }
  const parsed = argsSchema.safeParse({
    ...raw,
    source: raw.source ?? (process.env.SANDBOX_SOURCE_URL || undefined),
    target: raw.target ?? (process.env.SANDBOX_TARGET_URL || undefined),
  });
  if (!parsed.success) usage(parsed.error.issues.map((i) => `${i.path.join('.') || 'arguments'}: ${i.message}`).join('; '));
  const args = parsed.data;
  // Signals count from the first moment: one during start-up stops everything once it is up.
  let stopping: string | undefined;
  let sandbox: Sandbox | undefined;
  const stop = (running: Sandbox) => {
    process.stdout.write(`${stopping}: stopping and removing everything the sandbox started…\n`);
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`pgcutover sandbox: stop failed: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  const shutdown = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = signal;
    if (sandbox) stop(sandbox);
    else process.stdout.write(`${signal}: stopping as soon as start-up is done…\n`);
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.stdout.write(args.source ? 'Starting the rehearsal on your servers…\n' : 'Starting the sandbox (two PostgreSQL clusters, the DigitalOcean simulator, the bot)…\n');
  sandbox = await startSandbox({
    ...(args.source && args.target ? { rehearsal: { source: args.source, target: args.target } } : {}),
    consolePort: args.port,
    writesPerSecond: args['writes-per-second'],
  });
  process.stdout.write(
    [
      '',
      `  Console:  ${sandbox.consoleUrl}`,
      `  Source:   ${sandbox.source.host}:${sandbox.source.port}/${sandbox.source.database}`,
      `  Target:   ${sandbox.target.host}:${sandbox.target.port} (behind the DigitalOcean simulator)`,
      `  Writes:   ${sandbox.via === 'pgbouncer' ? 'through PgBouncer' : 'directly to the source (PgBouncer is not installed)'}`,
      `  Profile:  ${sandbox.profilePath}`,
      `  Bot log:  ${sandbox.logPath}`,
      ...(sandbox.bouncerLogPath ? [`  PgBouncer log:  ${sandbox.bouncerLogPath}`] : []),
      '',
      'Open the console and type /migrate start demo. Ctrl-C stops and removes everything.',
      '',
    ].join('\n'),
  );
  if (stopping) stop(sandbox);
}

main().catch((error: unknown) => {
  process.stderr.write(`pgcutover sandbox: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
