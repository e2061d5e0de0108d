/**
 * The Slack surface on a real PostgreSQL store (the production path: openStore with DATABASE_URL,
 * migrations 001..003 applied by the bot): a session through both gates to the end, a retried
 * command, and 20 concurrent clicks racing on real row locks and unique indexes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../support/pg-cluster.js';
import { ALICE, BOB, CAROL, CHANNELS, startHarness, type Harness } from './harness.js';

let cluster: Cluster;
let h: Harness;
beforeAll(async () => {
  cluster = await startCluster({ databases: ['pgcutover'] });
  h = await startHarness({ databaseUrl: cluster.connectionString('pgcutover') });
});
afterAll(async () => {
  await h?.close();
  await cluster?.stop();
});

describe('on a real PostgreSQL store', () => {
  it('uses PostgreSQL with migration 003 applied', async () => {
    expect(h.bot.store.db.engine).toBe('postgres');
    const rows = await cluster.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version', [], 'pgcutover');
    expect(rows.map((r) => r.version)).toContain(3);
  });

  it('runs a session through both gates, with 20 concurrent approvals producing one freeze', async () => {
    const ch = h.channel(CHANNELS[0]!);
    const body = await ch.command(ALICE, 'start orders');
    expect(body.status).toBe(200);
    const retry = await ch.command(ALICE, 'start orders', { retryNum: 1 });
    expect(retry.ack).toContain('not done twice');
    expect(await h.bot.store.sessions.listForChannel(ch.id)).toHaveLength(1);

    await ch.click(ALICE, 'freeze_request');
    const message = ch.snapshot();
    const before = await ch.session();
    h.ops.delayMs = 30;
    try {
      const clicks = await Promise.all(Array.from({ length: 20 }, (_, i) => ch.click(i % 2 ? BOB : CAROL, 'freeze_approve', { message })));
      expect(clicks.map((c) => c.status)).toEqual(Array(20).fill(200));
    } finally {
      h.ops.delayMs = 0;
    }
    const frozen = await ch.session();
    expect(frozen.state).toBe('frozen');
    expect(frozen.version).toBe(before.version + 2);
    expect(h.ops.calls.filter((c) => c.sessionId === frozen.id && c.op === 'freeze')).toHaveLength(1);

    await ch.click(BOB, 'switch_request');
    await ch.click(CAROL, 'switch_approve');
    expect((await ch.submitModal(CAROL, 'orders')).json()).toMatchObject({ response_action: 'errors' });
    await ch.submitModal(CAROL, 'orders_prod');
    expect((await ch.session()).state).toBe('switched');
    await ch.click(ALICE, 'finish');
    const done = await ch.session();
    expect(done.state).toBe('finished');

    const outcomes = await cluster.query<{ action: string; outcome: string; actor: string }>(
      `SELECT action, outcome, actor FROM audit_log WHERE session_id = $1 AND outcome IN ('approved', 'succeeded') ORDER BY id`,
      [done.id],
      'pgcutover',
    );
    expect(outcomes.map((o) => `${o.action}:${o.actor}`)).toEqual([
      `start:${ALICE}`,
      `freeze_approve:${outcomes[1]!.actor}`,
      `freeze:${outcomes[1]!.actor}`,
      `switch_approve:${CAROL}`,
      `switch:${CAROL}`,
      `finish:${ALICE}`,
    ]);
    const gates = await cluster.query<{ gate: string; status: string }>(
      'SELECT gate, status FROM gate_requests WHERE session_id = $1 ORDER BY requested_at',
      [done.id],
      'pgcutover',
    );
    expect(gates).toEqual([
      { gate: 'freeze', status: 'executed' },
      { gate: 'switch', status: 'executed' },
    ]);
  });
});
