/**
 * The whole session, end to end over HTTP: /migrate start → freeze requested and approved by a
 * second person → switch requested, approved with the typed database name (a wrong name is rejected
 * in the modal) → finish. Checks the one status message updated in place, its buttons per state,
 * the thread (audit trail), the engine calls, and /migrate history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, BOB, CAROL, CHANNELS, OTHER_CHANNEL, SOLO_CHANNEL, startHarness, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe('a session from start to finish', () => {
  it('starts, freezes, switches and finishes with one live status message', async () => {
    const ch = h.channel(CHANNELS[0]!);

    const started = await ch.command(ALICE, 'start orders');
    expect(started.status).toBe(200);
    expect(started.ack).toContain('Working on');
    let session = await ch.session();
    expect(session.state).toBe('syncing');
    expect(session.doMigrationId).toMatch(/^do-mig-/);
    const status = ch.status();
    expect(session.statusMessageTs).toBe(status.ts);
    expect(status.text).toContain('Migration orders');
    expect(JSON.stringify(status.blocks)).toContain('10.0.0.5:5432/orders');
    expect(JSON.stringify(status.blocks)).toContain('do-mig-');
    expect(JSON.stringify(status.blocks)).toContain('4.0 KiB');
    expect(ch.buttons()).toEqual(['freeze_request', 'switch_request', 'abort']);
    // Every button carries the session id and the version it was rendered at.
    const values = (status.blocks.find((b) => b.type === 'actions')!.elements as Array<{ value: string }>).map((e) => e.value);
    expect(new Set(values)).toEqual(new Set([`${session.id}:${session.version}`]));
    const abort = (status.blocks.find((b) => b.type === 'actions')!.elements as Array<Record<string, unknown>>).find((e) => e.action_id === 'pgc.abort')!;
    expect(abort.style).toBe('danger');
    expect(abort.confirm).toBeDefined();

    // Gate 1: Alice requests the freeze, Bob (operator through the user group) approves it.
    expect((await ch.click(ALICE, 'freeze_request')).status).toBe(200);
    expect(ch.buttons()).toEqual(['freeze_approve', 'freeze_withdraw', 'switch_request', 'abort']);
    expect(JSON.stringify(ch.status().blocks)).toContain(`requested by <@${ALICE}>`);
    const approve = (ch.status().blocks.find((b) => b.type === 'actions')!.elements as Array<Record<string, unknown>>)[0]!;
    expect(approve).toMatchObject({ style: 'danger', confirm: { confirm: { text: 'Freeze writes' } } });
    await ch.click(BOB, 'freeze_approve');
    session = await ch.session();
    expect(session.state).toBe('frozen');
    expect(h.ops.count('freeze')).toBe(1);
    expect(ch.status().text).toContain('writes frozen');
    expect(JSON.stringify(ch.status().blocks)).toMatch(/\d+ s of the 30 s budget left/);
    expect(ch.buttons()).toEqual(['switch_request', 'resume', 'abort']);

    // Gate 2: Alice requests the switch; Carol (approver) approves in the modal with the typed name.
    await ch.command(ALICE, 'switch');
    expect(ch.buttons()).toEqual(['switch_approve', 'switch_withdraw', 'resume', 'abort']);
    await ch.click(CAROL, 'switch_approve');
    const opened = h.fake.callsTo('views.open').at(-1)!;
    const view = opened.body.view as { callback_id: string; private_metadata: string; blocks: Array<{ type: string }> };
    expect(view.callback_id).toBe('pgc.switch_confirm');
    expect(JSON.parse(view.private_metadata)).toMatchObject({ sessionId: session.id, action: 'switch_approve' });
    expect(view.blocks.some((b) => b.type === 'input')).toBe(true);

    const wrong = await ch.submitModal(CAROL, 'orders');
    expect(wrong.status).toBe(200);
    expect(wrong.json()).toMatchObject({ response_action: 'errors', errors: { db_name: expect.stringContaining('orders_prod') } });
    expect((await ch.session()).state).toBe('frozen');
    expect(h.ops.count('switchover')).toBe(0);

    const right = await ch.submitModal(CAROL, ' orders_prod ');
    expect(right.status).toBe(200);
    expect(right.text).toBe('');
    session = await ch.session();
    expect(session.state).toBe('switched');
    expect(h.ops.count('switchover')).toBe(1);
    expect(ch.buttons()).toEqual(['finish', 'rollback']);

    await ch.click(ALICE, 'finish');
    session = await ch.session();
    expect(session.state).toBe('finished');
    expect(ch.buttons()).toEqual([]);
    expect(ch.status().text).toContain('finished');
    // Still exactly one top-level message, updated in place many times.
    expect(h.fake.topLevel(ch.id)).toHaveLength(1);
    expect(ch.status().updates).toBeGreaterThanOrEqual(6);

    const ops = h.ops.calls.filter((c) => c.sessionId === session.id && c.ok && !['lag', 'plan', 'preflight'].includes(c.op));
    expect(ops.map((c) => [c.op, c.actor])).toEqual([
      ['startMigration', ALICE],
      ['freeze', BOB],
      ['switchover', CAROL],
      ['finish', ALICE],
    ]);

    const thread = ch.threadTexts().join('\n');
    expect(thread).toContain(`<@${ALICE}> requested the write freeze`);
    expect(thread).toContain(`<@${BOB}> approved the write freeze requested by <@${ALICE}>`);
    expect(thread).toContain(`<@${CAROL}> approved the switch requested by <@${ALICE}>`);
    expect(thread).toContain('Switched');
    expect(thread).toContain('Finished');

    const audit = await h.bot.store.audit.forSession(session.id);
    const trail = audit.map((a) => `${a.action}:${a.outcome}:${a.actor}`);
    expect(trail).toEqual(
      expect.arrayContaining([
        `start:requested:${ALICE}`,
        `start:succeeded:${ALICE}`,
        `freeze_request:requested:${ALICE}`,
        `freeze_approve:approved:${BOB}`,
        `freeze:succeeded:${BOB}`,
        `switch_request:requested:${ALICE}`,
        `switch_approve:refused:${CAROL}`,
        `switch_approve:approved:${CAROL}`,
        `switch:succeeded:${CAROL}`,
        `finish:succeeded:${ALICE}`,
      ]),
    );

    const history = await ch.command(CAROL, 'history');
    expect(history.ack).toContain('Audit trail');
    expect(history.ack).toContain('freeze_approve');
    expect(history.ack).toContain('*switch* → succeeded');
    expect(history.ack).not.toMatch(/stack|Error:/);

    // The channel is free again.
    const status2 = await ch.command(ALICE, 'status');
    expect(h.fake.responds.at(-1)!.body.text).toContain('No active session');
    expect(status2.status).toBe(200);
  });

  it('approves the switch ahead of time and runs it once frozen, exposing the approval to the engine', async () => {
    const ch = h.channel(CHANNELS[1]!);
    await ch.command(ALICE, 'start orders');
    await ch.click(BOB, 'switch_request');
    await ch.click(CAROL, 'switch_approve');
    await ch.submitModal(CAROL, 'orders_prod');
    let session = await ch.session();
    expect(session.state).toBe('syncing');
    const approval = await h.bot.approvals.validApproval(session.id, 'switch', h.clock.now());
    expect(approval).toMatchObject({ requestedBy: BOB, approvedBy: CAROL, status: 'approved' });
    expect(ch.threadTexts().join('\n')).toContain('ahead of time');
    expect(ch.buttons()).toEqual(['freeze_request', 'switch_withdraw', 'abort']);

    await ch.click(ALICE, 'freeze_request');
    await ch.click(CAROL, 'freeze_approve');
    expect(ch.buttons()).toEqual(['switch_run', 'switch_withdraw', 'resume', 'abort']);
    await ch.click(ALICE, 'switch_run');
    await ch.submitModal(ALICE, 'orders_prod');
    session = await ch.session();
    expect(session.state).toBe('switched');
    expect(await h.bot.approvals.validApproval(session.id, 'switch', h.clock.now())).toBeUndefined();

    await ch.click(ALICE, 'rollback');
    expect((await ch.session()).state).toBe('rolled_back');
  });

  it('answers help, profiles, dry-run, lag, preflight, report and malformed commands helpfully', async () => {
    const ch = h.channel(CHANNELS[2]!);
    const help = await ch.command(MALLORY_OR(CAROL), 'help');
    expect(help.json()).toMatchObject({ response_type: 'ephemeral' });
    expect(help.ack).toContain('/migrate start <profile> [--dry-run]');

    const empty = await ch.command(CAROL, '');
    expect(empty.ack).toContain('/migrate history');

    const typo = await ch.command(CAROL, 'stauts');
    expect(typo.json()).toMatchObject({ response_type: 'ephemeral' });
    expect(typo.ack).toContain('Did you mean `/migrate status`?');
    expect(typo.ack).toContain('Usage:');

    const noProfile = await ch.command(ALICE, 'start');
    expect(noProfile.ack).toContain('needs a profile name');
    expect(noProfile.ack).toContain('/migrate start <profile> [--dry-run]');

    const badFlag = await ch.command(ALICE, 'start orders --force');
    expect(badFlag.ack).toContain('--dry-run');

    const badSchedule = await ch.command(ALICE, 'report every 10s');
    expect(badSchedule.ack).toContain('too frequent');

    const profiles = await ch.command(CAROL, 'profiles');
    expect(profiles.ack).toContain('`orders`');
    expect(profiles.ack).not.toContain('`catalog`');

    const before = h.ops.calls.length;
    const dry = await ch.command(ALICE, 'start orders --dry-run');
    expect(dry.status).toBe(200);
    const dryText = String(h.fake.responds.at(-1)!.body.text);
    expect(dryText).toContain('Dry run of orders');
    expect(dryText).toContain('nothing was changed');
    expect(dryText).toContain('1. *freeze writes*');
    expect(dryText).toContain('wal_level');
    expect(h.ops.calls.slice(before).map((c) => c.op).sort()).toEqual(['plan', 'preflight']);
    expect(h.fake.topLevel(ch.id)).toHaveLength(0);
    expect(await h.bot.store.sessions.listForChannel(ch.id)).toEqual([]);

    const noSession = await ch.command(ALICE, 'lag');
    expect(String(h.fake.responds.at(-1)!.body.text)).toContain('no active migration session');
    expect(noSession.status).toBe(200);

    await ch.command(ALICE, 'start orders');
    await ch.command(CAROL, 'lag');
    expect(String(h.fake.responds.at(-1)!.body.text)).toContain('4.0 KiB');
    await ch.command(CAROL, 'preflight');
    expect(String(h.fake.responds.at(-1)!.body.text)).toContain('fix: wait for the target');
    await ch.command(ALICE, 'report every 10m');
    const session = await ch.session();
    expect(await new (await import('../../src/adapters/store/approvals.js')).ReportScheduleStore(h.bot.store.db).get(session.id)).toBe('every 10m');
    expect(JSON.stringify(ch.status().blocks)).toContain('reports every 10m');

    const second = await ch.command(BOB, 'start orders');
    expect(String(h.fake.responds.at(-1)!.body.text)).toContain('already has an active session');
    expect(second.status).toBe(200);
    expect(h.fake.topLevel(ch.id)).toHaveLength(1);
  });

  it('refuses a profile not allowed in the channel and an unknown profile', async () => {
    const ch = h.channel(CHANNELS[3]!);
    await ch.command(ALICE, 'start catalog');
    expect(String(h.fake.responds.at(-1)!.body.text)).toContain('may not be used in this channel');
    await ch.command(ALICE, 'start ordrs');
    expect(String(h.fake.responds.at(-1)!.body.text)).toContain('There is no profile `ordrs`');
    expect(await h.bot.store.sessions.listForChannel(ch.id)).toHaveLength(0);
    expect(OTHER_CHANNEL).toBeDefined();
  });

  it('with the two-person rule off, one operator freezes and switches directly', async () => {
    const ch = h.channel(SOLO_CHANNEL);
    await ch.command(ALICE, 'start solo');
    expect(ch.buttons()).toEqual(['freeze_now', 'switch_request', 'abort']);
    await ch.click(ALICE, 'freeze_now');
    expect((await ch.session()).state).toBe('frozen');
    expect(ch.buttons()).toEqual(['switch_now', 'resume', 'abort']);
    await ch.click(ALICE, 'switch_now');
    await ch.submitModal(ALICE, 'catalog');
    expect((await ch.session()).state).toBe('switched');
  });

  it('engine notices refresh the message and go to the thread and the channel', async () => {
    const ch = h.channel(CHANNELS[4]!);
    await ch.command(ALICE, 'start orders');
    await ch.click(ALICE, 'freeze_request');
    await ch.click(BOB, 'freeze_approve');
    const session = await ch.session();
    await h.ops.budgetExpired(session.id);
    await h.bot.settled(session.id);
    expect((await ch.session()).state).toBe('syncing');
    const notice = h.fake.thread(ch.status().ts).at(-1)!;
    expect(notice.text).toContain('freeze budget ran out');
    expect(notice.broadcast).toBe(true);
    expect(ch.buttons()).toContain('freeze_request');
  });
});

function MALLORY_OR(user: string): string {
  return user;
}
