/**
 * The rehearsal: the sandbox pointed at "a team's own" source and target (two clusters this test starts
 * and owns), without PgBouncer, so the in-database freeze and the connection-parameters strategy run.
 * Driven through the console's own HTTP API (what the page calls): the whole cutover, the write load
 * following the handed-out parameters to the target, and afterwards only what the README says the
 * rehearsal creates is left on the servers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverUrlSchema } from '../../src/sandbox/sandbox-profile.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/sandbox.js';
import type { LoadView } from '../../src/sandbox/write-load.js';
import { captureLogger } from '../support/capture-log.js';
import type { Cluster } from '../support/pg-cluster.js';
import { startReplicationPair } from '../support/replication-pair.js';
import { until } from '../support/wait.js';

interface Entry {
  kind: string;
  ts?: string;
  text: string;
  blocks: Array<{ type: string; elements?: Array<{ action_id: string; value: string }> }>;
  replies?: Array<{ text: string }>;
}
interface ConsoleState {
  timeline: Entry[];
  modals: Array<{ id: string; user: string }>;
  load: LoadView;
}

describe('npm run sandbox -- --source … --target …: a rehearsal on your own servers', () => {
  const { logger } = captureLogger('info');
  let source: Cluster;
  let target: Cluster;
  let sandbox: Sandbox | undefined;

  const api = async (path: string, body: Record<string, unknown>) => {
    const response = await fetch(new URL(path, sandbox!.consoleUrl), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return (await response.json()) as { status: number; error?: string };
  };
  const state = async () => (await (await fetch(new URL('api/state', sandbox!.consoleUrl))).json()) as ConsoleState;
  const statusMessage = async () => (await state()).timeline.find((e) => e.kind === 'message');
  /** The thread and every ephemeral answer, for timeouts. */
  const thread = async () => {
    const { timeline } = await state();
    const replies = (timeline.find((e) => e.kind === 'message')?.replies ?? []).map((r) => r.text);
    return [...replies, ...timeline.filter((e) => e.kind === 'ephemeral').map((e) => `(ephemeral) ${e.text}`)].join('\n');
  };
  /** The session version the status message's buttons carry (`sessionId:version`). */
  const version = (m: Entry | undefined) => Number(m?.blocks.flatMap((b) => b.elements ?? [])[0]?.value.split(':')[1] ?? 0);
  let clickedAt = 0;
  /** Clicks a button of the status message once it is redrawn past the last click (as a person would). */
  const click = async (user: string, action: string) => {
    const message = await until(`button ${action} past v${clickedAt}`, async () => {
      const m = await statusMessage();
      return version(m) > clickedAt && m?.blocks.some((b) => b.elements?.some((e) => e.action_id === `pgc.${action}`)) ? m : undefined;
    }, 60_000, thread);
    clickedAt = version(message);
    expect(await api('/api/click', { user, ts: message.ts, actionId: `pgc.${action}` })).toEqual({ status: 200 });
  };
  const waitFor = (text: string) => until(`the status message to say ${text}`, async () => (await statusMessage())?.text.includes(text), 120_000, thread);

  beforeAll(async () => {
    [source, target] = await startReplicationPair(['orders']);
    const dsn = (c: Cluster, db: string) => `postgres://${c.user}:${c.password}@${c.host}:${c.port}/${db}?sslmode=disable`;
    sandbox = await startSandbox({
      rehearsal: { source: serverUrlSchema.parse(dsn(source, 'orders')), target: serverUrlSchema.parse(dsn(target, 'postgres')) },
      pgbouncer: false,
      writesPerSecond: 20,
      logger,
    });
  }, 240_000);

  afterAll(async () => {
    await sandbox?.stop();
    await Promise.all([source?.stop(), target?.stop()]);
  }, 120_000);

  it('freezes in the database, switches, hands the target out; the load follows it', async () => {
    expect(sandbox!.via).toBe('direct');
    expect(await api('/api/command', { user: 'U0ALICE', text: 'start demo' })).toEqual({ status: 200 });
    await waitFor('syncing');
    await until('the lag measured', async () => (await state()).load.lag.bytes !== null, 60_000);

    await click('U0ALICE', 'switch_request');
    await click('U0BOB', 'switch_approve');
    const modal = await until('the switch dialog for Bob', async () => (await state()).modals.find((m) => m.user === 'U0BOB'), 60_000);
    // A wrong name keeps the dialog open with the bot's error; the right one closes it.
    await api('/api/submit', { user: 'U0BOB', viewId: modal.id, typed: 'order' });
    expect((await state()).modals.find((m) => m.id === modal.id)).toMatchObject({ error: expect.stringContaining('not the target database name') });
    await api('/api/submit', { user: 'U0BOB', viewId: modal.id, typed: 'orders' });
    expect((await state()).modals).toEqual([]);

    await click('U0ALICE', 'freeze_request');
    await click('U0BOB', 'freeze_approve');
    await waitFor('switched');
    await until('writes landing on the target', async () => (await state()).load.totals.target > 20, 60_000);
    const { load } = await state();
    expect(load.totals.source).toBeGreaterThan(0);
    // The in-database freeze ends the application's sessions: the panel shows those writes failing.
    expect(load.via).toContain('directly');
    const rows = await target.query<{ n: string }>('SELECT count(*) AS n FROM pgcutover_sandbox_writes', [], 'orders');
    expect(Number(rows[0]?.n)).toBeGreaterThanOrEqual(load.totals.source);
  }, 600_000);

  it('leaves on the servers only what the README lists', async () => {
    await sandbox!.stop();
    sandbox = undefined;
    const tables = await source.query<{ name: string }>(`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`, [], 'orders');
    expect(tables.map((t) => t.name)).toEqual(['pgcutover_fence', 'pgcutover_sandbox_writes']);
    const roles = await source.query<{ name: string }>(`SELECT rolname AS name FROM pg_roles WHERE rolname LIKE 'pgcutover%'`);
    expect(roles.map((r) => r.name)).toEqual(['pgcutover_sandbox_app']);
    expect(await source.query(`SELECT slot_name FROM pg_replication_slots`)).toEqual([]);
    expect(await source.query(`SELECT pubname FROM pg_publication`, [], 'orders')).toEqual([]);
    expect(await target.query(`SELECT subname FROM pg_subscription`, [], 'orders')).toEqual([]);
  }, 120_000);
});
