/**
 * The DigitalOcean client against the simulator over real HTTP, with faults injected by the simulator
 * and an injected sleep/clock so retries run instantly.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DigitalOceanClient, type DigitalOceanClientOptions } from '../../src/adapters/digitalocean/digitalocean-client.js';
import { DoApiError, ErrorCode } from '../../src/errors.js';
import { Secret } from '../../src/secret.js';
import { startDoSimulator, type DoSimulator } from '../../src/simulator/digitalocean/index.js';
import { captureLogger } from '../support/capture-log.js';

const TOKEN = 'dop_v1_client_test_token_fedcba9876543210';
const CLUSTER = '11111111-2222-4333-8444-555555555555';
const RULES = [
  { type: 'ip_addr' as const, value: '203.0.113.7' },
  { type: 'tag' as const, value: 'backend' },
];

describe('DigitalOcean client against the simulator (faults over real HTTP)', () => {
  let sim: DoSimulator;
  const { logger, output } = captureLogger('debug');
  let sleeps: number[] = [];
  let slept = 0;

  const client = (overrides: Partial<DigitalOceanClientOptions> = {}) =>
    new DigitalOceanClient({
      token: new Secret(TOKEN),
      baseUrl: sim.url,
      logger,
      sleep: async (ms) => {
        sleeps.push(ms);
        slept += ms;
      },
      now: () => Date.now() + slept,
      backoffMs: 100,
      ...overrides,
    });

  beforeAll(async () => {
    sim = await startDoSimulator({
      token: new Secret(TOKEN),
      logger,
      clusters: {
        // Firewall and fault calls never touch the database, so this points nowhere.
        [CLUSTER]: {
          connection: { host: '127.0.0.1', port: 1, user: 'doadmin', password: new Secret('unused-password'), database: 'defaultdb' },
          firewallRules: RULES,
        },
      },
    });
  });
  afterEach(() => {
    sim.clearFaults();
    sleeps = [];
    slept = 0;
  });
  afterAll(async () => {
    await sim?.stop();
  });

  const requestsDuring = async <T>(work: () => Promise<T>): Promise<{ result: T | unknown; count: number }> => {
    const before = sim.requests.length;
    const result = await work().catch((e: unknown) => e);
    return { result, count: sim.requests.length - before };
  };

  it('lists firewall rules, validated and mapped', async () => {
    expect(await client().listFirewallRules(CLUSTER)).toEqual(RULES);
  });

  it('GET online-migration before any migration (404) is undefined', async () => {
    expect(await client().getOnlineMigration(CLUSTER)).toBeUndefined();
  });

  it('429 with retry-after: waits exactly that long, then succeeds', async () => {
    sim.injectFault({ kind: 'rate-limit', retryAfterSeconds: 7 });
    const { result, count } = await requestsDuring(() => client().listFirewallRules(CLUSTER));
    expect(result).toEqual(RULES);
    expect(count).toBe(2);
    expect(sleeps).toEqual([7000]);
  });

  it('429 without retry-after: waits until ratelimit-reset', async () => {
    sim.injectFault({ kind: 'rate-limit', resetInSeconds: 3 });
    const result = await client().listFirewallRules(CLUSTER);
    expect(result).toEqual(RULES);
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeGreaterThan(1500);
    expect(sleeps[0]).toBeLessThanOrEqual(4000);
  });

  it('429 whose wait exceeds the budget fails at once with DoRateLimited and the wait', async () => {
    sim.injectFault({ kind: 'rate-limit', retryAfterSeconds: 600 });
    const { result, count } = await requestsDuring(() => client({ budgetMs: 20_000 }).listFirewallRules(CLUSTER));
    expect(result).toBeInstanceOf(DoApiError);
    expect(result).toMatchObject({ code: ErrorCode.DoRateLimited, status: 429, doId: 'too_many_requests', retryAfterMs: 600_000 });
    expect((result as DoApiError).requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(count).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it('5xx is retried with growing backoff and then succeeds', async () => {
    sim.injectFault({ kind: 'server-error', status: 503, times: 2 });
    const { result, count } = await requestsDuring(() => client().listFirewallRules(CLUSTER));
    expect(result).toEqual(RULES);
    expect(count).toBe(3);
    expect(sleeps).toHaveLength(2);
    expect(sleeps[0]).toBeGreaterThanOrEqual(50);
    expect(sleeps[1]).toBeGreaterThanOrEqual(100);
  });

  it('5xx that persists gives DoUnavailable after maxAttempts, keeping DO id and request_id', async () => {
    sim.injectFault({ kind: 'server-error', times: 10 });
    const { result, count } = await requestsDuring(() => client({ maxAttempts: 4 }).listFirewallRules(CLUSTER));
    expect(result).toMatchObject({ code: ErrorCode.DoUnavailable, status: 500, doId: 'server_error' });
    expect((result as DoApiError).requestId).toBe(sim.requests.at(-1)?.responseHeaders['x-request-id']);
    expect(count).toBe(4);
  });

  it('a slow answer past the per-attempt timeout is retried for GET', async () => {
    sim.injectFault({ kind: 'slow', delayMs: 600 });
    const result = await client({ timeoutMs: 150 }).listFirewallRules(CLUSTER);
    expect(result).toEqual(RULES);
    // The slow attempt was abandoned and retried (a backoff was slept), not waited for.
    expect(sleeps.length).toBeGreaterThanOrEqual(1);
  });

  it('the budget bounds a whole call however slow DO is', async () => {
    sim.injectFault({ kind: 'slow', delayMs: 2000, times: 10 });
    const failedAttempts = () => output().split('\n').filter((l) => l.includes('DigitalOcean request failed')).length;
    const before = failedAttempts();
    const error = await client({ timeoutMs: 200, budgetMs: 300, maxAttempts: 10, sleep: (ms) => new Promise((r) => setTimeout(r, ms)), now: Date.now })
      .listFirewallRules(CLUSTER)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: ErrorCode.DoUnavailable });
    // The budget, not the attempts, ended the call: 300 ms hold at most two 200 ms attempts of the ten allowed.
    expect(failedAttempts() - before).toBeGreaterThanOrEqual(1);
    expect(failedAttempts() - before).toBeLessThanOrEqual(2);
  });

  it('a start (PUT) is not retried after a timeout: it may have started a migration', async () => {
    sim.injectFault({ kind: 'slow', delayMs: 500, method: 'PUT' });
    const { result, count } = await requestsDuring(() =>
      client({ timeoutMs: 100 }).startOnlineMigration(CLUSTER, {
        source: { host: '127.0.0.1', port: 1, dbname: 'x', username: 'u', password: new Secret('source-secret-Pw') },
        disableSsl: false,
        ignoreDbs: [],
      }),
    );
    expect(result).toMatchObject({ code: ErrorCode.DoUnavailable });
    expect((result as Error).message).toMatch(/did not answer PUT/);
    await new Promise((r) => setTimeout(r, 500));
    expect(count).toBeLessThanOrEqual(1);
  });

  it('malformed JSON is DoBadResponse, not a crash', async () => {
    sim.injectFault({ kind: 'malformed', shape: 'truncated' });
    await expect(client().getOnlineMigration(CLUSTER)).rejects.toMatchObject({ code: ErrorCode.DoBadResponse, status: 200 });
  });

  it('JSON of the wrong shape is DoBadResponse naming the fields', async () => {
    sim.injectFault({ kind: 'malformed', shape: 'wrong-shape' });
    const error = await client().getOnlineMigration(CLUSTER).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: ErrorCode.DoBadResponse });
    expect((error as Error).message).toMatch(/status/);
  });

  it('401 from a wrong token is DoUnauthorized with DO id/message/request_id, not retried', async () => {
    const { result, count } = await requestsDuring(() =>
      client({ token: new Secret('dop_v1_wrong') }).listFirewallRules(CLUSTER),
    );
    expect(result).toMatchObject({ code: ErrorCode.DoUnauthorized, status: 401, doId: 'unauthorized' });
    expect((result as Error).message).toMatch(/Unable to authenticate you.*DIGITALOCEAN_TOKEN/);
    expect((result as DoApiError).requestId).toBeDefined();
    expect(count).toBe(1);
  });

  it('403 is DoForbidden naming the scopes; 404 on a cluster is DoNotFound', async () => {
    sim.injectFault({ kind: 'error', status: 403 });
    await expect(client().listFirewallRules(CLUSTER)).rejects.toMatchObject({ code: ErrorCode.DoForbidden, doId: 'forbidden' });
    await expect(client().listFirewallRules('00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({
      code: ErrorCode.DoNotFound,
      status: 404,
      doId: 'not_found',
    });
  });

  it('faults can be injected over HTTP by another process (control endpoint)', async () => {
    const unauthorized = await fetch(`${sim.url}/_simulator/faults`, { method: 'POST', body: '{}' });
    expect(unauthorized.status).toBe(401);
    const posted = await fetch(`${sim.url}/_simulator/faults`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'server-error', status: 500, times: 10 }),
    });
    expect(posted.status).toBe(204);
    await expect(client({ maxAttempts: 2 }).listFirewallRules(CLUSTER)).rejects.toMatchObject({ code: ErrorCode.DoUnavailable });
    const cleared = await fetch(`${sim.url}/_simulator/faults`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(cleared.status).toBe(204);
    expect(await client().listFirewallRules(CLUSTER)).toEqual(RULES);
  });

  it('never logs the token or the source password, nor puts them in errors', async () => {
    sim.injectFault({ kind: 'server-error', times: 10 });
    const error = await client({ maxAttempts: 2 })
      .startOnlineMigration(CLUSTER, {
        source: { host: '127.0.0.1', port: 1, dbname: 'x', username: 'u', password: new Secret('source-secret-Pw') },
        disableSsl: false,
        ignoreDbs: [],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DoApiError);
    const logged = output();
    expect(logged).toContain('DigitalOcean asked to retry');
    for (const text of [logged, JSON.stringify(error), (error as Error).message, String((error as Error).cause ?? '')]) {
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain('source-secret-Pw');
    }
    // The simulator keeps the request for contract checks, with the password redacted.
    expect(JSON.stringify(sim.requests)).not.toContain('source-secret-Pw');
  });
});
