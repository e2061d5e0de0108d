/** The DigitalOcean-aware preflight rules, pure: the two-week countdown, reachability of the source, the slot's WAL. */
import { describe, expect, it } from 'vitest';
import { addressKind } from '../../src/domain/addresses.js';
import { evaluateDoPreflight, type DoPreflightFacts } from '../../src/domain/preflight-digitalocean.js';

const base: DoPreflightFacts = {
  stage: 'before-freeze',
  replication: [{ database: 'orders', slot: { name: 'aiven_db_migrate_orders_slot', active: true, walStatus: 'reserved', retainedBytes: 4096 }, publication: true }],
  target: { engine: 'pg', databases: ['defaultdb', 'orders'] },
  targetDatabase: 'orders',
  appLogin: { user: 'app', error: null },
  sourceHost: { host: 'db.example.com', addresses: ['203.0.113.7'], clusterInVpc: false, doIsRemote: true },
};
const CREATED = '2026-12-01T00:00:00Z';
const at = (hoursAfterStart: number) => new Date(Date.parse(CREATED) + hoursAfterStart * 3_600_000).toISOString();
const find = (facts: DoPreflightFacts, check: string) => evaluateDoPreflight(facts).filter((i) => i.check === check);

describe('DigitalOcean-aware preflight rules', () => {
  it('passes a healthy migration', () => {
    expect(evaluateDoPreflight({ ...base, migration: { createdAt: CREATED, status: 'syncing', now: at(24) } }).filter((i) => i.status !== 'pass')).toEqual([]);
  });

  it('counts down to the two-week limit: warnings at 48 h and 12 h left, a failure once reached', () => {
    const limit = (hours: number, status = 'syncing') => find({ ...base, migration: { createdAt: CREATED, status, now: at(hours) } }, 'two_week_limit')[0];
    expect(limit(14 * 24 - 49)).toMatchObject({ status: 'pass' });
    expect(limit(14 * 24 - 47)).toMatchObject({ status: 'warn', detail: expect.stringMatching(/Only 47 h left \(under 48 h\)/) });
    expect(limit(14 * 24 - 11.5)).toMatchObject({ status: 'warn', detail: expect.stringMatching(/Only 11 h left \(under 12 h\).*2026-12-15T00:00:00/) });
    expect(limit(14 * 24 + 1)).toMatchObject({ status: 'fail' });
    expect(limit(30, 'done')).toMatchObject({ status: 'fail' });
  });

  it('grades the slot by wal_status: unreserved and lost red, extended amber', () => {
    const wal = (walStatus: string) =>
      find({ ...base, replication: [{ database: 'orders', slot: { name: 's', active: true, walStatus, retainedBytes: 1 }, publication: true }] }, 'slot_wal')[0]?.status;
    expect([wal('reserved'), wal('extended'), wal('unreserved'), wal('lost')]).toEqual(['pass', 'warn', 'fail', 'fail']);
  });

  it('refuses a target that is not PostgreSQL', () => {
    expect(find({ ...base, target: { engine: 'mysql', databases: [] } }, 'target_engine')[0]).toMatchObject({ status: 'fail' });
  });

  it('flags sources DigitalOcean cannot reach: loopback, private without a VPC; a private one in a VPC is a warning', () => {
    const reach = (addresses: string[], clusterInVpc = false) => find({ ...base, sourceHost: { host: 'db', addresses, clusterInVpc, doIsRemote: true } }, 'source_reachable_by_do')[0]?.status;
    expect(reach(['127.0.0.1'])).toBe('fail');
    expect(reach(['10.1.2.3'])).toBe('fail');
    expect(reach(['10.1.2.3'], true)).toBe('warn');
    expect(reach([])).toBe('warn');
    expect(reach(['203.0.113.7'])).toBe('pass');
  });

  it('asks for the application credentials when the profile names none', () => {
    expect(find({ ...base, appLogin: 'unnamed' }, 'app_login')[0]).toMatchObject({ status: 'warn', fix: expect.stringMatching(/application\.user/) });
  });

  it('knows loopback, private and public addresses', () => {
    expect(['127.0.0.1', '::1', '10.0.0.5', '172.20.1.1', '192.168.1.1', '100.64.0.1', 'fd00::1', '::ffff:10.0.0.1', '8.8.8.8', '172.32.0.1', '2001:db8::1'].map(addressKind)).toEqual([
      'loopback', 'loopback', 'private', 'private', 'private', 'private', 'private', 'private', 'public', 'public', 'public',
    ]);
  });
});
