/**
 * The HTTP admin driver against a real local node:http server that implements the documented contract.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodedError, ErrorCode } from '../../src/errors.js';
import { HMAC_SIGNATURE_HEADER, HMAC_TIMESTAMP_HEADER, HttpProxyAdmin, signRequest } from '../../src/adapters/proxy/http-admin.js';
import { Secret } from '../../src/secret.js';
import { memoryLogger } from './helpers.js';

const TOKEN = 'router-token-0123456789';
const HMAC_SECRET = 'router-hmac-secret-abcdef';

interface Seen {
  method: string;
  path: string;
  body: unknown;
  authOk: boolean;
}

describe('HTTP admin driver (real local HTTP server)', () => {
  let server: Server;
  let baseUrl = '';
  const seen: Seen[] = [];
  // The router's state, and knobs for misbehaviour.
  let state = { pointsTo: { host: 'old-db', port: 5432, database: 'orders' }, frozen: false };
  let mode: 'ok' | 'slow' | 'garbage' | 'lies' | 'refuse' | 'wrong-shape' = 'ok';
  const { logger, output } = memoryLogger();

  const authOk = (req: IncomingMessage, body: string) => {
    if (req.headers.authorization) return req.headers.authorization === `Bearer ${TOKEN}`;
    const ts = String(req.headers[HMAC_TIMESTAMP_HEADER] ?? '');
    if (Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
    return req.headers[HMAC_SIGNATURE_HEADER] === signRequest(HMAC_SECRET, ts, req.method ?? '', new URL(req.url ?? '', 'http://x').pathname, body);
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const path = new URL(req.url ?? '', 'http://x').pathname;
        const ok = authOk(req, body);
        seen.push({ method: req.method ?? '', path, body: body ? JSON.parse(body) : undefined, authOk: ok });
        const send = (status: number, payload: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
        };
        if (!ok) return send(401, { error: 'bad credentials' });
        if (mode === 'slow') return void setTimeout(() => send(200, {}), 1000);
        if (mode === 'garbage') return send(200, '<html>proxy error</html>');
        if (mode === 'refuse') return send(409, { error: 'a transaction is still open' });
        if (mode === 'wrong-shape') return send(200, { frozen: 'yes' });
        if (req.method === 'GET' && path === '/admin/inspect') return send(200, { ...state, healthy: true, detail: 'toy router' });
        if (req.method === 'POST' && path === '/admin/freeze') {
          state.frozen = true;
          return send(200, { frozen: true });
        }
        if (req.method === 'POST' && path === '/admin/resume') {
          state.frozen = false;
          return send(200, { frozen: false });
        }
        if (req.method === 'POST' && path === '/admin/repoint') {
          const { host, port, database } = JSON.parse(body) as { host: string; port: number; database: string };
          if (mode === 'lies') return send(200, { pointsTo: { host, port, database } }); // but does not switch
          state.pointsTo = { host, port, database };
          return send(200, { pointsTo: state.pointsTo });
        }
        return send(404, { error: 'no such action' });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    expect(output()).not.toContain(TOKEN);
    expect(output()).not.toContain(HMAC_SECRET);
  });

  const bearer = (timeoutMs = 2000) =>
    new HttpProxyAdmin({ baseUrl, auth: { kind: 'bearer', token: new Secret(TOKEN) }, timeoutMs, logger });
  const hmac = (secret = HMAC_SECRET) =>
    new HttpProxyAdmin({ baseUrl: `${baseUrl}/`, auth: { kind: 'hmac', secret: new Secret(secret) }, timeoutMs: 2000, logger });
  const reset = () => {
    mode = 'ok';
    state = { pointsTo: { host: 'old-db', port: 5432, database: 'orders' }, frozen: false };
    seen.length = 0;
  };

  it('inspect → freeze → repoint (verified) → resume with bearer auth, JSON in and out, no password sent', async () => {
    reset();
    const admin = bearer();
    expect(admin.canPause).toBe(true);
    expect(await admin.inspect()).toEqual({ pointsTo: state.pointsTo, frozen: false, healthy: true, detail: 'toy router' });
    await admin.freeze();
    await admin.freeze();
    expect(state.frozen).toBe(true);
    const target = { host: 'db-do.example.com', port: 25060, database: 'orders', user: 'doadmin', password: new Secret('do-pw'), tls: true };
    await admin.repoint(target);
    expect(state.pointsTo).toEqual({ host: 'db-do.example.com', port: 25060, database: 'orders' });
    await admin.resume();
    expect(state.frozen).toBe(false);
    const repoint = seen.find((s) => s.path === '/admin/repoint');
    expect(repoint?.body).toEqual({ host: 'db-do.example.com', port: 25060, database: 'orders', user: 'doadmin', tls: true });
    expect(JSON.stringify(seen)).not.toContain('do-pw');
    expect(seen.every((s) => s.authOk)).toBe(true);
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual([
      'GET /admin/inspect',
      'POST /admin/freeze',
      'POST /admin/freeze',
      'POST /admin/repoint',
      'GET /admin/inspect',
      'POST /admin/resume',
    ]);
  });

  it('signs requests with HMAC; a wrong secret is refused with the endpoint’s message', async () => {
    reset();
    await hmac().freeze();
    expect(seen[0]?.authOk).toBe(true);
    const error = await hmac('wrong-secret').inspect().catch((e: unknown) => e);
    expect((error as CodedError).code).toBe(ErrorCode.ProxyAdminFailed);
    expect((error as CodedError).message).toMatch(/status 401\): bad credentials/);
  });

  it('a repoint the endpoint does not really perform fails verification', async () => {
    reset();
    mode = 'lies';
    const error = await bearer().repoint({ host: 'new-db', port: 25060, database: 'orders' }).catch((e: unknown) => e);
    expect((error as CodedError).code).toBe(ErrorCode.ProxyVerifyFailed);
    expect((error as CodedError).message).toContain('inspect says it points to old-db:5432/orders');
  });

  it('timeouts, non-JSON, wrong shapes and refusals become ProxyAdminFailed with a readable message', async () => {
    reset();
    mode = 'slow';
    // The timeout's own message is the outcome: the call was cut off, not answered late.
    await expect(bearer(200).freeze()).rejects.toThrow(/did not answer POST \/admin\/freeze within 200 ms/);
    mode = 'garbage';
    await expect(bearer().inspect()).rejects.toThrow(/non-JSON/);
    mode = 'refuse';
    await expect(bearer().freeze()).rejects.toThrow(/status 409\): a transaction is still open/);
    mode = 'wrong-shape';
    await expect(bearer().freeze()).rejects.toThrow(/unexpected body/);
  });
});
