import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadProfiles, parseProfiles } from '../../src/config/profiles.js';
import { ErrorCode } from '../../src/errors.js';

const EXAMPLE = new URL('../../pgcutover.example.yml', import.meta.url).pathname;
const exampleEnv = {
  ORDERS_SOURCE_PASSWORD: 'orders-source-pw',
  PGBOUNCER_ADMIN_PASSWORD: 'bouncer-admin-pw',
  CATALOG_SOURCE_PASSWORD: 'catalog-source-pw',
  ORDERS_APP_PASSWORD: 'orders-app-pw',
};

const minimal = (overrides = '') => `profiles:
  orders:
    channels: [C0123ABC]
    strategy: proxy
    source:
      host: db.internal
      database: orders
      user: migrator
      password: \${SRC_PW}
    digitalocean:
      clusterUuid: 9cc10173-e9ea-4176-9dbc-a4cee4c4ff30
      database: orders
    proxy:
      kind: pgbouncer
      admin:
        host: bouncer.internal
        user: pgcutover
      database: orders
      databasesFile: /etc/pgbouncer/databases.ini
    gates:
      operators: [U0123ALICE]
${overrides}`;

const problem = (text: string, env: NodeJS.ProcessEnv = { SRC_PW: 'pw-value' }) => {
  try {
    parseProfiles(text, 'pgcutover.yml', env);
  } catch (error) {
    expect(error).toMatchObject({ code: ErrorCode.ConfigInvalid });
    return (error as Error).message;
  }
  throw new Error('expected the config to be rejected');
};

describe('the profiles file', () => {
  it('loads the committed example with every default filled in', () => {
    const config = loadProfiles(EXAMPLE, exampleEnv);
    expect([...config.profiles.keys()]).toEqual(['orders', 'catalog']);
    const catalog = config.profiles.get('catalog');
    expect(catalog).toMatchObject({
      strategy: 'connection-parameters',
      source: { port: 5432, sslmode: 'prefer' },
      freeze: { method: 'read-only-roles', budgetSeconds: 30, appRoles: ['catalog_app'] },
      replication: { slot: 'auto', fenceTimeoutSeconds: 15 },
      gates: { twoPersonRule: true, approvalExpiryMinutes: 15 },
      reports: { schedule: 'every 5m', alerts: { consecutiveSamples: 3 } },
    });
    expect(config.profiles.get('orders')?.source.password.reveal()).toBe('orders-source-pw');
    expect(JSON.stringify([...config.profiles.values()])).not.toMatch(/source-pw|admin-pw/);
  });

  it('refuses a literal password, naming the key path and line but not the value', () => {
    const message = problem(minimal().replace('${SRC_PW}', 'hunter2-literal'));
    expect(message).toContain('pgcutover.yml');
    expect(message).toContain('profiles.orders.source.password (line 9)');
    expect(message).toContain('must be an ${ENV_VAR} reference');
    expect(message).not.toContain('hunter2-literal');
  });

  it('names the environment variable a reference needs', () => {
    expect(problem(minimal(), {})).toContain('references ${SRC_PW}, which is not set');
  });

  it('points a missing key at its parent line', () => {
    const message = problem(minimal().replace('      database: orders\n    proxy:', '    proxy:'));
    expect(message).toContain('profiles.orders.digitalocean.database (line 10): is required');
  });

  it('says what is wrong with a value of the wrong type, not that it is required', () => {
    const message = problem(
      minimal('      twoPersonRule: "no"\n').replace('      host: db.internal\n', '      host: db.internal\n      port: abc\n'),
    );
    expect(message).toContain('profiles.orders.source.port (line 7): must be a number, not text');
    expect(message).toContain('profiles.orders.gates.twoPersonRule (line 23): must be true or false, not text');
    expect(message).not.toContain('is required');
    expect(problem(minimal().replace('channels: [C0123ABC]', 'channels: C0123ABC'))).toContain(
      'profiles.orders.channels (line 3): must be a list, not text',
    );
    expect(problem(minimal().replace('kind: pgbouncer', 'kind: haproxy'))).toContain(
      'profiles.orders.proxy.kind (line 14): must be one of "pgbouncer", "pgpool", "http", "none"',
    );
  });

  it('refuses an alias bomb as a configuration error naming the file', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) bomb.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    const message = problem(`${bomb.join('\n')}\nprofiles: {}\n`);
    expect(message).toContain('Config file pgcutover.yml is not usable YAML: Excessive alias count');
  });

  it('refuses a channel claimed by two profiles, naming both and the channel', () => {
    const second = minimal().replace('profiles:\n  orders:', '  catalog:').replace('channels: [C0123ABC]', 'channels: [C0OTHER1, C0123ABC]');
    const message = problem(`${minimal()}${second}`);
    expect(message).toContain(
      'profiles.catalog.channels.1 (line 23): channel C0123ABC is claimed by both "orders" and "catalog"; a channel may belong to one profile',
    );
    // Listing a channel twice in one profile is harmless.
    expect(() => parseProfiles(minimal().replace('[C0123ABC]', '[C0123ABC, C0123ABC]'), 'p.yml', { SRC_PW: 'x' })).not.toThrow();
  });

  it('catches typos in key names', () => {
    expect(problem(minimal('    sequence:\n      margin: 10\n'))).toContain('unknown key(s): sequence');
  });

  it('checks the rules that span several keys', () => {
    const pgpool = minimal()
      .replace(/    proxy:\n[\s\S]*?databases.ini\n/, '    proxy:\n      kind: pgpool\n      pcp:\n        host: p\n        user: u\n        password: ${SRC_PW}\n');
    expect(problem(pgpool)).toContain('proxy "pgpool" cannot pause clients');
    expect(problem(minimal().replace('kind: pgbouncer', 'kind: none').replace(/      admin:[\s\S]*?databases.ini\n/, ''))).toContain(
      'strategy "proxy" needs a proxy',
    );
    expect(problem(minimal().replace('operators: [U0123ALICE]', 'operators: []'))).toContain('name at least one operator');
    expect(problem(minimal('    reports:\n      schedule: every 5s\n'))).toContain('too frequent');
  });

  it('reports YAML syntax errors with their line', () => {
    const message = problem('profiles:\n  orders: [unclosed\n');
    expect(message).toMatch(/not valid YAML:\n {2}line \d+:/);
  });

  it('says plainly when the file is missing, and to copy the example', () => {
    expect(() => loadProfiles('/nonexistent/pgcutover.yml', {})).toThrow(
      'Config file /nonexistent/pgcutover.yml: file not found; copy pgcutover.example.yml there and edit it, or set PGCUTOVER_CONFIG to your profiles file',
    );
  });

  it('keeps the example free of literal secrets', () => {
    const text = readFileSync(EXAMPLE, 'utf8');
    for (const line of text.split('\n').filter((l) => /password|token|secret/i.test(l) && !l.trim().startsWith('#'))) {
      expect(line).toMatch(/\$\{[A-Z_]+\}/);
    }
  });
});
