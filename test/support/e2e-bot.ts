/**
 * The built bot as processes, for the end-to-end tests that drive it through signed Slack requests:
 * the environment it runs with (fake Slack, the DO simulator, a PostgreSQL store, a profiles file in a
 * temporary directory, the passwords the profile references), the processes started and stopped (their
 * output kept, so a test can check that no secret was ever printed), and the people who click.
 */
import { join } from 'node:path';
import type { SessionStore } from '../../src/adapters/store/session-store.js';
import { startBotProcess, type BotProcess } from './bot-process.js';
import { DO_TOKEN } from './cutover-rig.js';
import type { FakeSlack } from './fake-slack.js';
import { RIG_PASSWORD } from './pg-cluster.js';
import { PGBOUNCER_ADMIN_PASSWORD } from './pgbouncer.js';
import { SlackPeople } from './slack-people.js';

export const SIGNING_SECRET = 'e2e-signing-secret-0123456789';
export const SLACK_TOKEN = 'xoxb-e2e-bot-token-0123456789';
/** What a profile file calls the source's password (`${SOURCE_PASSWORD_VAR}`). */
export const SOURCE_PASSWORD_VAR = 'ORDERS_SOURCE_PASSWORD';
/** Every secret a bot process is given: none may appear in anything it prints. */
export const BOT_SECRETS = [SLACK_TOKEN, SIGNING_SECRET, DO_TOKEN, RIG_PASSWORD, PGBOUNCER_ADMIN_PASSWORD];

export interface BotWorld {
  slack: FakeSlack;
  /** The DO simulator's URL. */
  doApiUrl: string;
  /** The bot's store (`DATABASE_URL`). */
  storeUrl: string;
  /** Holds the profiles file (`pgcutover.yml`) and the bot's `data` directory. */
  dir: string;
  sourcePassword: string;
}

/** The environment of a bot process listening on `port`. */
export function botEnv(world: BotWorld, port: number): Record<string, string> {
  return {
    SLACK_BOT_TOKEN: SLACK_TOKEN,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: world.slack.apiUrl,
    PORT: String(port),
    DIGITALOCEAN_TOKEN: DO_TOKEN,
    DIGITALOCEAN_API_URL: world.doApiUrl,
    DATABASE_URL: world.storeUrl,
    DATA_DIR: join(world.dir, 'data'),
    PGCUTOVER_CONFIG: join(world.dir, 'pgcutover.yml'),
    [SOURCE_PASSWORD_VAR]: world.sourcePassword,
    PGBOUNCER_ADMIN_PASSWORD,
    LOG_LEVEL: 'info',
  };
}

/** People clicking in Slack, reading the channel's newest session from the store. */
export function slackPeople(slack: FakeSlack, sessions: SessionStore): SlackPeople {
  return new SlackPeople({ slack, secret: SIGNING_SECRET, latest: async (channel) => (await sessions.listForChannel(channel, 1))[0] });
}

/** The bot processes a test file runs; what each printed is kept once it is gone. */
export class BotFleet {
  readonly #env: (port: number) => Record<string, string>;
  readonly #running: BotProcess[] = [];
  readonly #outputs: string[] = [];

  constructor(env: (port: number) => Record<string, string>) {
    this.#env = env;
  }

  /** A bot process on `port`, not waited for. */
  spawn(port: number): BotProcess {
    const bot = startBotProcess(this.#env(port));
    this.#running.push(bot);
    return bot;
  }

  /** A bot process on `port`, once it answers /healthz. */
  async start(port: number): Promise<BotProcess> {
    const bot = this.spawn(port);
    await bot.waitForHealth(port);
    return bot;
  }

  /** Stops `bot` with `signal`; resolves with its exit code (or signal). */
  async stop(bot: BotProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | string> {
    const exited = await bot.stop(signal);
    this.#forget(bot);
    return exited;
  }

  /** Sends SIGKILL now; the promise resolves once the process is gone, with how it exited. */
  kill(bot: BotProcess): Promise<number | string> {
    bot.child.kill('SIGKILL');
    return bot.exited.then((exited) => {
      this.#forget(bot);
      return exited;
    });
  }

  /** Stops every bot still running (cleanup). */
  async stopAll(signal: NodeJS.Signals): Promise<void> {
    for (const bot of [...this.#running]) await this.stop(bot, signal).catch(() => undefined);
  }

  /** What every stopped bot printed. */
  output(): string {
    return this.#outputs.join('\n');
  }

  #forget(bot: BotProcess): void {
    const at = this.#running.indexOf(bot);
    if (at < 0) return;
    this.#running.splice(at, 1);
    this.#outputs.push(bot.output());
  }
}
