/**
 * A dead freeze holder, with the built bot as real processes on one PostgreSQL store, a real PgBouncer
 * in front of the source, the DO simulator and a fake Slack, while a client writes through PgBouncer:
 *
 *   1. Two replicas: the one holding the freeze is SIGKILLed; the survivor resumes writes on the
 *      source before the freeze budget ends (its lock went with the dead process's connection).
 *   2. One replica: SIGKILLed while frozen, then restarted: writes are resumed before it answers
 *      /healthz (recovery runs before the slower start-up).
 *
 * Either way the held writes complete and nothing acknowledged is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Session } from '../../src/domain/session.js';
import type { BotProcess } from '../support/bot-process.js';
import { captureLogger } from '../support/capture-log.js';
import { startWriter, type Writer } from '../support/cutover-writer.js';
import { BOT_SECRETS } from '../support/e2e-bot.js';
import { ALICE, BOB, startE2eRig, type E2eRig } from '../support/e2e-rig.js';
import { freePort } from '../support/free-port.js';
import { sleep, until } from '../support/wait.js';

const CHANNEL = 'C0TAKEOVER';
/** Long enough for a slow machine to start a process within it, short enough to matter. */
const BUDGET_SECONDS = 20;

describe('a dead freeze holder: writes resume without it', () => {
  const { logger } = captureLogger('info');
  let rig: E2eRig;
  let writer: Writer | undefined;

  const kill = async (bot: BotProcess) => expect(await rig.bots.kill(bot)).toBe('SIGKILL');
  const command = (port: number, user: string, text: string) => rig.people.command(port, CHANNEL, user, text);
  const click = (port: number, user: string, action: string) => rig.people.click(port, CHANNEL, user, action);
  const waitState = (state: Session['state'], timeoutMs?: number) => rig.waitState(CHANNEL, state, timeoutMs);
  const session = async () => (await rig.sessions.listForChannel(CHANNEL, 1))[0];
  const paused = async (): Promise<number | undefined> => (await rig.entry())?.paused;
  /** Freezes writes through the bot on `port` (Alice requests, Bob approves); resolves once frozen. */
  const freeze = async (port: number) => {
    await click(port, ALICE, 'freeze_request');
    await click(port, BOB, 'freeze_approve');
    const frozen = await waitState('frozen');
    expect(await paused()).toBe(1);
    return frozen;
  };
  /** Every acknowledged write is on the source, none failed, and some were held across the dead holder. */
  const nothingLost = async (load: Writer, killedAt: number) => {
    expect(load.errors).toEqual([]);
    expect(load.acked.filter((a) => a.sentAt < killedAt && a.ackedAt > killedAt).length).toBeGreaterThan(0);
    const rows = await rig.source.query<{ id: string }>('SELECT id FROM writes WHERE id = ANY($1::text[])', [load.acked.map((a) => a.id)], 'orders');
    const present = new Set(rows.map((r) => r.id));
    expect(load.acked.filter((a) => !present.has(a.id))).toEqual([]);
  };

  beforeAll(async () => {
    rig = await startE2eRig({ queryWaitTimeout: 60 }, logger);
    rig.writeProfile({ channels: [CHANNEL], pauseTimeoutSeconds: 5, budgetSeconds: BUDGET_SECONDS, flow: 'step-by-step' });
  }, 120_000);

  afterAll(async () => {
    await writer?.stop().catch(() => undefined);
    await rig?.stop();
    const logs = rig?.bots.output() ?? '';
    for (const secret of BOT_SECRETS) expect(logs).not.toContain(secret);
  });

  it('two replicas: the holder is SIGKILLed while frozen, the survivor resumes writes within the budget', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = rig.bots.spawn(portA);
    const b = rig.bots.spawn(portB);
    await Promise.all([a.waitForHealth(portA), b.waitForHealth(portB)]);
    await command(portA, ALICE, 'start orders');
    await waitState('syncing', 60_000);
    const load = (writer = startWriter(rig.bouncer.connectionString('orders'), { prefix: 'takeover', workers: 4 }));
    await sleep(500);

    // A runs the freeze, so A holds it (its budget timer, its lock); then A dies.
    const frozen = await freeze(portA);
    await kill(a);
    const killedAt = Date.now();

    const resumed = await waitState('syncing', BUDGET_SECONDS * 1000);
    expect(resumed.id).toBe(frozen.id);
    expect(await paused()).toBe(0);
    const attempt = await rig.journal.latestCutover(frozen.id);
    expect(attempt).toMatchObject({ resumedOn: 'source', freezeBudgetSeconds: BUDGET_SECONDS });
    // The outcome that matters: writes came back before the budget ran out, with nobody restarted.
    expect(attempt!.resumedAt!.getTime()).toBeLessThan(attempt!.frozenAt!.getTime() + BUDGET_SECONDS * 1000);
    expect((await rig.journal.entries(frozen.id)).filter((e) => e.step === 'freeze').map((e) => e.event)).toEqual(['started', 'done', 'undone']);
    await until('writes acknowledged after the takeover', () => load.acked.some((w) => w.ackedAt > killedAt + 200));
    await load.stop();
    writer = undefined;
    await nothingLost(load, killedAt);
    expect(b.child.exitCode).toBeNull();
    expect(rig.people.thread(CHANNEL).map((m) => m.text).join('\n')).toMatch(/found writes frozen/i);
    await rig.bots.stop(b);
  }, 180_000);

  it('one replica: SIGKILLed while frozen and restarted, writes are resumed before it answers /healthz', async () => {
    const port = await freePort();
    const first = rig.bots.spawn(port);
    await first.waitForHealth(port);
    const load = (writer = startWriter(rig.bouncer.connectionString('orders'), { prefix: 'restart', workers: 4 }));
    await sleep(500);
    const frozen = await freeze(port);
    await kill(first);
    const killedAt = Date.now();
    expect(await paused()).toBe(1);

    const restarted = rig.bots.spawn(port);
    await restarted.waitForHealth(port);
    // Looked at the moment /healthz first answers: the freeze was already undone.
    expect(await paused()).toBe(0);
    expect((await session())?.state).toBe('syncing');
    expect((await rig.journal.entries(frozen.id)).filter((e) => e.step === 'freeze').map((e) => e.event)).toEqual(['started', 'done', 'undone', 'started', 'done', 'undone']);
    await until('writes acknowledged after the restart', () => load.acked.some((w) => w.ackedAt > killedAt + 200));
    await load.stop();
    writer = undefined;
    await nothingLost(load, killedAt);
  }, 180_000);
});
