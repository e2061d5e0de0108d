/**
 * `/migrate setup`: the plan first (also in the dry run), then, confirmed by an operator, the change on
 * the simulated cluster: trusted sources appended with every rule kept, the application user created
 * on a real target and handed out with its password masked. Refusals and changes are audited.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applicationUserGrants } from '../../src/adapters/digitalocean/app-user-grants.js';
import { ClusterSetup } from '../../src/app/cluster-setup.js';
import { setupDoneText, setupPlanText } from '../../src/adapters/slack/texts.js';
import { DigitalOceanClient } from '../../src/adapters/digitalocean/digitalocean-client.js';
import { parseProfiles, type LoadedConfig } from '../../src/config/profiles.js';
import { parseCommand } from '../../src/domain/commands.js';
import type { AuditEntry } from '../../src/domain/ports/stores.js';
import { ErrorCode } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { MASKED, Secret } from '../../src/secret.js';
import { startDoSimulator, type DoSimulator } from '../../src/simulator/digitalocean/index.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';

const TOKEN = 'dop_v1_setup_use_case';
const PROXIED = '66666666-7777-4888-8999-aaaaaaaaaaaa';
const DIRECT = '77777777-8888-4999-8aaa-bbbbbbbbbbbb';
const log = createLogger('silent');

function profiles(cluster: Cluster): LoadedConfig {
  return parseProfiles(
    `profiles:
  orders:
    channels: [C0ORDERS]
    strategy: proxy
    source: { host: db.example.com, database: orders, user: migrator, password: "\${PW}" }
    digitalocean: { clusterUuid: ${PROXIED}, database: orders, publicAddresses: { proxy: 203.0.113.9, bot: 198.51.100.7 } }
    proxy: { kind: http, baseUrl: "https://router.example.com", auth: { kind: bearer, token: "\${PW}" } }
    gates: { operators: [U0ALICE] }
  catalog:
    channels: [C0CATALOG]
    strategy: connection-parameters
    source: { host: ${cluster.host}, port: ${cluster.port}, database: catalog, user: ${cluster.user}, password: "\${PW}" }
    digitalocean: { clusterUuid: ${DIRECT}, database: catalog }
    proxy: { kind: none }
    freeze: { method: read-only-roles, appRoles: [catalog_rw] }
    gates: { operators: [U0ALICE] }
`,
    'profiles.yml',
    { PW: cluster.password },
  );
}

describe('cluster set-up, planned then confirmed', () => {
  let target: Cluster;
  let sim: DoSimulator;
  let setup: ClusterSetup;
  const audit: AuditEntry[] = [];

  beforeAll(async () => {
    target = await startCluster({ databases: ['catalog'] });
    // What the migration copied: a table owned by someone else, with a sequence.
    await target.query('CREATE TABLE items (id bigserial PRIMARY KEY, name text)', [], 'catalog');
    const connection = { host: target.host, port: target.port, user: target.user, password: new Secret(target.password), database: 'defaultdb' };
    sim = await startDoSimulator({
      token: new Secret(TOKEN),
      logger: log,
      clusters: {
        [PROXIED]: { connection, firewallRules: [{ type: 'ip_addr', value: '198.51.100.0/24' }, { type: 'tag', value: 'backend' }] },
        [DIRECT]: { connection },
      },
    });
    const api = new DigitalOceanClient({ token: new Secret(TOKEN), baseUrl: sim.url, logger: log });
    setup = new ClusterSetup({
      config: profiles(target),
      people: { roles: async (userId) => ({ operator: userId === 'U0ALICE', approver: false }) },
      audit: { append: async (entry) => (audit.push(entry), { ...entry, id: audit.length, at: new Date(), sessionId: null, details: entry.details ?? {} }) },
      api,
      grant: applicationUserGrants(api),
    });
  });

  afterAll(async () => {
    await sim?.stop();
    await target?.stop();
  });

  it('parses `/migrate setup <action> [--confirm]`', () => {
    expect(parseCommand('setup trusted-sources')).toEqual({ ok: true, command: { kind: 'setup', action: 'trusted-sources', confirm: false } });
    expect(parseCommand('setup app-user --confirm')).toEqual({ ok: true, command: { kind: 'setup', action: 'app-user', confirm: true } });
    expect(parseCommand('setup firewall')).toMatchObject({ ok: false, problem: expect.stringMatching(/trusted-sources, app-user/) });
  });

  it('shows the trusted sources it would add, then an operator has them appended, every rule kept', async () => {
    const shown = await setup.show('C0ORDERS', 'U0BOB', 'trusted-sources');
    expect(shown.plan).toMatchObject({ add: [{ who: 'proxy', address: '203.0.113.9' }], admitted: [{ who: 'bot', address: '198.51.100.7' }], existingRules: 2 });
    expect(setupPlanText(shown.profileName, shown.plan)).toMatch(/append to the trusted sources: proxy 203\.0\.113\.9 .*2 existing rule\(s\) are kept/);

    await expect(setup.run('C0ORDERS', 'U0BOB', 'trusted-sources')).rejects.toMatchObject({ code: ErrorCode.NotAuthorized });
    expect(await new DigitalOceanClient({ token: new Secret(TOKEN), baseUrl: sim.url, logger: log }).listFirewallRules(PROXIED)).toHaveLength(2);

    const done = await setup.run('C0ORDERS', 'U0ALICE', 'trusted-sources');
    expect(done.outcome).toMatchObject({ action: 'trusted-sources', added: ['203.0.113.9'] });
    expect(await new DigitalOceanClient({ token: new Secret(TOKEN), baseUrl: sim.url, logger: log }).listFirewallRules(PROXIED)).toEqual([
      { type: 'ip_addr', value: '198.51.100.0/24' },
      { type: 'tag', value: 'backend' },
      { type: 'ip_addr', value: '203.0.113.9' },
    ]);
    expect(audit.map((a) => [a.action, a.actor, a.outcome])).toEqual([
      ['setup_trusted-sources_planned', 'U0BOB', 'succeeded'],
      ['setup_trusted-sources', 'U0BOB', 'refused'],
      ['setup_trusted-sources', 'U0ALICE', 'succeeded'],
    ]);
    expect(await setup.plan(profiles(target).profiles.get('orders')!, 'trusted-sources')).toMatchObject({ add: [] });
  });

  it('creates the application user for connection-parameters and shows its parameters with the password masked', async () => {
    expect(await setup.plan(profiles(target).profiles.get('catalog')!, 'app-user')).toEqual({ action: 'app-user', user: 'catalog_app', applicable: true, exists: false });

    const done = await setup.run('C0CATALOG', 'U0ALICE', 'app-user');
    if (done.outcome.action !== 'app-user' || !done.outcome.created) throw new Error('no user was created');
    const password = done.outcome.created.password.reveal();
    const client = new pg.Client({ host: target.host, port: target.port, database: 'catalog', user: 'catalog_app', password });
    await client.connect();
    // It logs in and may write the migrated table (granted by the set-up).
    const written = await client.query<{ by: string }>("INSERT INTO items (name) VALUES ('from the app') RETURNING current_user AS by").finally(() => client.end());
    expect(written.rows[0]?.by).toBe('catalog_app');

    const text = setupDoneText(done.profileName, done.outcome);
    expect(text).toContain(`user catalog_app, password ${MASKED}`);
    for (let i = 0; i + 3 <= password.length; i += 1) expect(text).not.toContain(password.slice(i, i + 3));
    // A second run finds it and creates nothing.
    expect((await setup.run('C0CATALOG', 'U0ALICE', 'app-user')).outcome).toMatchObject({ created: null });
  });

  it('refuses the application user for the proxy strategy', async () => {
    await expect(setup.run('C0ORDERS', 'U0ALICE', 'app-user')).rejects.toMatchObject({ code: ErrorCode.CommandInvalid });
  });
});
