import { describe, expect, it } from 'vitest';
import {
  evaluatePreflight,
  ipAllowed,
  preflightVerdict,
  type PreflightFacts,
  type PreflightItem,
  type SourceFacts,
} from '../../src/domain/preflight.js';

const goodSource: SourceFacts = {
  database: 'orders',
  walLevel: 'logical',
  maxReplicationSlots: 10,
  usedReplicationSlots: 0,
  maxWalSenders: 10,
  usedWalSenders: 0,
  databasesToMigrate: 2,
  versionNum: 150018,
  migrationUser: { name: 'do_migration', superuser: true },
  tablesWithoutReplicaIdentity: [],
  unloggedTables: [],
  largeObjects: 0,
  sequences: 3,
};
const good: PreflightFacts = {
  stage: 'before-migration',
  source: goodSource,
  cluster: { status: 'online', versionMajor: 16 },
  firewall: { rules: [], required: [{ who: 'source', host: 'db.example.com', addresses: ['203.0.113.7'] }] },
  proxy: {
    expected: { host: '10.0.0.5', port: 5432, database: 'orders' },
    observed: { healthy: true, pointsTo: { host: '10.0.0.5', port: 5432, database: 'orders' }, detail: 'pgbouncer 1.18' },
  },
};
const withSource = (patch: Partial<SourceFacts>, stage: PreflightFacts['stage'] = 'before-migration'): PreflightFacts => ({
  ...good,
  stage,
  source: { ...goodSource, ...patch },
});
const find = (items: PreflightItem[], check: PreflightItem['check']) => {
  const found = items.find((i) => i.check === check);
  if (!found) throw new Error(`no ${check} item`);
  return found;
};

describe('preflight evaluation', () => {
  it('passes a well-prepared source, with no fix on passed items', () => {
    const items = evaluatePreflight(good);
    expect(items.filter((i) => i.status !== 'pass')).toEqual([]);
    expect(items.every((i) => i.fix === null)).toBe(true);
    expect(preflightVerdict(items)).toBe('pass');
    expect(items.map((i) => i.check)).toEqual(
      expect.arrayContaining(['wal_level', 'replication_slots', 'wal_senders', 'source_user', 'versions', 'replica_identity', 'large_objects', 'unlogged_tables', 'sequences', 'do_cluster', 'trusted_sources', 'proxy']),
    );
    expect(find(items, 'sequences').detail).toMatch(/3 sequence.*at cutover/);
  });

  it('fails wal_level=replica with the ALTER SYSTEM fix', () => {
    const wal = find(evaluatePreflight(withSource({ walLevel: 'replica' })), 'wal_level');
    expect(wal).toMatchObject({ status: 'fail' });
    expect(wal.fix).toMatch(/wal_level = logical.*restart/);
  });

  it('fails too few free slots or senders before a migration, not before a freeze', () => {
    const tight = { maxReplicationSlots: 3, usedReplicationSlots: 2, maxWalSenders: 2, usedWalSenders: 1 };
    const before = evaluatePreflight(withSource(tight));
    expect(find(before, 'replication_slots').status).toBe('fail');
    expect(find(before, 'replication_slots').fix).toMatch(/at least 4/);
    expect(find(before, 'wal_senders').status).toBe('fail');
    const freeze = evaluatePreflight(withSource(tight, 'before-freeze'));
    expect(find(freeze, 'replication_slots').status).toBe('pass');
  });

  it('fails the postgres user, a non-superuser and a missing role', () => {
    expect(find(evaluatePreflight(withSource({ migrationUser: { name: 'postgres', superuser: true } })), 'source_user').status).toBe('fail');
    const notSuper = find(evaluatePreflight(withSource({ migrationUser: { name: 'app', superuser: false } })), 'source_user');
    expect(notSuper).toMatchObject({ status: 'fail' });
    expect(notSuper.fix).toMatch(/ALTER ROLE app SUPERUSER/);
    expect(find(evaluatePreflight(withSource({ migrationUser: { name: 'ghost', superuser: null } })), 'source_user').detail).toMatch(/does not exist/);
  });

  it('fails a source newer than the target; warns when the target version is unknown', () => {
    const newer = evaluatePreflight({ ...good, cluster: { status: 'online', versionMajor: 14 } });
    expect(find(newer, 'versions')).toMatchObject({ status: 'fail' });
    expect(find(newer, 'versions').fix).toMatch(/PostgreSQL 15 or later/);
    expect(find(evaluatePreflight({ ...good, cluster: { status: 'online', versionMajor: null } }), 'versions').status).toBe('warn');
  });

  it('fails tables without primary key or replica identity, naming them', () => {
    const item = find(evaluatePreflight(withSource({ tablesWithoutReplicaIdentity: ['public.events'] })), 'replica_identity');
    expect(item.status).toBe('fail');
    expect(item.detail).toMatch(/public\.events/);
    expect(item.fix).toMatch(/PRIMARY KEY|REPLICA IDENTITY FULL/);
  });

  it('warns about large objects and unlogged tables', () => {
    const items = evaluatePreflight(withSource({ largeObjects: 2, unloggedTables: ['public.cache'] }));
    expect(find(items, 'large_objects').status).toBe('warn');
    expect(find(items, 'unlogged_tables')).toMatchObject({ status: 'warn' });
    expect(preflightVerdict(items)).toBe('warn');
  });

  it('fails a cluster that is not online, or not reachable', () => {
    expect(find(evaluatePreflight({ ...good, cluster: { status: 'resizing', versionMajor: 16 } }), 'do_cluster').status).toBe('fail');
    expect(find(evaluatePreflight({ ...good, cluster: { error: 'HTTP 500' } }), 'do_cluster').status).toBe('fail');
  });

  it('trusted sources: pass when open or covered (CIDR), fail when an address is missing, warn when only tags could cover it', () => {
    const required = [
      { who: 'source' as const, host: 'db', addresses: ['203.0.113.7'] },
      { who: 'proxy' as const, host: 'proxy', addresses: ['198.51.100.4'] },
    ];
    const covered = evaluatePreflight({ ...good, firewall: { rules: [{ type: 'ip_addr', value: '203.0.113.0/24' }, { type: 'ip_addr', value: '198.51.100.4' }], required } });
    expect(find(covered, 'trusted_sources').status).toBe('pass');
    const missing = find(evaluatePreflight({ ...good, firewall: { rules: [{ type: 'ip_addr', value: '203.0.113.7' }], required } }), 'trusted_sources');
    expect(missing).toMatchObject({ status: 'fail' });
    expect(missing.detail).toMatch(/proxy 198\.51\.100\.4/);
    const tagged = evaluatePreflight({ ...good, firewall: { rules: [{ type: 'tag', value: 'backend' }], required } });
    expect(find(tagged, 'trusted_sources').status).toBe('warn');
  });

  it('proxy: fails when unreachable or pointing elsewhere, warns when it cannot tell', () => {
    const expected = { host: '10.0.0.5', port: 5432, database: 'orders' };
    expect(find(evaluatePreflight({ ...good, proxy: { expected, observed: { error: 'ECONNREFUSED' } } }), 'proxy').status).toBe('fail');
    const elsewhere = find(
      evaluatePreflight({ ...good, proxy: { expected, observed: { healthy: true, pointsTo: { ...expected, port: 6543 }, detail: '' } } }),
      'proxy',
    );
    expect(elsewhere).toMatchObject({ status: 'fail' });
    expect(elsewhere.detail).toMatch(/6543/);
    expect(find(evaluatePreflight({ ...good, proxy: { expected, observed: { healthy: true, pointsTo: null, detail: 'http' } } }), 'proxy').status).toBe('warn');
    expect(evaluatePreflight({ ...good, proxy: undefined }).some((i) => i.check === 'proxy')).toBe(false);
  });

  it('an unreachable source is one failing item, the rest still reported', () => {
    const items = evaluatePreflight({ ...good, source: { error: 'connection refused' } });
    expect(find(items, 'source_reachable').status).toBe('fail');
    expect(items.some((i) => i.check === 'do_cluster')).toBe(true);
  });

  it('matches IPv4 addresses and CIDR blocks', () => {
    expect(ipAllowed('10.1.2.3', '10.0.0.0/8')).toBe(true);
    expect(ipAllowed('11.1.2.3', '10.0.0.0/8')).toBe(false);
    expect(ipAllowed('10.1.2.3', '10.1.2.3')).toBe(true);
    expect(ipAllowed('1.2.3.4', '0.0.0.0/0')).toBe(true);
    expect(ipAllowed('1.2.3.4', 'garbage/33')).toBe(false);
  });
});
