/**
 * The DigitalOcean client's failed requests and retries as /metrics shows them, against the simulator
 * over real HTTP with injected faults (an injected sleep so retries do not wait).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrometheusMetrics } from '../../src/adapters/metrics/prometheus.js';
import { DigitalOceanClient } from '../../src/adapters/digitalocean/digitalocean-client.js';
import { createLogger } from '../../src/log.js';
import { Secret } from '../../src/secret.js';
import { startDoSimulator, type DoSimulator } from '../../src/simulator/digitalocean/index.js';
import { sampleValue } from '../support/prometheus-text.js';

const TOKEN = 'dop_v1_metrics_test_token_0123456789abcdef';
const CLUSTER = '11111111-2222-4333-8444-555555555555';
const log = createLogger('silent');

describe('DigitalOcean API errors and retries in /metrics', () => {
  let sim: DoSimulator;
  beforeAll(async () => {
    sim = await startDoSimulator({
      token: new Secret(TOKEN),
      logger: log,
      // Firewall calls never touch the database, so this points nowhere.
      clusters: { [CLUSTER]: { connection: { host: '127.0.0.1', port: 1, user: 'doadmin', password: new Secret('unused-password'), database: 'defaultdb' }, firewallRules: [] } },
    });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it('counts every failed attempt by operation and code, and each retry by reason', async () => {
    const metrics = new PrometheusMetrics({ active: async () => [] }, { defaultMetrics: false });
    const client = new DigitalOceanClient({ token: new Secret(TOKEN), baseUrl: sim.url, logger: log, sleep: async () => undefined, metrics });

    sim.injectFault({ kind: 'server-error', status: 503, times: 2 });
    expect(await client.listFirewallRules(CLUSTER)).toEqual([]);
    sim.injectFault({ kind: 'rate-limit', retryAfterSeconds: 1 });
    expect(await client.listFirewallRules(CLUSTER)).toEqual([]);
    sim.injectFault({ kind: 'error', status: 403 });
    await expect(client.getCluster(CLUSTER)).rejects.toMatchObject({ code: 'do_forbidden' });

    const text = await metrics.render();
    const firewall = { api: 'digitalocean', operation: 'GET /v2/databases/{uuid}/firewall' };
    expect(sampleValue(text, 'pgcutover_api_errors_total', { ...firewall, error: 'do_unavailable' })).toBe(2);
    expect(sampleValue(text, 'pgcutover_api_errors_total', { ...firewall, error: 'do_rate_limited' })).toBe(1);
    expect(sampleValue(text, 'pgcutover_api_errors_total', { api: 'digitalocean', operation: 'GET /v2/databases/{uuid}', error: 'do_forbidden' })).toBe(1);
    expect(sampleValue(text, 'pgcutover_api_retries_total', { api: 'digitalocean', reason: 'http_error' })).toBe(2);
    expect(sampleValue(text, 'pgcutover_api_retries_total', { api: 'digitalocean', reason: 'rate_limited' })).toBe(1);
    // A refusal (403) is not retried; ids never become label values.
    expect(sampleValue(text, 'pgcutover_api_retries_total', { api: 'digitalocean', reason: 'transport' })).toBeUndefined();
    expect(text).not.toContain(CLUSTER);
    expect(text).not.toContain(TOKEN);
  });
});
