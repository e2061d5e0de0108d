/**
 * Contract: the client's requests and the simulator's responses validate against DigitalOcean's
 * official OpenAPI spec, for every call pgcutover makes (the migration, the cluster, trusted sources,
 * CA, databases, new users) and the error answers it handles.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalOceanClient } from '../../src/adapters/digitalocean/digitalocean-client.js';
import { Secret } from '../../src/secret.js';
import { startDoSimulator, type DoSimulator, type RecordedRequest } from '../../src/simulator/digitalocean/index.js';
import { createLogger } from '../../src/log.js';
import { loadDoOpenApi, specPath as specPathOf } from '../support/do-openapi.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';

const TOKEN = 'dop_v1_contract_token';
const CLUSTER = '9cc10173-e9ea-4176-9dbc-a4cee4c4ff30';

describe('contract with the official DigitalOcean OpenAPI spec', () => {
  let source: Cluster;
  let target: Cluster;
  let sim: DoSimulator;
  let spec: ReturnType<typeof loadDoOpenApi>;

  beforeAll(async () => {
    spec = loadDoOpenApi();
    [source, target] = await Promise.all([startCluster({ logical: true, databases: ['shop'] }), startCluster()]);
    await source.query('CREATE TABLE items (id int PRIMARY KEY, name text)', [], 'shop');
    sim = await startDoSimulator({
      token: new Secret(TOKEN),
      logger: createLogger('silent'),
      clusters: {
        [CLUSTER]: {
          connection: { host: target.host, port: target.port, user: target.user, password: new Secret(target.password), database: 'defaultdb' },
          firewallRules: [{ type: 'ip_addr', value: '127.0.0.1' }],
          caPem: '-----BEGIN CERTIFICATE-----\nMIIB (contract test)\n-----END CERTIFICATE-----\n',
        },
      },
    });
    const client = new DigitalOceanClient({ token: new Secret(TOKEN), baseUrl: sim.url, logger: createLogger('silent'), sleep: async () => {} });
    // Drive every call and the errors the client handles, then check what went over the wire.
    await client.getOnlineMigration(CLUSTER); // 404 before any migration
    const started = await client.startOnlineMigration(CLUSTER, {
      source: { host: source.host, port: source.port, dbname: 'shop', username: source.user, password: new Secret(source.password) },
      disableSsl: false,
      ignoreDbs: ['postgres'],
    });
    for (let i = 0; i < 100 && (await client.getOnlineMigration(CLUSTER))?.status !== 'syncing'; i += 1) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await client.getCluster(CLUSTER);
    await client.listFirewallRules(CLUSTER);
    await client.appendFirewallRules(CLUSTER, [{ type: 'ip_addr', value: '203.0.113.9', description: 'pgcutover: bot' }]);
    await client.getCaCertificate(CLUSTER);
    await client.listDatabases(CLUSTER);
    await client.createUser(CLUSTER, 'shop_app');
    await client.getUser(CLUSTER, 'shop_app');
    await client.getUser(CLUSTER, 'nobody'); // 404
    sim.injectFault({ kind: 'rate-limit', retryAfterSeconds: 0 });
    sim.injectFault({ kind: 'server-error' });
    await client.listFirewallRules(CLUSTER);
    await new DigitalOceanClient({ token: new Secret('wrong'), baseUrl: sim.url, logger: createLogger('silent') })
      .getCluster(CLUSTER)
      .catch(() => undefined);
    await client.stopOnlineMigration(CLUSTER, started.id);
    await client.getOnlineMigration(CLUSTER); // canceled
  });

  afterAll(async () => {
    await sim?.stop();
    await Promise.all([source?.stop(), target?.stop()]);
  });

  const specPath = (request: RecordedRequest) => specPathOf(request.path);

  it('exercised every operation, success and error statuses', () => {
    const seen = new Set(sim.requests.map((r) => `${r.method} ${specPath(r)} ${r.status}`));
    expect([...seen].sort()).toEqual(
      expect.arrayContaining([
        'DELETE /v2/databases/{database_cluster_uuid}/online-migration/{migration_id} 204',
        'GET /v2/databases/{database_cluster_uuid} 200',
        'GET /v2/databases/{database_cluster_uuid} 401',
        'GET /v2/databases/{database_cluster_uuid}/firewall 200',
        'PUT /v2/databases/{database_cluster_uuid}/firewall 204',
        'GET /v2/databases/{database_cluster_uuid}/ca 200',
        'GET /v2/databases/{database_cluster_uuid}/dbs 200',
        'POST /v2/databases/{database_cluster_uuid}/users 201',
        'GET /v2/databases/{database_cluster_uuid}/users/{username} 200',
        'GET /v2/databases/{database_cluster_uuid}/users/{username} 404',
        'GET /v2/databases/{database_cluster_uuid}/firewall 429',
        'GET /v2/databases/{database_cluster_uuid}/firewall 500',
        'GET /v2/databases/{database_cluster_uuid}/online-migration 200',
        'GET /v2/databases/{database_cluster_uuid}/online-migration 404',
        'PUT /v2/databases/{database_cluster_uuid}/online-migration 200',
      ]),
    );
    const statuses = sim.requests
      .filter((r) => r.method === 'GET' && r.path.endsWith('/online-migration') && r.status === 200)
      .map((r) => (JSON.parse(r.responseText) as { status: string }).status);
    expect(statuses).toContain('syncing');
    expect(statuses.at(-1)).toBe('canceled');
  });

  it("the client's request bodies validate against the operation's requestBody schema", () => {
    const bodies = sim.requests.filter((r) => r.body !== undefined);
    expect(bodies.length).toBeGreaterThan(0);
    for (const request of bodies) {
      const validate = spec.operation(request.method, specPath(request)).requestBody;
      expect(validate, `${request.method} ${request.path} has a body schema`).toBeDefined();
      expect(validate?.(request.body), JSON.stringify(validate?.errors)).toBe(true);
    }
  });

  it("the simulator's responses validate against the declared status's schema, with the declared headers", () => {
    for (const request of sim.requests) {
      const operation = spec.operation(request.method, specPath(request));
      const declared = operation.declaredStatuses.includes(String(request.status)) || operation.declaredStatuses.includes('default');
      expect(declared, `${operation.operationId} declares ${request.status}`).toBe(true);
      const validate = operation.response(request.status);
      if (validate === null) {
        expect(request.responseText, `${operation.operationId} ${request.status} has no body`).toBe('');
      } else {
        const ok = validate(JSON.parse(request.responseText));
        expect(ok, `${operation.operationId} ${request.status}: ${JSON.stringify(validate.errors)}`).toBe(true);
      }
      for (const header of operation.headers(request.status)) {
        expect(request.responseHeaders[header], `${operation.operationId} ${request.status} header ${header}`).toMatch(/^\d+$/);
      }
    }
  });

  it('a wrong-shape body fails the same validators (the contract check can fail)', () => {
    const validate = spec.operation('GET', '/v2/databases/{database_cluster_uuid}/online-migration').response(200);
    expect(validate?.({ id: 'x', status: 'paused', created_at: 'now' })).toBe(false);
    const body = spec.operation('PUT', '/v2/databases/{database_cluster_uuid}/online-migration').requestBody;
    expect(body?.({ source: { port: '5432' } })).toBe(false);
  });
});
