/**
 * Verification at the switch point and the schema guard on real clusters with forward replication:
 * snapshots exported on both sides right after the fence, compared afterwards, name a table whose row
 * was removed on the target behind replication's back; later writes do not change the verdict; a
 * column added on the source shows in the schema comparison.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatalogSchemaGuard } from '../../src/adapters/replication/schema-catalog.js';
import { SnapshotSwitchPointVerifier } from '../../src/adapters/replication/switch-point-verifier.js';
import { ReplicationFence } from '../../src/adapters/source/fence.js';
import { startBidirectionalPair, type BidirectionalPair } from '../support/bidirectional-pair.js';
import { captureLogger } from '../support/capture-log.js';

/** Small limits, so the 2,000-row table is checked by key-range samples. */
const LIMITS = { fullChecksumMaxRows: 500, samples: 4, rowsPerSample: 50 };

describe('verification at the switch point and the schema guard (real clusters)', () => {
  let pair: BidirectionalPair;
  const { logger } = captureLogger('debug');

  beforeAll(async () => {
    pair = await startBidirectionalPair(async (source) => {
      await source.query("INSERT INTO items (note, amount, at) SELECT 'row ' || g, g / 3.0, timestamptz '2026-12-01 10:00+01' + g * interval '1 minute' FROM generate_series(1, 300) g");
      await source.query("INSERT INTO big (id, payload) SELECT g, repeat('x', g % 50) FROM generate_series(1, 2000) g");
    });
  });
  afterAll(async () => {
    await pair?.stop();
  });

  /** The cutover's order: fence (source == target proved), then the snapshots. */
  async function atSwitchPoint(): Promise<SnapshotSwitchPointVerifier> {
    const verifier = new SnapshotSwitchPointVerifier({ source: pair.sourcePool, target: pair.targetPool, logger });
    const fence = new ReplicationFence({ source: pair.sourcePool, target: pair.targetPool, slot: 'auto', logger });
    await Promise.all([verifier.prepare(), fence.prepare()]);
    await fence.prove(30_000);
    await verifier.exportSnapshots();
    return verifier;
  }

  it('identical sides pass: small tables by full checksum, the large one by key-range samples', async () => {
    const verifier = await atSwitchPoint();
    try {
      const report = await verifier.verify(LIMITS);
      expect(report).toMatchObject({ ok: true, tables: 3, fully: 2, sampled: 1, countOnly: 0, differing: [] });
    } finally {
      await verifier.close();
    }
  });

  it('the fence’s proof takes the snapshots: what either side writes after it is not compared, and no transaction is left open', async () => {
    const verifier = new SnapshotSwitchPointVerifier({ source: pair.sourcePool, target: pair.targetPool, logger });
    const fence = new ReplicationFence({ source: pair.sourcePool, target: pair.targetPool, slot: 'auto', logger, switchPoint: verifier });
    await Promise.all([verifier.prepare(), fence.prepare()]);
    await fence.prove(30_000);
    // After the proof, before any export: a snapshot exported now would see these rows.
    await pair.targetPool.query("INSERT INTO big (id, payload) VALUES (900001, 'written on the target after the switch point')");
    await pair.sourcePool.query("INSERT INTO items (note) VALUES ('written on the source after the switch point')");
    try {
      // As a cutover asks for them right after the fence: the ones its proof took.
      await verifier.exportSnapshots();
      const report = await verifier.verify(LIMITS);
      expect(report).toMatchObject({ ok: true, tables: 3, differing: [] });
    } finally {
      await verifier.close();
      await fence.close();
      await pair.targetPool.query('DELETE FROM big WHERE id = 900001');
    }
    for (const db of [pair.sourcePool, pair.targetPool]) {
      const { rows } = await db.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'");
      expect(rows[0]?.n).toBe(0);
    }
  });

  it('a row deleted and a value changed on the target behind replication’s back are caught, the tables named', async () => {
    await pair.targetPool.query('DELETE FROM big WHERE id = 1234');
    await pair.targetPool.query("UPDATE items SET note = 'tampered' WHERE id = 7");
    const verifier = await atSwitchPoint();
    try {
      // Writes after the switch point do not change the verdict: both sides are read as of the snapshots.
      await pair.sourcePool.query("INSERT INTO items (note) VALUES ('after the switch')");
      const report = await verifier.verify(LIMITS);
      expect(report.ok).toBe(false);
      expect(report.differing.map((d) => d.table)).toEqual(['public.big', 'public.items']);
      // A sampled key range may cover the deleted row too (then it is named as well).
      expect(report.differing[0]?.reasons).toContainEqual({ kind: 'row-count', source: 2000, target: 1999 });
      expect(report.differing[1]?.reasons).toEqual([{ kind: 'content' }]);
    } finally {
      await verifier.close();
    }
  });

  it('a column added on the source shows in the schema comparison', async () => {
    const guard = new CatalogSchemaGuard({ source: pair.sourcePool, target: pair.targetPool });
    const before = await guard.compare();
    expect(before.differences).toEqual([]);
    expect(before.sourceFingerprint).toBe(before.targetFingerprint);

    await pair.sourcePool.query('ALTER TABLE items ADD COLUMN coupon varchar(20)');
    await pair.sourcePool.query('CREATE INDEX big_payload ON big (payload)');
    const after = await guard.compare();
    expect(after.sourceFingerprint).not.toBe(after.targetFingerprint);
    expect(after.differences).toEqual([
      { kind: 'index', table: 'public.big', name: 'big_payload', source: 'CREATE INDEX big_payload ON public.big USING btree (payload)', target: null },
      { kind: 'column-only-on', side: 'source', table: 'public.items', column: 'coupon', type: 'character varying(20)' },
    ]);
  });
});
