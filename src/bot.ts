/**
 * The composition root: opens the store, builds the adapters and the Slack app, and wires them
 * together. Nothing else in the code base constructs adapters; `main.ts` reads the environment.
 */
import type { Env } from './config/env.js';
import type { LoadedConfig } from './config/profiles.js';
import type { Logger } from './log.js';
import { createBoltApp } from './slack/bolt-app.js';
import { openStore, type Store } from './store/index.js';

export interface RunningBot {
  port: number | undefined;
  stop(): Promise<void>;
}

export async function startBot(env: Env, config: LoadedConfig, log: Logger): Promise<RunningBot> {
  const store: Store = await openStore(env, log);
  const app = createBoltApp({
    env,
    log,
    health: async () => {
      await store.db.query('SELECT 1');
      return { ok: true, detail: { store: store.db.engine, profiles: config.profiles.size } };
    },
  });
  const server = (await app.start(env.PORT)) as unknown as { address?: () => unknown } | undefined;
  const address = server?.address?.();
  const port = typeof address === 'object' && address !== null ? (address as { port: number }).port : env.PORT;
  log.info({ port, profiles: [...config.profiles.keys()], store: store.db.engine }, 'pgcutover is listening');
  return {
    port,
    async stop() {
      await app.stop();
      await store.db.close();
    },
  };
}
