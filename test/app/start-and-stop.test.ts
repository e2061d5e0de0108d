/**
 * Starting and stopping DigitalOcean's migration on in-memory ports: `/migrate start` runs preflight
 * and refuses on a failure before anything is stored; a start that died after its PUT is adopted by
 * recovery (or by a retried start), one that died before it is continued by a retried start; only a
 * session's own migration is ever stopped, also when DigitalOcean reports a status we do not know.
 */
import { describe, expect, it } from 'vitest';
import { PreflightRefused } from '../../src/app/start-session.js';
import { errorReply, factLine } from '../../src/adapters/slack/texts.js';
import type { OnlineMigration } from '../../src/domain/ports/digitalocean.js';
import { ErrorCode } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { CHANNEL, House, U } from '../support/memory/house.js';

const FOREIGN: OnlineMigration = { id: 'someone-elses', status: 'syncing', createdAt: '2030-03-01T00:00:00Z' };

describe('/migrate start runs preflight first', () => {
  it('a failing check refuses the start: no session, no migration, one audit row, the fixes shown', async () => {
    const house = new House();
    const a = house.replica('A');
    house.world.preflightItems = [
      { check: 'target cluster', status: 'fail', detail: 'the target cluster is creating', fix: 'wait until it is online' },
      { check: 'versions', status: 'fail', detail: 'source PostgreSQL 15 is newer than target 14', fix: 'create the target with version 15 or later' },
      { check: 'wal_level', status: 'pass', detail: 'logical' },
    ];
    const refusal = await a.startSession('orders').then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(PreflightRefused);
    expect(refusal).toMatchObject({ code: ErrorCode.PreflightFailed, failed: [{ check: 'target cluster' }, { check: 'versions' }] });
    expect(await house.store.sessions.listActive()).toEqual([]);
    expect(house.world.effects()).toEqual([]);
    expect(house.events).toEqual([]);
    expect(house.store.audit.all()).toMatchObject([
      { sessionId: null, channelId: CHANNEL.orders, actor: U.OPS, action: 'start', outcome: 'refused', details: { failedChecks: ['target cluster', 'versions'] } },
    ]);

    const text = errorReply(refusal, createLogger('silent')).text;
    expect(text).toContain('wait until it is online');
    expect(text).toContain('create the target with version 15 or later');
    expect(text).not.toContain('wal_level');

    // Fixed: the channel was never held, so the next start goes through.
    house.world.preflightItems = [{ check: 'versions', status: 'warn', detail: 'same major version' }];
    expect((await a.startSession('orders')).state).toBe('syncing');
    expect(house.world.effects()).toEqual(['start_migration']);
  });
});

describe('a start that died is reconciled', () => {
  it('killed after the PUT: recovery adopts the migration it started, once', async () => {
    const house = new House();
    const a = house.replica('A');
    const put = house.world.hang('start_migration');
    void a.startSession('orders');
    await put.reached;
    a.kill();
    const [stuck] = await house.store.sessions.listActive();
    expect(stuck).toMatchObject({ state: 'created', doMigrationId: null });

    const b = house.replica('B');
    expect(await b.engine.recover()).toMatchObject([{ sessionId: stuck!.id, result: 'applied', decision: { action: 'adopt-migration', migrationId: 'mig-1' } }]);
    expect(await house.session(stuck!.id)).toMatchObject({ state: 'syncing', doMigrationId: 'mig-1' });
    expect(house.factTypes(stuck!.id)).toEqual(['session_started', 'recovered', 'migration_started']);
    expect(await b.engine.recover()).toEqual([]);
    expect(house.world.count('start_migration')).toBe(1);
    const { rows, facts } = await house.auditMatchesFacts(stuck!.id);
    expect(rows).toEqual(facts);
  });

  it('killed after the PUT, then started again: the retried start adopts it rather than starting a second', async () => {
    const house = new House();
    const a = house.replica('A');
    const put = house.world.hang('start_migration');
    void a.startSession('orders');
    await put.reached;
    a.kill();
    const b = house.replica('B');
    const s = await b.startSession('orders', U.DAN);
    expect(s).toMatchObject({ state: 'syncing', doMigrationId: 'mig-1' });
    expect(await house.store.sessions.listForChannel(CHANNEL.orders)).toHaveLength(1);
    expect(house.world.count('start_migration')).toBe(1);
  });

  it('killed before the PUT: recovery changes nothing, and a retried start continues the same session', async () => {
    const house = new House();
    const a = house.replica('A');
    const put = house.world.hang('start_migration', { beforeEffect: true });
    void a.startSession('orders');
    await put.reached;
    a.kill();
    // Someone else's older migration on the cluster is never adopted.
    house.world.migration = { ...FOREIGN, status: 'done' };
    const [stuck] = await house.store.sessions.listActive();

    const b = house.replica('B');
    expect(await b.engine.recover()).toEqual([]);
    expect(await house.session(stuck!.id)).toMatchObject({ state: 'created', doMigrationId: null });
    const s = await b.startSession('orders');
    expect(s).toMatchObject({ id: stuck!.id, state: 'syncing', doMigrationId: 'mig-1' });
    expect(house.factTypes(s.id)).toEqual(['session_started', 'migration_started']);
  });
});

describe('stopping the migration: only our own', () => {
  it('abort of a session that never recorded a migration stops none, and says so', async () => {
    const house = new House();
    const a = house.replica('A');
    house.world.fail('start_migration');
    await expect(a.startSession('orders')).rejects.toMatchObject({ code: ErrorCode.DoUnavailable });
    const [stuck] = await house.store.sessions.listActive();
    house.world.migration = { ...FOREIGN };

    expect((await a.perform('abort', stuck!.id, U.OPS))?.state).toBe('aborted');
    expect(house.world.count('stop_migration')).toBe(0);
    expect(house.world.migration).toEqual(FOREIGN);
    const aborted = house.facts(stuck!.id).at(-1)!;
    expect(aborted).toEqual({ type: 'aborted', actor: U.OPS, noMigrationId: true });
    expect(factLine(aborted)?.text).toContain('stopped none');
  });

  it('a migration of ours in a status DigitalOcean added later is stopped', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await a.startSession('orders');
    house.world.migration = { ...house.world.migration!, status: 'unknown' };
    expect((await a.perform('abort', s.id, U.OPS))?.state).toBe('aborted');
    expect(house.world.count('stop_migration')).toBe(1);
    expect(house.facts(s.id).at(-1)).toEqual({ type: 'aborted', actor: U.OPS });
  });
});
