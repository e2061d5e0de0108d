/**
 * The sandbox as a new user meets it: `node dist/sandbox/main.js` (what `npm run sandbox` runs after
 * building) starts everything and prints the console's address; Debian's Chromium, driven by Playwright,
 * plays the whole cutover in the Slack-like console as two people under the sandbox's write load; Ctrl-C
 * (SIGINT) removes everything. A screenshot of the console is kept in test-artifacts/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadView } from '../../src/sandbox/write-load.js';
import { until } from '../support/wait.js';

const ENTRY = fileURLToPath(new URL('../../dist/sandbox/main.js', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

describe('npm run sandbox: the console in a browser', () => {
  let sandbox: ChildProcess | undefined;
  let exited: Promise<number | string> | undefined;
  let output = '';
  let consoleUrl = '';
  let userDataDir: string | undefined;
  let browser: BrowserContext | undefined;
  let page: Page | undefined;

  const printed = (label: string) => new RegExp(`${label}:\\s+(\\S+)`).exec(output)?.[1] ?? '';
  const state = async () => (await (await fetch(`${consoleUrl}api/state`)).json()) as { load: LoadView };
  const statusHeader = () => page!.locator('#messages .b-header').first();
  const button = (text: string) => page!.locator('#messages button.slack', { hasText: text });
  const actAs = (person: string) => page!.locator(`#people button[data-person="${person}"]`).click();
  /** The session version the status message shows (`· vN ·`): each request and approval moves it on. */
  const version = async () => Number(/· v(\d+) ·/.exec((await page!.locator('#messages .b-context').first().textContent()) ?? '')?.[1] ?? 0);
  /** Does `act` and waits until the status message is redrawn past it, as a person watching would. */
  const andRedrawn = async (act: () => Promise<unknown>) => {
    const before = await version();
    await act();
    await expect.poll(version, { timeout: 60_000 }).toBeGreaterThan(before);
  };

  beforeAll(async () => {
    if (!existsSync(ENTRY)) throw new Error(`${ENTRY} is missing: run \`npm run build\` (npm test does)`);
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
    sandbox = spawn(process.execPath, [ENTRY, '--writes-per-second', '30'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const child = sandbox;
    exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    consoleUrl = await until(
      'the sandbox to print the console address',
      () => {
        if (child.exitCode !== null) throw new Error(`the sandbox exited (${child.exitCode}):\n${output}`);
        return printed('Console') || undefined;
      },
      240_000,
      () => output,
    );
    userDataDir = mkdtempSync(join(tmpdir(), 'pgcutover-chromium-'));
    browser = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 900 } });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(60_000);
  }, 300_000);

  afterAll(async () => {
    if (page) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'sandbox-console.png'), fullPage: true }).catch(() => undefined);
    }
    await browser?.close().catch(() => undefined);
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    if (sandbox && sandbox.exitCode === null && sandbox.signalCode === null) {
      sandbox.kill('SIGINT');
      const done = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 90_000))]);
      if (done === 'timeout') sandbox.kill('SIGKILL');
    }
  }, 180_000);

  /** The sandbox's logs, kept in the artifacts while its directory still exists: what a failed run in CI leaves to read. */
  const keepLogs = () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    for (const [label, file] of [['Bot log', 'sandbox-bot.log'], ['PgBouncer log', 'sandbox-pgbouncer.log']] as const) {
      const from = printed(label);
      if (from && existsSync(from)) copyFileSync(from, join(ARTIFACTS, file));
    }
  };

  it('runs /migrate start demo, a switch requested by Alice and approved by Bob with the typed name, without a failed write', async ({ onTestFailed }) => {
    onTestFailed(keepLogs);
    const p = page!;
    await p.goto(`${consoleUrl}#as=U0ALICE`);
    await p.locator('#message-box').fill('/migrate start demo');
    await p.locator('#message-box').press('Enter');
    await expect.poll(() => statusHeader().textContent(), { timeout: 120_000 }).toContain('syncing');

    // The lag settles: measured, and small, three seconds running.
    await until(
      'the lag to settle',
      async () => {
        const recent = (await state()).load.seconds.slice(-4, -1);
        return recent.length === 3 && recent.every((s) => s.lagBytes !== null && s.lagBytes < 1024 * 1024);
      },
      120_000,
      async () => JSON.stringify((await state()).load.lag),
    );

    // Alice requests the switch; Bob approves it ahead of time in the dialog, typing the database name.
    await andRedrawn(() => button('Request switch').click());
    await actAs('U0BOB');
    await button('Approve switch').click();
    const dialog = p.getByRole('dialog', { name: 'Switch to target' });
    await dialog.locator('#modal-input').fill('orders');
    await andRedrawn(() => dialog.locator('#dialog-submit').click());
    await dialog.waitFor({ state: 'hidden' });

    // Alice requests the freeze; Bob approves it through the confirm dialog; the approved switch follows.
    await actAs('U0ALICE');
    await andRedrawn(() => button('Request freeze').click());
    await actAs('U0BOB');
    await button('Approve & freeze writes').click();
    await p.getByRole('dialog', { name: 'Freeze writes?' }).locator('#dialog-submit').click();
    await expect.poll(() => statusHeader().textContent(), { timeout: 120_000 }).toContain('switched');

    // The panel: writes land on the target now, and not one failed.
    await expect.poll(async () => Number(await p.locator('#load-target').textContent()), { timeout: 60_000 }).toBeGreaterThan(30);
    await expect.poll(() => p.locator('#load-where').textContent(), { timeout: 30_000 }).toBe('the target');
    expect(await p.locator('#load-errors').textContent()).toBe('0');
    const { load } = await state();
    expect(load.totals.errors).toBe(0);
    expect(load.totals.source).toBeGreaterThan(0);
    await expect.poll(() => p.locator('#thread-messages').textContent(), { timeout: 30_000 }).toContain('Writes were frozen for');
  }, 600_000);

  it('Ctrl-C stops and removes everything it started', async () => {
    const ports = ['Source', 'Target'].map((label) => Number(printed(label).split('/')[0]!.split(':')[1]));
    const workDir = dirname(printed('Profile'));
    expect(ports.every((port) => port > 0)).toBe(true);
    expect(existsSync(workDir)).toBe(true);
    sandbox!.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(await Promise.all(ports.map(portOpen))).toEqual([false, false]);
    expect(existsSync(workDir)).toBe(false);
    expect(await fetch(consoleUrl).then(() => 'answered', () => 'closed')).toBe('closed');
  }, 120_000);
});
