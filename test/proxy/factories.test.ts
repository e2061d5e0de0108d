import { describe, expect, it } from 'vitest';
import type { ProxyConfig } from '../../src/config/profiles.js';
import { CodedError, ErrorCode } from '../../src/errors.js';
import {
  createProxyAdmin,
  createProxyAndFreeze,
  createWriteFreeze,
  HttpProxyAdmin,
  InDatabaseFreeze,
  PgBouncerAdmin,
  PgpoolAdmin,
} from '../../src/adapters/proxy/index.js';
import { Secret } from '../../src/secret.js';
import { memoryLogger } from './helpers.js';

const { logger } = memoryLogger();
const source = { host: '127.0.0.1', port: 5432, database: 'orders', user: 'bot', password: new Secret('pw'), sslmode: 'prefer' as const };
const pgbouncer: ProxyConfig = {
  kind: 'pgbouncer',
  admin: { host: '127.0.0.1', port: 6432, user: 'pgb_admin', password: new Secret('x') },
  database: 'orders',
  databasesFile: '/etc/pgbouncer/databases.ini',
  pauseTimeoutSeconds: 10,
};
const pgpool: ProxyConfig = {
  kind: 'pgpool',
  pcp: { host: '127.0.0.1', port: 9898, user: 'pcp', password: new Secret('x') },
  sourceNode: 0,
  targetNode: 1,
};

describe('proxy factories', () => {
  it('builds the driver for each proxy kind, null for none', () => {
    const bouncer = createProxyAdmin(pgbouncer, { logger });
    expect(bouncer).toBeInstanceOf(PgBouncerAdmin);
    expect(bouncer).toMatchObject({ kind: 'pgbouncer', canPause: true, clientImpact: 'queries-wait' });
    const http = createProxyAdmin(
      { kind: 'http', baseUrl: 'http://127.0.0.1:1/admin', auth: { kind: 'bearer', token: new Secret('t') }, timeoutMs: 100, clientImpact: 'writes-fail' },
      { logger },
    );
    expect(http).toBeInstanceOf(HttpProxyAdmin);
    expect(http).toMatchObject({ canPause: false, clientImpact: 'writes-fail' });
    expect(createProxyAdmin({ kind: 'none' }, { logger })).toBeNull();
  });

  it('proxy-pause uses the proxy itself; pgpool cannot pause and is refused', () => {
    const proxy = createProxyAdmin(pgbouncer, { logger });
    expect(createWriteFreeze({ freeze: { method: 'proxy-pause', budgetSeconds: 30, appRoles: [] }, proxy, source, logger })).toBe(proxy);
    const pool = createProxyAdmin(pgpool, { logger });
    let error: unknown;
    try {
      createWriteFreeze({ freeze: { method: 'proxy-pause', budgetSeconds: 30, appRoles: [] }, proxy: pool, source, logger });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CodedError);
    expect((error as CodedError).code).toBe(ErrorCode.ProxyUnsupported);
  });

  it('pgpool with read-only roles: the in-database freeze is the freeze, and pgpool delegates to it', () => {
    const { proxy, freeze } = createProxyAndFreeze(
      { proxy: pgpool, freeze: { method: 'read-only-roles', budgetSeconds: 30, appRoles: ['app'] }, source },
      { logger },
    );
    expect(proxy).toBeInstanceOf(PgpoolAdmin);
    expect(freeze).toBeInstanceOf(InDatabaseFreeze);
    expect(freeze.clientImpact).toBe('connections-dropped');
    expect(proxy?.clientImpact).toBe('connections-dropped');
    expect(proxy?.limitations.join(' ')).toMatch(/clients will see errors|writes fail with an error/);
  });
});
