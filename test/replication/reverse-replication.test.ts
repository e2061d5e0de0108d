/**
 * Reverse replication on real clusters, as the cutover uses it: the forward stream (DigitalOcean's
 * subscription on the target) proved by the fence, the reverse slot created and the switch-point
 * snapshots exported inside the "freeze" (no client writes), the forward stream stopped, the source
 * subscribed; then writes on the target come back to the source, a rollback (reverse fence, sequences
 * target -> source) loses nothing, the split-brain watch tells replicated rows from a direct write on
 * the source, and drop() leaves no slot, subscription or publication on either side.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgReverseReplication } from '../../src/adapters/replication/reverse-replication.js';
import { SlotSplitBrainWatch } from '../../src/adapters/replication/split-brain-watch.js';
import { SnapshotSwitchPointVerifier } from '../../src/adapters/replication/switch-point-verifier.js';
import { ReplicationFence } from '../../src/adapters/source/fence.js';
import { lsnToBigInt } from '../../src/adapters/source/lag-probe.js';
import { sequenceCopier } from '../../src/adapters/source/sequences.js';
import { Secret } from '../../src/secret.js';
import { DATABASE, ourObjects, startBidirectionalPair, type BidirectionalPair } from '../support/bidirectional-pair.js';
import { captureLogger } from '../support/capture-log.js';
import { until } from '../support/wait.js';

const SESSION = '5e55-10n0-0000-4000-8000-000000000015';

describe('reverse replication from the switch point (real clusters)', () => {
  let pair: BidirectionalPair;
  const { logger } = captureLogger('debug');
  /** As on DigitalOcean: the target's admin user is no superuser; it has REPLICATION and owns the migrated tables. */
  let doadmin: pg.Pool;
  const reverseFor = (p: BidirectionalPair) =>
    new PgReverseReplication({
      source: p.sourcePool,
      target: doadmin,
      targetConnection: { host: p.target.host, port: p.target.port, database: DATABASE, user: 'doadmin', password: new Secret('do-admin'), sslmode: 'disable' },
      sessionId: SESSION,
      sequenceMargin: 100,
      logger,
    });

  beforeAll(async () => {
    pair = await startBidirectionalPair(async (source) => {
      await source.query("INSERT INTO items (note, amount) SELECT 'before ' || g, g FROM generate_series(1, 50) g");
    });
    await pair.targetPool.query(`CREATE ROLE doadmin LOGIN PASSWORD 'do-admin' NOSUPERUSER REPLICATION;
      ALTER TABLE items OWNER TO doadmin; ALTER TABLE big OWNER TO doadmin; ALTER TABLE pgcutover_fence OWNER TO doadmin;
      GRANT CREATE ON DATABASE ${DATABASE} TO doadmin`);
    doadmin = new pg.Pool({ connectionString: `postgres://doadmin:do-admin@127.0.0.1:${pair.target.port}/${DATABASE}`, max: 4, application_name: 'pgcutover' });
  });
  afterAll(async () => {
    await doadmin?.end();
    await pair?.stop();
  });

  it('a non-superuser target without REPLICATION is reported, with the reasons, and nothing is created', async () => {
    await pair.targetPool.query("CREATE ROLE app_admin LOGIN PASSWORD 'app-admin' NOSUPERUSER NOREPLICATION");
    const limited = new pg.Pool({ connectionString: `postgres://app_admin:app-admin@127.0.0.1:${pair.target.port}/${DATABASE}`, max: 2 });
    try {
      const reverse = new PgReverseReplication({
        source: pair.sourcePool,
        target: limited,
        targetConnection: { host: pair.target.host, port: pair.target.port, database: DATABASE, user: 'app_admin', password: new Secret('app-admin'), sslmode: 'disable' },
        sessionId: SESSION,
        sequenceMargin: 100,
        logger,
      });
      const capability = await reverse.prepare();
      expect(capability.ok).toBe(false);
      expect(capability.reasons.join('\n')).toMatch(/neither SUPERUSER nor REPLICATION/);
      expect(capability.reasons.join('\n')).toMatch(/does not own public\.big, public\.items, public\.pgcutover_fence/);
      expect(await ourObjects(pair.targetPool)).toEqual([]);
    } finally {
      await limited.end();
    }
  });

  it("the fence's own reading of the target is the switch point: every forward change it proved lies at or before it, a target write after the freeze past it", async () => {
    const { sourcePool, targetPool } = pair;
    const reverse = reverseFor(pair);
    const fence = new ReplicationFence({ source: sourcePool, target: targetPool, slot: 'auto', logger });
    /** The positions of the changes the reverse slot holds (peeked, not consumed); decoding reads flushed WAL only, and the rig commits asynchronously. */
    const changesInSlot = async () => {
      await targetPool.query('CHECKPOINT');
      const { rows } = await targetPool.query<{ lsn: string }>(
        "SELECT lsn::text FROM pg_logical_slot_peek_binary_changes($1::name, NULL, NULL, 'proto_version', '1', 'publication_names', $2::text)",
        [reverse.name, reverse.name],
      );
      return rows.map((r) => lsnToBigInt(r.lsn));
    };
    try {
      expect((await reverse.prepare()).ok).toBe(true);
      await sourcePool.query("INSERT INTO items (note, amount) VALUES ('forward, just before the freeze', 0)");
      const proved = await fence.prove(30_000);
      expect(proved.targetLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      const proven = lsnToBigInt(proved.targetLsn as string);
      // The reading is the anchor, with no round trip.
      expect(await reverse.establish(proved.targetLsn)).toMatchObject({ lsn: proved.targetLsn, elapsedMs: 0 });
      const forward = await changesInSlot();
      expect(forward.length).toBeGreaterThan(0); // the row and the marker, applied by the forward stream
      expect(forward.every((lsn) => lsn <= proven)).toBe(true);
      await doadmin.query("INSERT INTO items (id, note, amount) VALUES (1000000, 'on the target, after the switch', 0)");
      expect((await changesInSlot()).some((lsn) => lsn > proven)).toBe(true);
    } finally {
      await fence.close();
      await reverse.drop();
    }
    expect(await ourObjects(targetPool)).toEqual([]);
    // The next test counts the rows: these two go again (the source's delete replicates to the target).
    await doadmin.query("DELETE FROM items WHERE note = 'on the target, after the switch'");
    await sourcePool.query("DELETE FROM items WHERE note = 'forward, just before the freeze'");
    await until('the forward row gone from the target', async () => Number((await targetPool.query("SELECT count(*) AS n FROM items WHERE note LIKE 'forward, %'")).rows[0].n) === 0, 30_000);
  });

  it('carries every target write back, rolls back with nothing lost, watches the source, and drops everything', async () => {
    const { sourcePool, targetPool } = pair;
    const forwardSequences = sequenceCopier({ source: sourcePool, target: targetPool, margin: 100 });
    await forwardSequences.pushAhead();
    const reverse = reverseFor(pair);
    const fence = new ReplicationFence({ source: sourcePool, target: targetPool, slot: 'auto', logger });
    const verifier = new SnapshotSwitchPointVerifier({ source: sourcePool, target: targetPool, logger });
    const watch = new SlotSplitBrainWatch({ source: sourcePool, sessionId: SESSION, logger });
    const rogue = new pg.Client({ connectionString: pair.source.connectionString(DATABASE), application_name: 'rogue-app' });
    try {
      // Before the freeze.
      expect(await reverse.prepare()).toEqual({ ok: true, reasons: [], publication: 'table-list' });
      const published = await targetPool.query<{ t: string }>("SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1", [reverse.name]);
      expect(published.rows.map((r) => r.t)).toEqual(['public.big', 'public.items', 'public.pgcutover_fence']);
      await Promise.all([fence.prepare(), verifier.prepare()]);

      // Inside the freeze (no client writes): fence, sequences, then the switch point and the snapshots.
      const proved = await fence.prove(30_000);
      await forwardSequences.copy();
      const t0 = performance.now();
      const [anchor, snapshots] = await Promise.all([reverse.establish(), verifier.exportSnapshots()]);
      const inFreezeMs = performance.now() - t0;
      console.info(
        `in-freeze cost: establish ${anchor?.elapsedMs} ms, snapshot export ${snapshots.elapsedMs} ms, both at once ${inFreezeMs.toFixed(1)} ms (fence ${proved.elapsedMs} ms)`,
      );
      expect(anchor?.slot).toMatch(/^pgcutover_rev_/);
      // Forward rows applied after the slot was made but before the switch point never come back.
      await sourcePool.query("INSERT INTO items (note, amount) VALUES ('late forward row', 0)");
      await until('the late row on the target', async () => Number((await targetPool.query("SELECT count(*) AS n FROM items WHERE note = 'late forward row'")).rows[0].n) === 1, 30_000);
      const point = await reverse.establish();
      if (!point) throw new Error('prepare() made no reverse slot');

      // After the resume: DO's migration stopped, the source subscribed, the applications write on the target.
      await expect(reverse.attach(point.lsn)).rejects.toThrow(/forward replication still runs on the target \(subscription do_forward\)/);
      await pair.stopForward();
      await targetPool.query("INSERT INTO items (note, amount) SELECT 'after ' || g, g FROM generate_series(1, 100) g");
      await targetPool.query("UPDATE items SET note = 'changed on the target' WHERE id = 1");
      await targetPool.query('DELETE FROM items WHERE id = 2');
      const beforeAttach = await reverse.status();
      expect(beforeAttach.slot).toBe(true);
      expect(beforeAttach.retainedWalBytes).toBeGreaterThan(0);
      await reverse.attach(point.lsn);
      await reverse.attach(point.lsn); // idempotent
      expect((await watch.start()).ok).toBe(true);

      await until('the target writes on the source', async () => Number((await sourcePool.query('SELECT count(*) AS n FROM items')).rows[0].n) === 150, 60_000);
      const status = await reverse.status();
      console.info(`reverse slot after catch-up: retained ${status.retainedWalBytes} bytes, lag ${status.lagBytes} bytes`);
      // Rows the reverse subscription applied are not a split brain.
      expect(await watch.check()).toBeNull();

      // Rollback: a fence in the reverse direction, then the target's sequences onto the source.
      const back = await reverse.rollback.fence.prove(30_000);
      expect(back.method).toBe('marker');
      await reverse.rollback.sequences.copy();
      const items = async (p: pg.Pool) => (await p.query<{ id: string; note: string }>('SELECT id::text, note FROM items ORDER BY id')).rows;
      const [onSource, onTarget] = await Promise.all([items(sourcePool), items(targetPool)]);
      expect(onSource).toEqual(onTarget);
      expect(onSource.find((r) => r.id === '1')?.note).toBe('changed on the target');
      const maxOnTarget = Math.max(...onTarget.map((r) => Number(r.id)));
      const fresh = await sourcePool.query<{ id: string }>("INSERT INTO items (note) VALUES ('after the rollback') RETURNING id::text");
      expect(Number(fresh.rows[0]?.id)).toBeGreaterThan(maxOnTarget);

      // The watch reports every local write, the bot's own insert too (after a real rollback it is stopped);
      // now a client that bypasses the proxy, still connected when the watch looks.
      // A check sees what the source has flushed (synchronous_commit is off on the rig): wait for a tick that has it.
      const nextFinding = () => until('a split-brain finding', async () => (await watch.check()) ?? undefined, 30_000);
      expect((await nextFinding()).writes.tables).toEqual(['public.items']);
      await rogue.connect();
      await rogue.query("INSERT INTO items (note) VALUES ('written on the old primary')");
      const finding = await nextFinding();
      expect(finding.writes).toMatchObject({ transactions: 1, changes: 1, tables: ['public.items'] });
      expect(finding.clients).toEqual([expect.objectContaining({ address: '127.0.0.1', applicationName: 'rogue-app', user: pair.source.user })]);

      // The switch-point snapshots still show both sides as they were at the switch.
      const report = await verifier.verify();
      expect(report.differing).toEqual([]);
      expect(report.tables).toBe(3);

      // A restarted bot (a new instance) finds everything by name; drop() twice is harmless.
      await watch.stop();
      expect(await reverseFor(pair).drop()).toEqual({ subscriptions: 1, slots: 1, publications: 1 });
      expect(await reverseFor(pair).drop()).toEqual({ subscriptions: 0, slots: 0, publications: 0 });
      expect(await ourObjects(sourcePool)).toEqual([]);
      expect(await ourObjects(targetPool)).toEqual([]);
    } finally {
      await rogue.end().catch(() => undefined);
      await Promise.all([fence.close(), verifier.close(), reverse.close()]);
      await watch.stop().catch(() => undefined);
      await reverse.drop().catch(() => undefined);
    }
  });
});
