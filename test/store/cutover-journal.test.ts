import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoveryDecision } from '../../src/domain/cutover-plan.js';
import { CutoverJournal } from '../../src/adapters/store/cutover-journal.js';
import type { Database } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import { useStoreEngines } from '../support/store-engines.js';

const { engines } = useStoreEngines();

describe.each(engines)('the cutover journal on %s', (_engine, open) => {
  let db: Database;
  let sessions: SessionStore;
  let journal: CutoverJournal;
  let n = 0;
  const newSession = () =>
    sessions.create({ channelId: `CJ${Date.now().toString(36).toUpperCase()}${n++}`, profile: 'orders', strategy: 'proxy', startedBy: 'U1' });

  beforeAll(async () => {
    db = await open();
    await migrate(db);
    sessions = new SessionStore(db);
    journal = new CutoverJournal(db);
  });
  afterAll(() => db?.close());

  it('numbers attempts per session and keeps step events in order', async () => {
    const a = await newSession();
    const b = await newSession();
    expect(await journal.begin(a.id, 'cutover', 'U1')).toBe(1);
    expect(await journal.begin(a.id, 'cutover', 'U1')).toBe(2);
    expect(await journal.begin(b.id, 'finish', 'U2')).toBe(1);
    await journal.record(a.id, 2, 'freeze', 'started');
    await journal.record(a.id, 2, 'freeze', 'done', { via: 'pgbouncer' });
    const entries = await journal.entries(a.id);
    expect(entries.map((e) => [e.attempt, e.kind, e.step, e.event])).toEqual([
      [2, 'cutover', 'freeze', 'started'],
      [2, 'cutover', 'freeze', 'done'],
    ]);
    expect(entries[1]?.detail).toEqual({ via: 'pgbouncer' });
    expect(await journal.entries(b.id)).toEqual([]);
    expect(recoveryDecision(entries)).toMatchObject({ action: 'undo-freeze', attempt: 2 });
  });

  it('journals a run after its resume in one statement: events in the order given, and the attempt patched with them', async () => {
    const a = await newSession();
    await journal.begin(a.id, 'cutover', 'U1');
    await journal.record(a.id, 1, 'freeze', 'started', { through: 'resume_target' });
    const frozenAt = new Date('2026-12-07T10:00:00.000Z');
    await journal.recordAll(
      a.id,
      1,
      [
        { step: 'freeze', event: 'done' },
        { step: 'fence', event: 'started' },
        { step: 'sequences', event: 'started' },
        { step: 'sequences', event: 'done', detail: { copied: 3 } },
        { step: 'fence', event: 'done', detail: { method: 'marker' } },
        { step: 'repoint', event: 'started' },
        { step: 'repoint', event: 'done' },
      ],
      { frozenAt, sequencesCopied: 3 },
    );
    const entries = await journal.entries(a.id);
    expect(entries.map((e) => `${e.step}:${e.event}`)).toEqual([
      'freeze:started',
      'freeze:done',
      'fence:started',
      'sequences:started',
      'sequences:done',
      'fence:done',
      'repoint:started',
      'repoint:done',
    ]);
    expect(entries[4]?.detail).toEqual({ copied: 3 });
    expect(await journal.attempt(a.id, 1)).toMatchObject({ frozenAt, sequencesCopied: 3 });
    expect(recoveryDecision(entries)).toMatchObject({ action: 'complete-switch', attempt: 1 });
  });

  it('reads the latest attempt of many sessions in one query, and the attempt with a step atomically', async () => {
    const [a, b, c] = [await newSession(), await newSession(), await newSession()];
    await journal.begin(a.id, 'cutover', 'U1');
    await journal.record(a.id, 1, 'freeze', 'started');
    await journal.record(a.id, 1, 'freeze', 'undone');
    await journal.begin(a.id, 'abort', 'U1');
    await journal.record(a.id, 2, 'stop_migration', 'started');
    await journal.begin(b.id, 'cutover', 'U1');
    await journal.record(b.id, 1, 'fence', 'done', { elapsedMs: 3 }, { sequencesCopied: 4 });
    const latest = await journal.latestAttemptEntries([a.id, b.id, c.id]);
    expect(latest.get(a.id)?.map((e) => `${e.attempt}:${e.kind}:${e.step}:${e.event}`)).toEqual(['2:abort:stop_migration:started']);
    expect(latest.get(b.id)?.map((e) => `${e.step}:${e.event}`)).toEqual(['fence:done']);
    expect(latest.has(c.id)).toBe(false);
    expect((await journal.attempt(b.id, 1))?.sequencesCopied).toBe(4);
  });

  it('keeps what recovery and the summary need on the attempt', async () => {
    const s = await newSession();
    const attempt = await journal.begin(s.id, 'cutover', 'U1');
    const frozenAt = new Date('2026-11-21T10:00:00.123Z');
    await journal.update(s.id, attempt, {
      frozenWhat: { method: 'read-only-roles', via: 'database', database: 'orders', roles: ['app', 'worker'] },
      frozenAt,
      freezeBudgetSeconds: 30,
      lagAtFreeze: { known: true, bytes: 1234, seconds: 0.2 },
    });
    await journal.update(s.id, attempt, {
      fence: { method: 'marker', lsn: '0/16B3748', elapsedMs: 42 },
      sequencesCopied: 3,
      switchedAt: new Date('2026-11-21T10:00:00.400Z'),
      resumedAt: new Date('2026-11-21T10:00:00.450Z'),
      resumedOn: 'target',
      writesHeld: 120,
      approvals: { switch: { approvedBy: 'U2', aheadOfTime: true } },
      outcome: 'switched',
    });
    const record = await journal.attempt(s.id, attempt);
    expect(record).toMatchObject({
      kind: 'cutover',
      startedBy: 'U1',
      frozenWhat: { method: 'read-only-roles', roles: ['app', 'worker'] },
      frozenAt,
      freezeBudgetSeconds: 30,
      lagAtFreeze: { known: true, bytes: 1234 },
      fence: { lsn: '0/16B3748' },
      sequencesCopied: 3,
      resumedOn: 'target',
      writesHeld: 120,
      approvals: { switch: { approvedBy: 'U2', aheadOfTime: true } },
      outcome: 'switched',
    });
    expect((await journal.latestCutover(s.id))?.attempt).toBe(attempt);
    expect(await journal.attempts(s.id)).toHaveLength(1);
  });
});
