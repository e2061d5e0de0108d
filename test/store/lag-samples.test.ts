import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lagTrend } from '../../src/domain/lag-trend.js';
import type { Database } from '../../src/adapters/store/database.js';
import { LagSampleStore } from '../../src/adapters/store/lag-samples.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import { useStoreEngines } from '../support/store-engines.js';

const { engines } = useStoreEngines();

describe.each(engines)('lag samples on %s', (_engine, open) => {
  let db: Database;
  let samples: LagSampleStore;
  let sessions: SessionStore;
  let n = 0;
  const newSession = () =>
    sessions.create({ channelId: `CLAG${Date.now().toString(36).toUpperCase()}${n++}`, profile: 'orders', strategy: 'proxy', startedBy: 'U1' });
  const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 12, 0, s));

  beforeAll(async () => {
    db = await open();
    await migrate(db);
    samples = new LagSampleStore(db);
    sessions = new SessionStore(db);
  });
  afterAll(() => db?.close());

  it('records known and unknown samples and returns the recent ones oldest first', async () => {
    const session = await newSession();
    await samples.record(session.id, { known: true, at: t(0), slot: 'do_slot', slotActive: true, bytes: 9_000_000_000, seconds: 12.5 });
    await samples.record(session.id, { known: false, at: t(10), reason: '2 active logical slots' });
    await samples.record(session.id, { known: true, at: t(20), slot: 'do_slot', slotActive: false, bytes: 0, seconds: null });
    expect(await samples.recent(session.id, 10)).toEqual([
      { known: true, at: t(0), slot: 'do_slot', slotActive: true, bytes: 9_000_000_000, seconds: 12.5 },
      { known: false, at: t(10), reason: '2 active logical slots' },
      { known: true, at: t(20), slot: 'do_slot', slotActive: false, bytes: 0, seconds: null },
    ]);
    const lastTwo = await samples.recent(session.id, 2);
    expect(lastTwo.map((s) => s.at)).toEqual([t(10), t(20)]);
    // Another session's samples stay apart.
    expect(await samples.recent((await newSession()).id)).toEqual([]);
  });

  it('refuses an unknown sample stored as zero bytes (schema check)', async () => {
    const session = await newSession();
    await expect(
      db.query(
        `INSERT INTO lag_samples (session_id, at, known, bytes, reason) VALUES ($1, now(), false, 0, 'x')`,
        [session.id],
      ),
    ).rejects.toThrow(/check/i);
  });

  it('feeds the trend: falling lag gives an ETA', async () => {
    const session = await newSession();
    for (const [s, bytes] of [[0, 4000], [10, 3000], [20, 2000]] as const) {
      await samples.record(session.id, { known: true, at: t(s), slot: 'do_slot', slotActive: true, bytes, seconds: null });
    }
    const trend = lagTrend(await samples.recent(session.id), { steadyBytesPerSecond: 1 });
    expect(trend.direction).toBe('falling');
    expect(trend.etaSeconds).toBeCloseTo(20, 5);
    expect(await samples.pruneBefore(session.id, t(15))).toBe(2);
    expect(await samples.recent(session.id)).toHaveLength(1);
  });
});
