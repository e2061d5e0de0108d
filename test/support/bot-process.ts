/**
 * Runs the built bot (`node dist/main.js`, as in production) as a child process with a given
 * environment, for tests of start-up, exit codes, restarts and SIGKILL. `npm test` builds dist first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BOT_ENTRY = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

export interface BotProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  waitForHealth(port: number, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** `args`: what node runs instead of the built bot (the footprint benchmark's minimal Bolt app). */
export function startBotProcess(env: Record<string, string>, args: string[] = [BOT_ENTRY]): BotProcess {
  if (!existsSync(BOT_ENTRY)) throw new Error(`${BOT_ENTRY} is missing: run \`npm run build\` (npm test does)`);
  // Only what the test gives, plus PATH: nothing from the developer's own environment leaks in.
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  return {
    child,
    output: () => output,
    exited,
    // Waits for an outcome (an answer or an exit); the bound only catches a hung start on a loaded machine.
    async waitForHealth(port, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`the bot exited (${child.exitCode ?? child.signalCode}) before answering:\n${output}`);
        }
        try {
          const response = await fetch(`http://127.0.0.1:${port}/healthz`);
          if (response.ok) return (await response.json()) as Record<string, unknown>;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) throw new Error(`no /healthz answer within ${timeoutMs} ms:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
