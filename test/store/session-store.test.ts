import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { Secret } from '../../src/secret.js';
import { openEmbedded, openPostgres, type Database } from '../../src/adapters/store/database.js';
import { AuditLog } from '../../src/adapters/store/audit-log.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import { useStoreEngines } from '../support/store-engines.js';

const { engines, cluster } = useStoreEngines();

describe.each(engines)('the session store on %s', (_engine, open) => {
  let db: Database;
  let sessions: SessionStore;
  let audit: AuditLog;
  let channel = 0;
  const nextChannel = () => `C${Date.now().toString(36).toUpperCase()}${channel++}`;

  beforeAll(async () => {
    db = await open();
    await migrate(db);
    sessions = new SessionStore(db);
    audit = new AuditLog(db);
  });
  afterAll(() => db?.close());

  const newSession = (channelId = nextChannel()) =>
    sessions.create({ channelId, profile: 'orders', strategy: 'proxy', startedBy: 'U1' });

  it('applies migrations once: a second run applies nothing', async () => {
    expect(await migrate(db)).toEqual([]);
  });

  it('creates a session in state created at version 1', async () => {
    const session = await newSession();
    expect(session).toMatchObject({ state: 'created', version: 1, profile: 'orders', startedBy: 'U1', doMigrationId: null });
    expect(await sessions.get(session.id)).toEqual(session);
  });

  it('refuses a second active session in the same channel, at the database', async () => {
    const first = await newSession();
    await expect(newSession(first.channelId)).rejects.toMatchObject({ code: ErrorCode.SessionAlreadyActive });
    // The index, not only the code, enforces it.
    await expect(
      db.query(
        `INSERT INTO sessions (id, channel_id, profile, strategy, state, started_by)
         VALUES (gen_random_uuid(), $1, 'orders', 'proxy', 'syncing', 'U2')`,
        [first.channelId],
      ),
    ).rejects.toMatchObject({ code: '23505' });
  });

  it('allows a new session once the previous one has ended', async () => {
    const first = await newSession();
    await sessions.transition(first.id, 1, 'abort');
    const second = await newSession(first.channelId);
    expect(second.id).not.toBe(first.id);
    expect((await sessions.activeInChannel(first.channelId))?.id).toBe(second.id);
  });

  it('moves through the lifecycle with a version bump per change and keeps patched fields', async () => {
    const s = await newSession();
    const syncing = await sessions.transition(s.id, 1, 'migration_started', { doMigrationId: 'm-1' });
    expect(syncing).toMatchObject({ state: 'syncing', version: 2, doMigrationId: 'm-1' });
    // Posting the status message is not a version step: buttons drawn at v2 stay valid.
    const posted = await sessions.setStatusMessage(s.id, '1700000000.000100');
    expect(posted).toMatchObject({ state: 'syncing', version: 2, doMigrationId: 'm-1', statusMessageTs: '1700000000.000100' });
    const frozen = await sessions.transition(s.id, 2, 'freeze');
    const switched = await sessions.transition(s.id, frozen.version, 'switch');
    const finished = await sessions.transition(s.id, switched.version, 'finish');
    expect(finished).toMatchObject({ state: 'finished', version: 5, doMigrationId: 'm-1', statusMessageTs: '1700000000.000100' });
    expect(await sessions.activeInChannel(s.channelId)).toBeUndefined();
  });

  it('refuses a transition the lifecycle does not allow, naming why', async () => {
    const s = await newSession();
    await expect(sessions.transition(s.id, 1, 'switch')).rejects.toMatchObject({
      code: ErrorCode.InvalidTransition,
      message: expect.stringContaining('needs writes frozen first'),
    });
    expect((await sessions.get(s.id))?.version).toBe(1);
  });

  it('refuses a change based on a stale version', async () => {
    const s = await newSession();
    await sessions.transition(s.id, 1, 'migration_started');
    await expect(sessions.transition(s.id, 1, 'abort')).rejects.toMatchObject({ code: ErrorCode.SessionConflict });
    expect((await sessions.get(s.id))?.state).toBe('syncing');
  });

  it('lets exactly one of two concurrent transitions on one session win', async () => {
    const s = await newSession();
    await sessions.transition(s.id, 1, 'migration_started');
    const results = await Promise.allSettled([
      sessions.transition(s.id, 2, 'freeze'),
      sessions.transition(s.id, 2, 'abort'),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.reason).toMatchObject({ code: ErrorCode.SessionConflict });
    const after = await sessions.get(s.id);
    expect(after?.version).toBe(3);
    expect(['frozen', 'aborted']).toContain(after?.state);
  });

  it('lets exactly one of twenty concurrent identical transitions win', async () => {
    const s = await newSession();
    await sessions.transition(s.id, 1, 'migration_started');
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => sessions.transition(s.id, 2, 'freeze')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect((await sessions.get(s.id))?.version).toBe(3);
  });

  it('keeps an append-only audit log per session and per channel', async () => {
    const s = await newSession();
    await audit.append({ sessionId: s.id, channelId: s.channelId, actor: 'U1', action: 'freeze', outcome: 'requested' });
    await audit.append({
      sessionId: s.id,
      channelId: s.channelId,
      actor: 'U2',
      action: 'freeze',
      outcome: 'approved',
      details: { reason: 'lag 0 B' },
    });
    const entries = await audit.forSession(s.id);
    expect(entries.map((e) => [e.actor, e.outcome])).toEqual([
      ['U1', 'requested'],
      ['U2', 'approved'],
    ]);
    expect(entries[1]?.details).toEqual({ reason: 'lag 0 B' });
    expect((await audit.forChannel(s.channelId)).map((e) => e.id)).toEqual(entries.map((e) => e.id));
    await expect(db.query('DELETE FROM audit_log WHERE session_id = $1', [s.id])).rejects.toThrow(/append-only/);
    await expect(db.query(`UPDATE audit_log SET actor = 'U9' WHERE session_id = $1`, [s.id])).rejects.toThrow(
      /append-only/,
    );
  });

  it('serialises start-up migrations of several replicas', async () => {
    const results = await Promise.all([migrate(db), migrate(db), migrate(db)]);
    expect(results).toEqual([[], [], []]);
  });
});

describe('migrations racing on a fresh PostgreSQL database', () => {
  it('applies each migration exactly once when three replicas start together', async () => {
    await cluster().query('CREATE DATABASE fresh_race');
    const replicas = [0, 1, 2].map(() => openPostgres(new Secret(cluster().connectionString('fresh_race')), createLogger('silent')));
    try {
      const applied = await Promise.all(replicas.map((db) => migrate(db)));
      const all = applied.flat().sort();
      const versions = (await cluster().query<{ version: number }>('SELECT version FROM schema_migrations', [], 'fresh_race'))
        .map((r) => r.version)
        .sort();
      expect(all).toEqual(versions);
      expect(versions.length).toBeGreaterThan(0);
    } finally {
      await Promise.all(replicas.map((db) => db.close()));
    }
  });
});

describe('the embedded store on disk', () => {
  it('keeps sessions across a close and reopen of the same directory', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(`${tmpdir()}/pgcutover-embedded-`);
    try {
      const first = await openEmbedded(dir);
      await migrate(first);
      const created = await new SessionStore(first).create({
        channelId: 'CREOPEN1',
        profile: 'orders',
        strategy: 'proxy',
        startedBy: 'U1',
      });
      await first.close();
      const second = await openEmbedded(dir);
      expect(await migrate(second)).toEqual([]);
      expect(await new SessionStore(second).get(created.id)).toEqual(created);
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
