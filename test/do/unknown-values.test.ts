/**
 * Values DigitalOcean adds after the spec we follow (a new migration status, a new firewall rule
 * type) read as `unknown`: they never fail the response, and with it stop, abort and finish.
 */
import { describe, expect, it } from 'vitest';
import { DigitalOceanClient } from '../../src/adapters/digitalocean/digitalocean-client.js';
import { Secret } from '../../src/secret.js';
import { createLogger } from '../../src/log.js';

const CLUSTER = '11111111-2222-4333-8444-555555555555';

/** A client whose every call is answered 200 with `body`. */
function answering(body: unknown): DigitalOceanClient {
  return new DigitalOceanClient({
    token: new Secret('dop_v1_unknown_values_test_token'),
    baseUrl: 'http://do.invalid',
    logger: createLogger('silent'),
    fetch: async () => new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } }),
  });
}

describe('unknown values from DigitalOcean', () => {
  it('a migration status DigitalOcean added later reads as unknown; the known ones stay as they are', async () => {
    const paused = { id: 'mig-7', status: 'paused', created_at: '2026-12-01T10:00:00Z' };
    expect(await answering(paused).getOnlineMigration(CLUSTER)).toEqual({ id: 'mig-7', status: 'unknown', createdAt: '2026-12-01T10:00:00Z' });
    expect((await answering({ ...paused, status: 'syncing' }).getOnlineMigration(CLUSTER))?.status).toBe('syncing');
  });

  it('a firewall rule type DigitalOcean added later reads as unknown', async () => {
    const rules = [
      { type: 'ip_addr', value: '203.0.113.7' },
      { type: 'vpc', value: 'vpc-1' },
    ];
    expect(await answering({ rules }).listFirewallRules(CLUSTER)).toEqual([
      { type: 'ip_addr', value: '203.0.113.7' },
      { type: 'unknown', value: 'vpc-1' },
    ]);
  });

  it('appending a trusted source sends a rule of an unknown type back as DigitalOcean wrote it', async () => {
    const sent: unknown[] = [];
    const client = new DigitalOceanClient({
      token: new Secret('dop_v1_unknown_values_test_token'),
      baseUrl: 'http://do.invalid',
      logger: createLogger('silent'),
      fetch: async (_url, init) => {
        if (init?.method === 'PUT') {
          sent.push(JSON.parse(String(init.body)));
          return new Response(null, { status: 204 });
        }
        const rules = [{ uuid: 'r-1', cluster_uuid: CLUSTER, type: 'vpc', value: 'vpc-1', created_at: '2026-01-01T00:00:00Z' }];
        return new Response(JSON.stringify({ rules }), { status: 200 });
      },
    });
    expect(await client.appendFirewallRules(CLUSTER, [{ type: 'ip_addr', value: '203.0.113.9', description: 'pgcutover: bot' }])).toEqual({ added: ['203.0.113.9'] });
    expect(sent).toEqual([{ rules: [{ uuid: 'r-1', type: 'vpc', value: 'vpc-1' }, { type: 'ip_addr', value: '203.0.113.9', description: 'pgcutover: bot' }] }]);
  });
});
