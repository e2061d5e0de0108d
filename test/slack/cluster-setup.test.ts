/**
 * `/migrate setup` over signed Slack requests against the running bot, with the DO simulator in place
 * of DigitalOcean and a real target cluster: the plan is shown to anyone, the change done only for an
 * operator with `--confirm`, and the application user's password never shows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { MASKED, Secret } from '../../src/secret.js';
import { startDoSimulator, type DoSimulator } from '../../src/simulator/digitalocean/index.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';
import { ALICE, CHANNELS, MALLORY, SOLO_CHANNEL, startHarness, type Harness } from './harness.js';

const ORDERS_CLUSTER = '9cc10173-e9ea-4176-9dbc-a4cee4c4ff30';
const CATALOG_CLUSTER = '5f1d3c2e-7a8b-4c9d-8e0f-1a2b3c4d5e6f';

describe('/migrate setup over Slack', () => {
  let target: Cluster;
  let sim: DoSimulator;
  let h: Harness;
  const lastAnswer = () => String(h.fake.responds.at(-1)?.body.text ?? '');

  beforeAll(async () => {
    target = await startCluster({ databases: ['catalog'] });
    const connection = { host: target.host, port: target.port, user: target.user, password: new Secret(target.password), database: 'defaultdb' };
    sim = await startDoSimulator({
      token: new Secret('do-test-token'),
      logger: createLogger('silent'),
      clusters: { [ORDERS_CLUSTER]: { connection, firewallRules: [{ type: 'tag', value: 'backend' }] }, [CATALOG_CLUSTER]: { connection } },
    });
    h = await startHarness({ env: { DIGITALOCEAN_API_URL: sim.url } });
  });

  afterAll(async () => {
    await h?.close();
    await sim?.stop();
    await target?.stop();
  });

  it('shows the trusted-sources plan and refuses a non-operator\'s --confirm, audited', async () => {
    const ch = h.channel(CHANNELS[0]!);
    await ch.command(MALLORY, 'setup trusted-sources');
    expect(lastAnswer()).toMatch(/trusted sources: nothing to add[\s\S]*digitalocean\.publicAddresses/);
    await ch.command(MALLORY, 'setup trusted-sources --confirm');
    expect(lastAnswer()).toMatch(/Only an operator of `orders`/);
    const history = await h.bot.store.audit.forChannel(ch.id, 10);
    expect(history.map((r) => [r.action, r.actor, r.outcome])).toEqual(
      expect.arrayContaining([
        ['setup_trusted-sources_planned', MALLORY, 'succeeded'],
        ['setup_trusted-sources', MALLORY, 'refused'],
      ]),
    );
    expect(sim.requests.filter((r) => r.method === 'PUT')).toHaveLength(0);
  });

  it('creates the application user for an operator and answers with its password masked', async () => {
    const ch = h.channel(SOLO_CHANNEL);
    await ch.command(ALICE, 'setup app-user');
    expect(lastAnswer()).toMatch(/create the application user `catalog_app`/);
    await ch.command(ALICE, 'setup app-user --confirm');
    const answer = lastAnswer();
    expect(answer).toMatch(/Created the application user `catalog_app`/);
    expect(answer).toContain(`user catalog_app, password ${MASKED}`);
    const created = JSON.parse(sim.requests.find((r) => r.method === 'POST')?.responseText ?? '{}') as { user: { password: string } };
    for (let i = 0; i + 3 <= created.user.password.length; i += 1) expect(answer).not.toContain(created.user.password.slice(i, i + 3));
    expect(await target.query("SELECT 1 FROM pg_roles WHERE rolname = 'catalog_app'")).toHaveLength(1);
  });
});
