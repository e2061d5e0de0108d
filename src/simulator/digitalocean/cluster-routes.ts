/**
 * The simulator's cluster set-up calls, with the official spec's shapes, on the real target cluster:
 * trusted sources (GET, and PUT replacing the whole list as DO does), the CA certificate, the databases
 * and new users (a real LOGIN role with a generated password). Without `database:view_credentials`
 * (`credentialsHidden`) DO leaves passwords out of its answers: so does the simulator.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import type { FirewallRule } from '../../domain/ports/digitalocean.js';
import { withClient, type PgEndpoint } from './replication.js';

/** A trusted source as the simulator keeps it: DO's wire shape, any type string. */
export interface StoredRule {
  uuid: string;
  type: FirewallRule['type'] | (string & {});
  value: string;
  description?: string;
  created_at: string;
}

export interface ClusterState {
  connection: PgEndpoint;
  rules: StoredRule[];
  /** PEM of the CA that signed the target's server certificate. */
  caPem?: string;
  /** Users created through the API, with their passwords (DO shows them again on GET). */
  users: Map<string, string>;
}

export type Reply = { status: number; body?: unknown } | { status: number; error: string };

const putFirewallSchema = z.object({
  rules: z.array(
    z.object({ uuid: z.string().optional(), type: z.enum(['ip_addr', 'droplet', 'k8s', 'tag', 'app']), value: z.string().min(1), description: z.string().optional() }),
  ),
});
const addUserSchema = z.object({ name: z.string().regex(/^[a-z_][a-z0-9_-]{0,62}$/) });

let ruleSeq = 0;
export const newRuleUuid = () => `00000000-0000-4000-8000-${String((ruleSeq += 1)).padStart(12, '0')}`;

/** Answers GET/PUT firewall, GET ca, GET dbs, POST users and GET users/{name}; `undefined` for any other call. */
export async function clusterRoute(
  state: ClusterState,
  uuid: string,
  method: string,
  sub: string,
  body: unknown,
  credentialsHidden: boolean,
): Promise<Reply | undefined> {
  if (sub === '/firewall' && method === 'GET') {
    return { status: 200, body: { rules: state.rules.map((r) => ({ ...r, cluster_uuid: uuid })) } };
  }
  if (sub === '/firewall' && method === 'PUT') {
    const parsed = putFirewallSchema.safeParse(body);
    if (!parsed.success) return { status: 422, error: 'request payload validation failed' };
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    state.rules = parsed.data.rules.map((r) => {
      const kept = state.rules.find((old) => old.uuid === r.uuid);
      return { uuid: kept?.uuid ?? newRuleUuid(), type: r.type, value: r.value, created_at: kept?.created_at ?? now, ...(r.description ? { description: r.description } : {}) };
    });
    return { status: 204 };
  }
  if (sub === '/ca' && method === 'GET') {
    if (!state.caPem) return { status: 404, error: 'this simulated cluster has no CA certificate' };
    return { status: 200, body: { ca: { certificate: Buffer.from(state.caPem).toString('base64') } } };
  }
  if (sub === '/dbs' && method === 'GET') {
    const names = await withClient({ ...state.connection, database: 'postgres' }, async (c) =>
      (await c.query<{ datname: string }>("SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1")).rows,
    );
    return { status: 200, body: { dbs: names.map((r) => ({ name: r.datname })) } };
  }
  if (sub === '/users' && method === 'POST') {
    const parsed = addUserSchema.safeParse(body);
    if (!parsed.success) return { status: 422, error: 'request payload validation failed' };
    const password = randomBytes(12).toString('base64url');
    const { name } = parsed.data;
    const created = await withClient({ ...state.connection, database: 'postgres' }, async (c) => {
      if ((await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rows.length > 0) return false;
      await c.query(`CREATE ROLE ${pg.escapeIdentifier(name)} LOGIN PASSWORD ${pg.escapeLiteral(password)}`);
      return true;
    });
    if (!created) return { status: 422, error: `a user named ${name} already exists` };
    state.users.set(name, password);
    return { status: 201, body: { user: { name, role: 'normal', ...(credentialsHidden ? {} : { password }) } } };
  }
  const username = /^\/users\/([^/]+)$/.exec(sub)?.[1];
  if (username !== undefined && method === 'GET') {
    const password = state.users.get(decodeURIComponent(username));
    if (password === undefined) return { status: 404, error: 'The resource you requested could not be found.' };
    return { status: 200, body: { user: { name: decodeURIComponent(username), role: 'normal', ...(credentialsHidden ? {} : { password }) } } };
  }
  return undefined;
}
