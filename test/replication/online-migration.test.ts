/**
 * A whole migration on two real clusters through the DigitalOcean simulator: start, rows replicate,
 * lag rises under load and falls to zero, the fence waits for the marker, stop drops the subscription.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalOceanClient } from '../../src/adapters/digitalocean/digitalocean-client.js';
import { startAndConfirm } from '../../src/adapters/digitalocean/start-migration.js';
import { CodedError, ErrorCode } from '../../src/errors.js';
import { ReplicationFence } from '../../src/adapters/source/fence.js';
import { installFence } from '../../src/adapters/source/fence-table.js';
import { SlotLagProbe } from '../../src/adapters/source/lag-probe.js';
import type { LagSample } from '../../src/domain/ports/replication.js';
import { Secret } from '../../src/secret.js';
import { startDoSimulator, type DoSimulator } from '../../src/simulator/digitalocean/index.js';
import { captureLogger } from '../support/capture-log.js';
import type { Cluster } from '../support/pg-cluster.js';
import { startWriteLoad } from '../support/write-load.js';
import { migrationRequest, startReplicationPair } from '../support/replication-pair.js';
import { until } from '../support/wait.js';

const TOKEN = 'dop_v1_integration_token_0123456789abcdef';
const CLUSTER = '9cc10173-e9ea-4176-9dbc-a4cee4c4ff30';

describe('online migration through the simulator on real replication', () => {
  let source: Cluster;
  let target: Cluster;
  let sim: DoSimulator;
  let client: DigitalOceanClient;
  let sourcePool: pg.Pool;
  let targetPool: pg.Pool;
  const { logger, output } = captureLogger('debug');
  let migrationId = '';

  beforeAll(async () => {
    [source, target] = await startReplicationPair();
    await source.query(
      'CREATE TABLE orders (id bigserial PRIMARY KEY, note text NOT NULL, created_at timestamptz DEFAULT now())',
      [],
      'orders',
    );
    await source.query("INSERT INTO orders (note) SELECT 'before ' || g FROM generate_series(1, 500) g", [], 'orders');
    sourcePool = new pg.Pool({ connectionString: source.connectionString('orders'), max: 3 });
    targetPool = new pg.Pool({ connectionString: target.connectionString('orders'), max: 3 });
    await installFence(sourcePool);
    sim = await startDoSimulator({
      token: new Secret(TOKEN),
      logger,
      clusters: {
        [CLUSTER]: {
          connection: { host: target.host, port: target.port, user: target.user, password: new Secret(target.password), database: 'defaultdb' },
        },
      },
    });
    client = new DigitalOceanClient({ token: new Secret(TOKEN), baseUrl: sim.url, logger });
  });

  afterAll(async () => {
    await sim?.stop();
    await sourcePool?.end();
    await targetPool?.end();
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('starts: PUT answers running, the status turns syncing once the initial copy is done', async () => {
    const migration = await startAndConfirm(
      client,
      CLUSTER,
      migrationRequest(source),
      { pollIntervalMs: 100, watchMs: 20_000 },
    );
    expect(migration.status).toBe('syncing');
    migrationId = migration.id;
    expect(sim.requests.find((r) => r.method === 'PUT')?.responseText).toContain('"status":"running"');
    const { rows } = await targetPool.query<{ n: string }>('SELECT count(*) AS n FROM orders');
    expect(Number(rows[0]?.n)).toBe(500);
  });

  it('replicates rows written on the source afterwards', async () => {
    await sourcePool.query("INSERT INTO orders (note) VALUES ('after start')");
    await until('the new row on the target', async () => {
      const { rows } = await targetPool.query("SELECT 1 FROM orders WHERE note = 'after start'");
      return rows.length === 1;
    });
  });

  it('auto-detects the slot; lag in bytes rises under write load and falls to zero after', async () => {
    const probe = new SlotLagProbe({ source: sourcePool, slot: 'auto' });
    const load = await startWriteLoad(source.connectionString('orders'), { table: 'orders', rowsPerBatch: 2000 });
    const samples: LagSample[] = [];
    for (let i = 0; i < 20; i += 1) {
      samples.push(await probe.measure());
      await new Promise((r) => setTimeout(r, 50));
    }
    const written = await load.stop();
    expect(written).toBeGreaterThan(0);
    const known = samples.filter((s): s is Extract<LagSample, { known: true }> => s.known);
    expect(known).toHaveLength(samples.length);
    expect(known[0]?.slot).toBe((await sim.migration(CLUSTER))?.slotName);
    const peak = Math.max(...known.map((s) => s.bytes));
    expect(peak).toBeGreaterThan(0);
    let last: LagSample | undefined;
    await until('lag to fall to zero', async () => {
      last = await probe.measure();
      return last.known && last.bytes === 0;
    }, 20_000);
    expect(last).toMatchObject({ known: true, bytes: 0, seconds: 0 });
    console.info(`lag: peak ${peak} bytes under load (${written} rows), then 0`);
  });

  it('the marker fence returns only after the marker is applied on the target', async () => {
    const fence = new ReplicationFence({ source: sourcePool, target: targetPool, slot: 'auto', logger, method: 'auto' });
    const proved = await fence.prove(5000);
    expect(proved.method).toBe('marker');
    console.info(`marker fence: ${proved.elapsedMs} ms`);

    // Hold replication: the fence must not return while the marker cannot reach the target.
    const sub = (await sim.migration(CLUSTER))?.replicationName ?? '';
    await target.query(`ALTER SUBSCRIPTION ${pg.escapeIdentifier(sub)} DISABLE`, [], 'orders');
    const error = await fence.prove(800).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CodedError);
    expect((error as CodedError).code).toBe(ErrorCode.FenceTimeout);

    const before = await targetPool.query<{ n: string }>('SELECT count(*) AS n FROM pgcutover_fence');
    const pending = fence.prove(10_000);
    await new Promise((r) => setTimeout(r, 300));
    await target.query(`ALTER SUBSCRIPTION ${pg.escapeIdentifier(sub)} ENABLE`, [], 'orders');
    const result = await pending;
    expect(result.elapsedMs).toBeGreaterThanOrEqual(300);
    const after = await targetPool.query<{ n: string }>('SELECT count(*) AS n FROM pgcutover_fence');
    // Both markers (the timed-out one and this one) are on the target once replication resumed.
    expect(Number(after.rows[0]?.n)).toBe(Number(before.rows[0]?.n) + 2);
  });

  it('the slot-LSN fallback proves the same once confirmed_flush_lsn passes the LSN of the call', async () => {
    const fence = new ReplicationFence({ source: sourcePool, target: targetPool, slot: 'auto', logger, method: 'slot-lsn' });
    await sourcePool.query("INSERT INTO orders (note) VALUES ('before slot fence')");
    // A bound, not a speed: right after the previous test re-enables the subscription, the subscriber
    // reconnects and reports its position again, which took over 10 s once on a loaded 2-core CI machine.
    const proved = await fence.prove(40_000);
    expect(proved.method).toBe('slot-lsn');
    const { rows } = await sourcePool.query<{ ok: boolean }>(
      'SELECT confirmed_flush_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_type = $2',
      [proved.lsn, 'logical'],
    );
    expect(rows[0]?.ok).toBe(true);
    const applied = await targetPool.query("SELECT 1 FROM orders WHERE note = 'before slot fence'");
    expect(applied.rows).toHaveLength(1);
    console.info(`slot-lsn fence: ${proved.elapsedMs} ms`);
  });

  it('measures both fences after a write (the marker should not be slower than the slot position)', async () => {
    const timings: Record<'marker' | 'slot-lsn', number[]> = { marker: [], 'slot-lsn': [] };
    for (let i = 0; i < 3; i += 1) {
      for (const method of ['marker', 'slot-lsn'] as const) {
        await sourcePool.query("INSERT INTO orders (note) VALUES ('fence timing')");
        const fence = new ReplicationFence({ source: sourcePool, target: targetPool, slot: 'auto', logger, method });
        timings[method].push((await fence.prove(10_000)).elapsedMs);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    console.info(`fence medians over 3: marker ${median(timings.marker)} ms ${JSON.stringify(timings.marker)}, slot-lsn ${median(timings['slot-lsn'])} ms ${JSON.stringify(timings['slot-lsn'])}`);
    // Each fence proved (prove throws on its timeout); the figures are for reading, not for asserting.
    expect(timings.marker).toHaveLength(3);
    expect(timings['slot-lsn']).toHaveLength(3);
  });

  it('stop answers 204, drops the subscription on the target and its slot on the source; status canceled', async () => {
    await client.stopOnlineMigration(CLUSTER, migrationId);
    expect(sim.requests.at(-1)).toMatchObject({ method: 'DELETE', status: 204 });
    expect(await target.query('SELECT subname FROM pg_subscription', [], 'orders')).toEqual([]);
    expect(await source.query("SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'logical'")).toEqual([]);
    expect(await client.getOnlineMigration(CLUSTER)).toMatchObject({ id: migrationId, status: 'canceled' });
    const lag = await new SlotLagProbe({ source: sourcePool, slot: 'auto' }).measure();
    expect(lag).toMatchObject({ known: false });
    expect(lag.known ? '' : lag.reason).toMatch(/no logical replication slot/);
  });

  it('a start DO accepts can fail moments later (bad source password): startAndConfirm rejects, no secret leaks', async () => {
    const wrong = 'wrong-password-Zq81';
    const error = await startAndConfirm(
      client,
      CLUSTER,
      {
        source: { host: source.host, port: source.port, dbname: 'orders', username: source.user, password: new Secret(wrong) },
        disableSsl: false,
        ignoreDbs: [],
      },
      { pollIntervalMs: 100, watchMs: 15_000 },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CodedError);
    expect((error as CodedError).code).toBe(ErrorCode.DoMigrationFailed);
    expect(sim.requests.findLast((r) => r.method === 'PUT')?.status).toBe(200);
    const view = await sim.migration(CLUSTER);
    expect(view?.status).toBe('error');
    expect(view?.error).toMatch(/password authentication failed/);
    for (const text of [output(), view?.error ?? '', (error as Error).message, JSON.stringify(sim.requests)]) {
      expect(text).not.toContain(wrong);
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(source.password);
    }
  });
});
