/**
 * The native PCP client and the Pgpool driver against a real Pgpool-II 4.3 (raw mode) in front of two
 * real clusters.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodedError, ErrorCode } from '../../src/errors.js';
import { PcpClient, PcpError } from '../../src/adapters/proxy/pcp-client.js';
import { PgpoolAdmin } from '../../src/adapters/proxy/pgpool.js';
import { Secret } from '../../src/secret.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';
import { startPgpool, type Pgpool } from '../support/pgpool.js';
import { startProxyWriteLoad, WRITES_TABLE } from '../support/proxy-write-load.js';
import { memoryLogger } from './helpers.js';

describe('Pgpool-II driver and PCP client (real Pgpool-II 4.3, two clusters)', () => {
  let source: Cluster;
  let target: Cluster;
  let pgpool: Pgpool;
  const { logger, output } = memoryLogger();
  const pcp = () => ({ host: pgpool.host, port: pgpool.pcpPort, user: pgpool.pcpUser, password: new Secret(pgpool.pcpPassword) });
  const driver = (withConfigFile = true) =>
    new PgpoolAdmin({
      pcp: pcp(),
      sourceNode: 0,
      targetNode: 1,
      database: 'orders',
      logger,
      ...(withConfigFile ? { configFile: pgpool.configFile } : {}),
    });
  const serverPort = async () => {
    const client = new pg.Client({ connectionString: pgpool.connectionString('orders') });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]?.port;
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    [source, target] = await Promise.all([
      startCluster({ databases: ['orders'] }),
      startCluster({ databases: ['orders'] }),
    ]);
    await Promise.all([source.query(WRITES_TABLE, [], 'orders'), target.query(WRITES_TABLE, [], 'orders')]);
    pgpool = await startPgpool({ backends: [source, target] });
  });
  afterAll(async () => {
    await pgpool?.stop();
    await Promise.all([source?.stop(), target?.stop()]);
    expect(output()).not.toContain(pgpool.pcpPassword);
  });

  it('PCP: authenticates natively, reads node info and config, and surfaces ERRORs the binaries hide', async () => {
    const client = await PcpClient.connect(pcp());
    try {
      expect(await client.nodeCount()).toBe(2);
      const nodes = await client.allNodeInfo();
      expect(nodes.map((n) => [n.id, n.port, n.up])).toEqual([
        [0, source.port, true],
        [1, target.port, true],
      ]);
      expect((await client.nodeInfo(1)).port).toBe(target.port);
      expect((await client.poolStatus()).get('backend_flag0')).toMatch(/DISALLOW_TO_FAILOVER/);
      // pcp_detach_node exits 0 here; the native client raises the ERROR and the connection stays usable.
      const refused = await client.detachNode(0).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(PcpError);
      expect((refused as PcpError).severity).toBe('ERROR');
      expect((await client.nodeInfo(0)).up).toBe(true);
      await expect(client.nodeInfo(7)).rejects.toBeInstanceOf(PcpError);
    } finally {
      await client.close();
    }
    const wrong = await PcpClient.connect({ ...pcp(), password: new Secret('nope') }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(PcpError);
    expect((wrong as PcpError).code).toBe(ErrorCode.ProxyAdminFailed);
  });

  it('refuses to pause and says clients will see errors', async () => {
    const admin = driver();
    expect(admin.canPause).toBe(false);
    expect(admin.clientImpact).toBe('connections-dropped');
    expect(admin.limitations.join(' ')).toMatch(/cannot pause/);
    const error = await admin.freeze().catch((e: unknown) => e);
    expect((error as CodedError).code).toBe(ErrorCode.ProxyUnsupported);
  });

  it('switch: new connections go to node 1 after repoint, and back to node 0 on rollback', async () => {
    const admin = driver();
    expect((await admin.inspect()).pointsTo).toEqual({ host: source.host, port: source.port, database: 'orders' });
    expect(await serverPort()).toBe(source.port);
    const load = startProxyWriteLoad({ connectionString: pgpool.connectionString('orders'), workers: 2, maxDurationMs: 20_000 });
    try {
      await load.waitForWrites(20);
      const switchedAt = Date.now();
      await admin.repoint({ host: target.host, port: target.port, database: 'orders', tls: false });
      const switchMs = Date.now() - switchedAt;
      expect(readFileSync(pgpool.configFile, 'utf8')).toMatch(/^backend_flag0 = 'ALLOW_TO_FAILOVER'$/m);
      const status = await admin.inspect();
      expect(status.pointsTo).toEqual({ host: target.host, port: target.port, database: 'orders' });
      expect(status.detail).toMatch(/main node 1/);
      expect(await serverPort()).toBe(target.port);
      await load.waitForWrites(20, 15_000);
      const afterSwitch = load.acked.filter((w) => w.sentAt > switchedAt + switchMs);
      expect(afterSwitch.length).toBeGreaterThan(0);
      expect(afterSwitch.every((w) => w.port === target.port)).toBe(true);

      const rollbackAt = Date.now();
      await admin.repoint({ host: source.host, port: source.port, database: 'orders' });
      const rollbackMs = Date.now() - rollbackAt;
      expect(await serverPort()).toBe(source.port);
      expect((await admin.inspect()).pointsTo?.port).toBe(source.port);
      expect(readFileSync(pgpool.configFile, 'utf8')).toMatch(/^backend_flag0 = 'DISALLOW_TO_FAILOVER'$/m);
      await load.waitForWrites(20, 15_000);
      const afterRollback = load.acked.filter((w) => w.sentAt > rollbackAt + rollbackMs);
      expect(afterRollback.every((w) => w.port === source.port)).toBe(true);
      console.info(
        `pgpool switch ${switchMs} ms, rollback ${rollbackMs} ms; ${load.acked.length} writes, ${load.errors.length} client errors (sessions dropped at each switch)`,
      );
    } finally {
      await load.stop();
    }
  });

  it('without pgpool.conf it refuses to detach a DISALLOW_TO_FAILOVER source, and says what to do', async () => {
    const error = await driver(false)
      .repoint({ host: target.host, port: target.port, database: 'orders' })
      .catch((e: unknown) => e);
    expect((error as CodedError).code).toBe(ErrorCode.ProxyAdminFailed);
    expect((error as CodedError).message).toMatch(/backend_flag0 must be ALLOW_TO_FAILOVER/);
    expect(await serverPort()).toBe(source.port);
  });

  it('a target that is not a configured backend node is unsupported (needs a pgpool restart)', async () => {
    const error = await driver()
      .repoint({ host: '127.0.0.1', port: 1, database: 'orders' })
      .catch((e: unknown) => e);
    expect((error as CodedError).code).toBe(ErrorCode.ProxyUnsupported);
    expect(await serverPort()).toBe(source.port);
  });
});
