/**
 * The product's acceptance test: the built bot as real processes (`node dist/main.js`), driven only
 * through signed Slack requests, moving a real database under continuous writes. Two PostgreSQL
 * clusters (the source with wal_level=logical), DigitalOcean's online migration through the DO
 * simulator (real logical replication), a real PgBouncer in transaction pooling in front of the
 * source, the bot's store in a database of the source cluster, and a fake Slack Web API.
 *
 *   1. /migrate start → syncing → freeze requested (Alice), approved (Bob) → switch requested,
 *      approved in the modal with the typed database name → /migrate finish: no write fails, every
 *      acknowledged write is on the target, no sequence collision, switched within the freeze budget, DO stopped.
 *   2. The bot is SIGKILLed while writes are frozen; restarted on the same store it resumes them:
 *      the held queries complete, nothing acknowledged is lost.
 *   3. Three bot processes on one store: the same buttons clicked on all three at once give exactly
 *      one freeze attempt and one switch.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalOceanClient } from '../../src/adapters/digitalocean/digitalocean-client.js';
import { Secret } from '../../src/secret.js';
import { captureLogger } from '../support/capture-log.js';
import { DO_CLUSTER, DO_TOKEN } from '../support/cutover-rig.js';
import { startWriter, type Writer } from '../support/cutover-writer.js';
import { BOT_SECRETS } from '../support/e2e-bot.js';
import { ALICE, BOB, startE2eRig, type E2eRig } from '../support/e2e-rig.js';
import { freePort } from '../support/free-port.js';
import { sleep, until } from '../support/wait.js';

const CHANNELS = ['C0E2EONE', 'C0E2ETWO'] as const;

describe('pgcutover end to end: Slack → bot process → real databases', () => {
  const { logger } = captureLogger('info');
  let rig: E2eRig;
  let targetPool: pg.Pool;
  let writer: Writer | undefined;
  /** The port of the bot left running by the SIGKILL test (the three-replica test joins it). */
  let survivorPort = 0;

  // ── Slack, as people use it ──────────────────────────────────────────────────────────────────
  const command = (port: number, channel: string, user: string, text: string) => rig.people.command(port, channel, user, text);
  const status = (channel: string) => rig.people.status(channel);
  const buttons = (channel: string) => rig.people.buttons(channel);
  const click = (port: number, channel: string, user: string, action: string) => rig.people.click(port, channel, user, action);
  const sessionIn = (channel: string) => until(`a session in ${channel}`, async () => (await rig.sessions.listForChannel(channel, 1))[0]);
  const onTarget = async (ids: string[]) => {
    const { rows } = await targetPool.query<{ id: string }>('SELECT id FROM writes WHERE id = ANY($1::text[])', [ids]);
    return new Set(rows.map((r) => r.id));
  };

  beforeAll(async () => {
    rig = await startE2eRig({ queryWaitTimeout: 30 }, logger);
    rig.writeProfile({ channels: CHANNELS, pauseTimeoutSeconds: 5, budgetSeconds: 30, flow: 'step-by-step', more: { description: 'Orders behind PgBouncer' } });
    targetPool = new pg.Pool({ connectionString: rig.target.connectionString('orders'), max: 2 });
    targetPool.on('error', () => undefined);
  }, 120_000);

  afterAll(async () => {
    await writer?.stop().catch(() => undefined);
    await targetPool?.end().catch(() => undefined);
    const storeUrl = rig?.source.connectionString('store');
    await rig?.stop('SIGTERM');
    // No secret in anything any bot process printed.
    const logs = rig?.bots.output() ?? '';
    for (const secret of [...BOT_SECRETS, storeUrl]) {
      if (secret) expect(logs).not.toContain(secret);
    }
  });

  it('moves the database under continuous writes: no failed write, nothing lost, no sequence collision', async () => {
    const channel = CHANNELS[0];
    const port = await freePort();
    const bot = await rig.bots.start(port);

    await command(port, channel, ALICE, 'start orders');
    let session = await rig.waitState(channel, 'syncing');
    expect(session.doMigrationId).toBeTruthy();
    expect((await rig.sim.migration(DO_CLUSTER))?.status).toBe('syncing');

    writer = startWriter(rig.bouncer.connectionString('orders'), { prefix: 'happy', workers: 8 });
    await sleep(1500);

    // Gate 1: Alice requests the freeze, Bob approves it.
    await click(port, channel, ALICE, 'freeze_request');
    await click(port, channel, BOB, 'freeze_approve');
    session = await rig.waitState(channel, 'frozen');
    await until('the fence proven and the sequences copied', async () =>
      (await rig.journal.entries(session.id)).some((e) => e.step === 'sequences' && e.event === 'done'),
    );

    // Gate 2: Alice requests the switch; Bob approves in the modal, typing the database name.
    await click(port, channel, ALICE, 'switch_request');
    const { submitted } = await rig.approveSwitch(port, channel);
    expect((await submitted).status).toBe(200);
    session = await rig.waitState(channel, 'switched');
    expect(await rig.entry()).toMatchObject({ port: rig.target.port, paused: 0 });

    // Writes go on, now on the target.
    const load = writer;
    await until('writes acknowledged by the target', () => load.acked.filter((a) => a.port === rig.target.port).length > 500);
    await command(port, channel, ALICE, 'finish');
    session = await rig.waitState(channel, 'finished');
    const result = await load.stop();
    writer = undefined;

    // Not one write failed, and every acknowledged write of every phase is on the target.
    expect(load.errors).toEqual([]);
    const present = await onTarget(load.acked.map((a) => a.id));
    expect(load.acked.filter((a) => !present.has(a.id))).toEqual([]);
    const fromSource = load.acked.filter((a) => a.port === rig.source.port);
    const fromTarget = load.acked.filter((a) => a.port === rig.target.port);
    expect(fromSource.length).toBeGreaterThan(0);
    expect(fromTarget.length).toBeGreaterThan(0);
    // New rows on the target took sequence values above everything the source handed out.
    expect(Math.min(...fromTarget.map((a) => a.n))).toBeGreaterThan(Math.max(...fromSource.map((a) => a.n)));

    const attempt = await rig.journal.latestCutover(session.id);
    expect(attempt).toMatchObject({ resumedOn: 'target', outcome: 'switched' });
    const frozenMs = attempt!.resumedAt!.getTime() - attempt!.frozenAt!.getTime();
    // Switched, not resumed on the source by the budget: the outcome; the figures are logged below and measured in bench/.
    expect(frozenMs).toBeGreaterThan(0);
    const thread = rig.slack.thread(status(channel)!.ts).map((m) => m.text).join('\n');
    expect(thread).toContain(`Writes were frozen for ${frozenMs} ms`);
    expect(thread).toContain(`freeze approved by <@${BOB}>`);
    expect(thread).not.toMatch(/:x: /);
    expect(status(channel)!.text).toContain('finished');
    expect(buttons(channel)).toEqual([]);
    expect(rig.slack.topLevel(channel)).toHaveLength(1);
    // DigitalOcean's migration is stopped.
    const doApi = new DigitalOceanClient({ token: new Secret(DO_TOKEN), baseUrl: rig.sim.url, logger });
    expect((await doApi.getOnlineMigration(DO_CLUSTER))?.status ?? 'none').toMatch(/^(canceled|none)$/);
    console.info(
      `e2e switch: frozen ${frozenMs} ms (fence ${attempt?.fence?.elapsedMs} ms, lag at freeze ${attempt?.lagAtFreeze?.bytes} bytes), ` +
        `writes held ${attempt?.writesHeld}, ${result.acked} writes in ${result.seconds.toFixed(1)} s (${result.perSecond}/s), ` +
        `${result.errors} errors, max write latency ${result.maxLatencyMs} ms`,
    );
    await rig.bots.stop(bot);
  });

  it('SIGKILL while writes are frozen: the restarted bot resumes them, the held writes complete, nothing is lost', async () => {
    // A fresh migration: an empty target database, a new PgBouncer pointing at the source.
    await rig.fresh();

    const channel = CHANNELS[1];
    const port = await freePort();
    const bot = await rig.bots.start(port);
    await command(port, channel, ALICE, 'start orders');
    let session = await rig.waitState(channel, 'syncing');
    const load = (writer = startWriter(rig.bouncer.connectionString('orders'), { prefix: 'kill', workers: 8 }));
    await sleep(1000);

    await click(port, channel, ALICE, 'freeze_request');
    await click(port, channel, BOB, 'freeze_approve');
    session = await rig.waitState(channel, 'frozen');
    expect(await rig.entry()).toMatchObject({ port: rig.source.port, paused: 1 });
    const exited = rig.bots.kill(bot);
    const killedAt = Date.now();
    expect(await exited).toBe('SIGKILL');
    // Still frozen with nobody left to resume: the writes wait in PgBouncer.
    await sleep(300);
    const ackedWhileDead = load.acked.filter((a) => a.ackedAt > killedAt + 50).length;
    expect((await rig.entry())?.paused).toBe(1);

    const restarted = await rig.bots.start(port);
    session = await rig.waitState(channel, 'syncing');
    const resumedAt = Date.now();
    expect(await rig.entry()).toMatchObject({ port: rig.source.port, paused: 0 });
    await until('writes acknowledged after the restart', () => load.acked.some((a) => a.ackedAt > resumedAt + 200) || undefined);
    const result = await load.stop();
    writer = undefined;

    expect(load.errors).toEqual([]);
    expect(ackedWhileDead).toBe(0);
    // The held writes were sent before the kill and acknowledged only after the restart.
    const held = load.acked.filter((a) => a.sentAt < killedAt && a.ackedAt > killedAt);
    expect(held.length).toBeGreaterThan(0);
    const rows = await rig.source.query<{ id: string }>("SELECT id FROM writes WHERE id LIKE 'kill-%'", [], 'orders');
    const present = new Set(rows.map((r) => r.id));
    expect(load.acked.filter((a) => !present.has(a.id))).toEqual([]);
    const thread = rig.slack.thread(status(channel)!.ts).map((m) => m.text).join('\n');
    expect(thread).toMatch(/after a restart I found writes frozen/i);
    const undone = (await rig.journal.entries(session.id)).filter((e) => e.step === 'freeze').map((e) => e.event);
    expect(undone).toEqual(['started', 'done', 'undone']);
    console.info(
      `e2e SIGKILL: ${held.length} writes held across the kill and restart (max latency ${result.maxLatencyMs} ms), ` +
        `${result.acked} writes (${result.perSecond}/s), ${result.errors} errors`,
    );
    expect(restarted.child.exitCode).toBeNull();
    survivorPort = port;
  });

  it('three bot processes on one store: buttons clicked on all three at once give one freeze attempt and one switch', async () => {
    const channel = CHANNELS[1];
    expect(survivorPort).toBeGreaterThan(0);
    const ports = [survivorPort, await freePort(), await freePort()];
    await Promise.all(ports.slice(1).map((p) => rig.bots.start(p)));
    let session = await sessionIn(channel);
    expect(session.state).toBe('syncing');
    const cutovers = async () => (await rig.journal.attempts(session.id)).filter((a) => a.kind === 'cutover');
    const before = (await cutovers()).length;
    const load = (writer = startWriter(rig.bouncer.connectionString('orders'), { prefix: 'trio', workers: 8 }));
    await sleep(1000);

    await click(ports[1]!, channel, ALICE, 'freeze_request');
    const freezeMessage = await rig.people.current(channel, 'freeze_approve');
    await Promise.all(ports.map((p) => rig.people.clickOn(p, channel, BOB, 'freeze_approve', freezeMessage)));
    session = await rig.waitState(channel, 'frozen');
    await until('the fence proven in the new attempt', async () =>
      (await rig.journal.entries(session.id)).some((e) => e.attempt > before && e.step === 'sequences' && e.event === 'done'),
    );

    await click(ports[2]!, channel, ALICE, 'switch_request');
    const switchMessage = await rig.people.current(channel, 'switch_approve');
    const opened = rig.slack.callsTo('views.open').length;
    await Promise.all(ports.map((p) => rig.people.clickOn(p, channel, BOB, 'switch_approve', switchMessage)));
    await until('the confirmation modals', () => rig.slack.callsTo('views.open').length > opened);
    const view = rig.slack.callsTo('views.open').at(-1)!.body.view as Record<string, unknown>;
    await Promise.all(ports.map((p) => rig.people.submitModal(p, BOB, view, 'orders')));
    session = await rig.waitState(channel, 'switched');
    await until('writes acknowledged by the target', () => load.acked.filter((a) => a.port === rig.target.port).length > 200);
    const result = await load.stop();
    writer = undefined;

    // Exactly one cutover: one new attempt, one freeze, one repoint, one resume on the target.
    const attempts = await cutovers();
    expect(attempts).toHaveLength(before + 1);
    const entries = (await rig.journal.entries(session.id)).filter((e) => e.attempt > before);
    const count = (step: string, event: string) => entries.filter((e) => e.step === step && e.event === event).length;
    expect(count('freeze', 'started')).toBe(1);
    expect(count('repoint', 'started')).toBe(1);
    expect(count('resume_target', 'done')).toBe(1);
    expect(attempts.at(-1)).toMatchObject({ resumedOn: 'target', outcome: 'switched' });
    // The replicas that did not hold the freeze waited for the holder's switch instead of failing the approval.
    const thread = rig.slack.thread(status(channel)!.ts).map((m) => m.text);
    expect(thread.filter((t) => t.startsWith(':x:'))).toEqual([]);
    expect(thread.filter((t) => t.includes('Switched: writes go to the target'))).toHaveLength(1);
    expect(await rig.entry()).toMatchObject({ port: rig.target.port, paused: 0 });
    expect(load.errors).toEqual([]);
    const present = await onTarget(load.acked.map((a) => a.id));
    expect(load.acked.filter((a) => !present.has(a.id))).toEqual([]);
    const last = attempts.at(-1)!;
    console.info(
      `e2e three replicas: one cutover, frozen ${last.resumedAt!.getTime() - last.frozenAt!.getTime()} ms, ` +
        `${result.acked} writes (${result.perSecond}/s), ${result.errors} errors`,
    );
  });
});
