/**
 * PgBouncer for a session covering several migrated databases: which entries it covers, and on a real
 * PgBouncer 1.18 that it pauses and repoints exactly those (an ignored database's entry is never
 * touched), and that a pause failing on one entry leaves none paused.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgBouncerEntries, selectEntries } from '../../src/adapters/proxy/pgbouncer-entries.js';
import type { DatabaseRow } from '../../src/adapters/proxy/pgbouncer-console.js';
import { CodedError, ErrorCode } from '../../src/errors.js';
import { Secret } from '../../src/secret.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';
import { startPgBouncer, type PgBouncer } from '../support/pgbouncer.js';
import { memoryLogger } from './helpers.js';

const row = (name: string, host: string, port: number, database = name): DatabaseRow => ({
  name,
  host,
  port,
  database,
  pool_mode: null,
  current_connections: 0,
  paused: 0,
  disabled: 0,
});

describe('selectEntries', () => {
  const rows = new Map(
    [
      row('app', 'src', 5432),
      row('app2', 'src', 5432),
      row('app2_ro', 'replica', 5432, 'app2'),
      row('app3', 'src', 5432),
      row('app_pgcutover_probe', 'tgt', 25060, 'app'),
      row('reports', 'tgt', 25060, 'app2'),
    ].map((r) => [r.name, r]),
  );
  const servers = [
    { host: 'src', port: 5432 },
    { host: 'tgt', port: 25060 },
  ];

  it('covers the profile entry first, then every entry pointing at a migrated database on the source or the target', () => {
    expect(selectEntries(rows, { primary: 'app', migrated: ['app', 'app2'], servers })).toEqual([
      { name: 'app', database: 'app' },
      { name: 'app2', database: 'app2' },
      { name: 'reports', database: 'app2' },
    ]);
  });

  it('covers exactly the listed entries when the profile lists them, and refuses one PgBouncer does not have', () => {
    expect(selectEntries(rows, { primary: 'app', listed: ['app2_ro'], migrated: ['app', 'app2'], servers })).toEqual([
      { name: 'app', database: 'app' },
      { name: 'app2_ro', database: 'app2' },
    ]);
    expect(() => selectEntries(rows, { primary: 'app', listed: ['nope'], migrated: [], servers })).toThrow(/no database "nope"/);
  });
});

describe('PgBouncerEntries (real PgBouncer 1.18, two clusters)', () => {
  let source: Cluster;
  let target: Cluster;
  let bouncer: PgBouncer;
  const { logger } = memoryLogger();

  const entries = (pauseTimeoutSeconds = 5) =>
    new PgBouncerEntries({
      admin: { host: bouncer.host, port: bouncer.port, user: bouncer.adminUser, password: new Secret(bouncer.adminPassword) },
      database: 'app',
      databasesFile: bouncer.databasesFile,
      pauseTimeoutSeconds,
      logger,
      profileDatabases: ['app'],
      selection: async () => ({
        migrated: ['app', 'app2'],
        servers: [source, target].map(({ host, port }) => ({ host, port })),
      }),
    });
  const shown = async () => {
    const admin = await bouncer.admin();
    try {
      const { rows } = await admin.query<{ name: string; port: number; database: string; paused: number }>('SHOW DATABASES');
      return Object.fromEntries(rows.filter((r) => r.name.startsWith('app')).map((r) => [r.name, `${r.port}/${r.database}${Number(r.paused) ? ' paused' : ''}`]));
    } finally {
      await admin.end();
    }
  };

  beforeAll(async () => {
    [source, target] = await Promise.all([
      startCluster({ databases: ['app', 'app2', 'app3'] }),
      startCluster({ databases: ['app', 'app2'] }),
    ]);
    bouncer = await startPgBouncer({
      databases: Object.fromEntries(['app', 'app2', 'app3'].map((db) => [db, { host: source.host, port: source.port, dbname: db }])),
    });
  }, 60_000);
  afterAll(async () => {
    await bouncer?.stop();
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('pauses and repoints the entry of every migrated database, never the ignored one', async () => {
    const proxy = entries();
    try {
      await proxy.prepare();
      await proxy.freeze();
      expect(await shown()).toEqual({ app: `${source.port}/app paused`, app2: `${source.port}/app2 paused`, app3: `${source.port}/app3` });
      expect((await proxy.inspect()).frozen).toBe(true);

      await proxy.repoint({ host: target.host, port: target.port, database: 'app' });
      await proxy.resume();
      expect(await shown()).toEqual({ app: `${target.port}/app`, app2: `${target.port}/app2`, app3: `${source.port}/app3` });

      // A new driver (a restarted bot) finds the switched entries on the target and puts them back.
      const after = entries();
      try {
        await after.repoint({ host: source.host, port: source.port, database: 'app' });
        expect(await shown()).toEqual({ app: `${source.port}/app`, app2: `${source.port}/app2`, app3: `${source.port}/app3` });
      } finally {
        await after.close();
      }
    } finally {
      await proxy.close();
    }
  });

  it('a pause that cannot drain on one entry fails the freeze and leaves no entry paused', async () => {
    const held = new pg.Client({ connectionString: bouncer.connectionString('app2') });
    await held.connect();
    const proxy = entries(1);
    try {
      await held.query('BEGIN');
      await held.query('SELECT 1');
      const error = await proxy.freeze().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CodedError);
      expect((error as CodedError).code).toBe(ErrorCode.FreezeFailed);
      expect(await shown()).toEqual({ app: `${source.port}/app`, app2: `${source.port}/app2`, app3: `${source.port}/app3` });
    } finally {
      await held.query('ROLLBACK').catch(() => undefined);
      await held.end().catch(() => undefined);
      await proxy.close();
    }
  });
});
