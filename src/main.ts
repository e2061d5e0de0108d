/**
 * The process entry point: reads the environment and the profiles file (exit code 2 when either is
 * wrong), starts the bot, and shuts it down gracefully on SIGTERM or SIGINT.
 */
// First: sets how WebAssembly compiles before any module compiles some (the embedded store's memory).
import './adapters/store/webassembly-baseline.js';
import { compileEmbeddedEngine } from './adapters/store/database.js';
import type { RunningBot } from './composition-root.js';
import { DEFAULT_CONFIG_PATH, loadEnv, type Env } from './config/env.js';
import { loadProfiles, type LoadedConfig } from './config/profiles.js';
import { CodedError, ErrorCode } from './errors.js';
import { createLogger } from './log.js';

/** Exit code for configuration errors, so orchestration can tell "fix the config" from a crash. */
const EXIT_CONFIG = 2;

/** Runs `read`; a configuration problem is collected into `problems` instead of thrown. */
function collecting<T>(problems: string[], read: () => T): T | undefined {
  try {
    return read();
  } catch (error) {
    if (error instanceof CodedError && error.code === ErrorCode.ConfigInvalid) {
      problems.push(error.message);
      return undefined;
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const problems: string[] = [];
  const env: Env | undefined = collecting(problems, () => loadEnv());
  // Read even when the environment is wrong: every problem in one round, not one per attempt.
  const configPath = env?.PGCUTOVER_CONFIG ?? (process.env.PGCUTOVER_CONFIG || DEFAULT_CONFIG_PATH);
  const config: LoadedConfig | undefined = collecting(problems, () => loadProfiles(configPath));
  if (!env || !config) {
    for (const problem of problems) process.stderr.write(`pgcutover: ${problem}\n`);
    process.exit(EXIT_CONFIG);
  }
  const log = createLogger(env.LOG_LEVEL);
  // The embedded store's engine compiles on other threads while the rest of the bot loads (imported
  // only now for that reason): its first /healthz comes sooner.
  if (!env.DATABASE_URL) void compileEmbeddedEngine();
  let bot: RunningBot;
  try {
    const { startBot } = await import('./composition-root.js');
    bot = await startBot(env, config, log);
  } catch (error) {
    // Found while starting, still the operator's to fix (e.g. the embedded store's DATA_DIR in use).
    if (error instanceof CodedError && error.code === ErrorCode.ConfigInvalid) {
      process.stderr.write(`pgcutover: ${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    bot.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`pgcutover: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
