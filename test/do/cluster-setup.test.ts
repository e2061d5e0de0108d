/**
 * The cluster set-up calls against the DO simulator on a real target cluster that serves a
 * certificate from a test CA (made with openssl here): the target connection verifies that CA with
 * verify-full; trusted sources are appended without removing any rule, the PUT checked against
 * DigitalOcean's spec; a new application user logs in; a token without `database:view_credentials`
 * fails clearly; every request says `pgcutover/<version>`.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalOceanClient } from '../../src/adapters/digitalocean/digitalocean-client.js';
import { resolveTarget } from '../../src/adapters/digitalocean/target-connection.js';
import { connect, type PostgresTarget } from '../../src/adapters/source/connect.js';
import { ErrorCode } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { Secret } from '../../src/secret.js';
import { startDoSimulator, type DoSimulator } from '../../src/simulator/digitalocean/index.js';
import { loadDoOpenApi, specPath } from '../support/do-openapi.js';
import { rigTempDir, runAsRigUser, startCluster, type Cluster } from '../support/pg-cluster.js';

const TOKEN = 'dop_v1_cluster_setup';
const CLUSTER = '44444444-5555-4666-8777-888888888888';
const HIDDEN = '55555555-6666-4777-8888-999999999999';
const log = createLogger('silent');
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** A CA and a server certificate for 127.0.0.1 signed by it, in a directory the rig's OS user owns. */
function makeCertificates(): { dir: string; caPem: string } {
  const dir = rigTempDir('pgcutover-tls-');
  const at = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  runAsRigUser('openssl', ['req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.crt'), '-days', '2', '-subj', '/CN=pgcutover test CA']);
  runAsRigUser('openssl', ['req', ...ec, '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(at('san.cnf'), 'subjectAltName=IP:127.0.0.1\n', { mode: 0o644 });
  runAsRigUser('openssl', ['x509', '-req', '-in', at('server.csr'), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at('server.crt'), '-days', '2', '-extfile', at('san.cnf')]);
  runAsRigUser('chmod', ['600', at('server.key')]);
  return { dir, caPem: readFileSync(at('ca.crt'), 'utf8') };
}

describe('cluster set-up on the simulator, with a target serving a test CA\'s certificate', () => {
  let certs: { dir: string; caPem: string } | undefined;
  let target: Cluster;
  let sim: DoSimulator;
  const spec = loadDoOpenApi();
  const userAgents: string[] = [];
  const client = (token = TOKEN) =>
    new DigitalOceanClient({
      token: new Secret(token),
      baseUrl: sim.url,
      logger: log,
      fetch: (url, init) => {
        userAgents.push(String((init?.headers as Record<string, string> | undefined)?.['user-agent']));
        return fetch(url, init);
      },
    });
  const login = async (t: PostgresTarget) => {
    const c = await connect(t);
    try {
      return (await c.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0]?.ssl;
    } finally {
      await c.end();
    }
  };

  beforeAll(async () => {
    certs = makeCertificates();
    target = await startCluster({
      databases: ['orders'],
      settings: { ssl: 'on', ssl_cert_file: `'${join(certs.dir, 'server.crt')}'`, ssl_key_file: `'${join(certs.dir, 'server.key')}'` },
    });
    const connection = { host: target.host, port: target.port, user: target.user, password: new Secret(target.password), database: 'defaultdb' };
    sim = await startDoSimulator({
      token: new Secret(TOKEN),
      logger: log,
      clusters: {
        [CLUSTER]: {
          connection,
          caPem: certs.caPem,
          firewallRules: [
            { type: 'ip_addr', value: '198.51.100.0/24' },
            { type: 'tag', value: 'backend' },
            { type: 'droplet', value: '163973392' },
          ],
        },
      },
    });
  });

  afterAll(async () => {
    await sim?.stop();
    await target?.stop();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  it('connects to the target with verify-full against the CA DigitalOcean serves, and not without it', async () => {
    const resolved = await resolveTarget(client(), { clusterUuid: CLUSTER, database: 'orders' });
    expect(resolved).toMatchObject({ sslmode: 'verify-full', database: 'orders', ca: certs?.caPem });
    expect(await login(resolved)).toBe(true);

    // The same server without DO's CA: the system's CAs do not know it.
    await expect(login({ ...resolved, ca: undefined })).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
    // verify-full checks the name: the certificate names 127.0.0.1, not localhost; verify-ca only the chain.
    await expect(login({ ...resolved, host: 'localhost' })).rejects.toThrow(/localhost|altnames|Hostname/i);
    expect(await login({ ...resolved, host: 'localhost', sslmode: 'verify-ca' })).toBe(true);
  });

  it('appends trusted sources without removing any existing rule; a second append changes nothing', async () => {
    const before = await client().listFirewallRules(CLUSTER);
    const rulesOnWire = () => JSON.parse(sim.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/firewall')).at(-1)?.responseText ?? '{}') as { rules: { uuid: string; type: string; value: string }[] };
    const uuidsBefore = rulesOnWire().rules.map((r) => r.uuid);

    const added = await client().appendFirewallRules(CLUSTER, [
      { type: 'ip_addr', value: '203.0.113.9', description: 'pgcutover: proxy' },
      { type: 'ip_addr', value: '198.51.100.0/24', description: 'already there' },
    ]);
    expect(added).toEqual({ added: ['203.0.113.9'] });
    const after = await client().listFirewallRules(CLUSTER);
    expect(after).toEqual([...before, { type: 'ip_addr', value: '203.0.113.9' }]);
    expect(rulesOnWire().rules.slice(0, uuidsBefore.length).map((r) => r.uuid)).toEqual(uuidsBefore);

    const puts = () => sim.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/firewall')).length;
    const putsBefore = puts();
    expect(await client().appendFirewallRules(CLUSTER, [{ type: 'ip_addr', value: '203.0.113.9', description: 'pgcutover: proxy' }])).toEqual({ added: [] });
    expect(puts()).toBe(putsBefore);

    // The PUT body is what DigitalOcean's spec asks for, and the answer what it declares.
    const put = spec.operation('PUT', '/v2/databases/{database_cluster_uuid}/firewall');
    const sent = sim.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/firewall'));
    expect(sent).toHaveLength(1);
    for (const request of sent) {
      expect(put.requestBody?.(request.body), JSON.stringify(put.requestBody?.errors)).toBe(true);
      expect(request.status).toBe(204);
      expect(request.responseText).toBe('');
      expect((request.body as { rules: unknown[] }).rules).toHaveLength(4);
    }
  });

  it('creates an application user that logs in to the target with full verification', async () => {
    const user = await client().createUser(CLUSTER, 'orders_app');
    expect(user.name).toBe('orders_app');
    expect((await client().getUser(CLUSTER, 'orders_app'))?.password.reveal()).toBe(user.password.reveal());
    expect(await client().getUser(CLUSTER, 'nobody')).toBeUndefined();
    const resolved = await resolveTarget(client(), { clusterUuid: CLUSTER, database: 'orders' });
    expect(await login({ ...resolved, user: user.name, password: user.password })).toBe(true);
  });

  it('fails clearly when DigitalOcean withholds passwords (no database:view_credentials)', async () => {
    const hidden = await startDoSimulator({
      token: new Secret(TOKEN),
      logger: log,
      credentialsHidden: true,
      clusters: { [HIDDEN]: { connection: { host: target.host, port: target.port, user: target.user, password: new Secret(target.password), database: 'defaultdb' } } },
    });
    try {
      const api = new DigitalOceanClient({ token: new Secret(TOKEN), baseUrl: hidden.url, logger: log });
      await expect(resolveTarget(api, { clusterUuid: HIDDEN, database: 'orders' })).rejects.toMatchObject({
        code: ErrorCode.DoForbidden,
        message: expect.stringMatching(/database:view_credentials/),
      });
      await expect(api.createUser(HIDDEN, 'orders_app2')).rejects.toMatchObject({ code: ErrorCode.DoForbidden, message: expect.stringMatching(/database:view_credentials/) });
      // A password set in the profile needs no scope.
      const resolved = await resolveTarget(api, { clusterUuid: HIDDEN, database: 'orders', target: { password: new Secret(target.password) } });
      expect(resolved.password.reveal()).toBe(target.password);
    } finally {
      await hidden.stop();
    }
  });

  it('sends `pgcutover/<version>` as User-Agent on every request', () => {
    expect(userAgents.length).toBeGreaterThan(5);
    expect(new Set(userAgents)).toEqual(new Set([`pgcutover/${VERSION}`]));
  });

  it('every answer of the simulator matches the spec', () => {
    for (const request of sim.requests) {
      const operation = spec.operation(request.method, specPath(request.path));
      const validate = operation.response(request.status);
      if (validate === null) expect(request.responseText).toBe('');
      else expect(validate(JSON.parse(request.responseText)), `${operation.operationId} ${request.status}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
  });

});
