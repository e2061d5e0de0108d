/**
 * A small typed fetch client for the DigitalOcean calls pgcutover makes (see README for why not
 * `@digitalocean/dots`): the online migration, the cluster, its trusted sources, CA, databases and
 * users. Timeouts, the budget, retries and errors live in the transport (`do-transport.ts`); here each
 * call's path and the zod schema of its answer.
 */
import type { z } from 'zod';
import { DoApiError, ErrorCode } from '../../errors.js';
import { Secret } from '../../secret.js';
import type {
  CreatedUser,
  DatabaseCluster,
  DigitalOceanApi,
  FirewallRule,
  NewFirewallRule,
  OnlineMigration,
  StartMigrationRequest,
} from '../../domain/ports/digitalocean.js';
import { DoTransport, type DoTransportOptions } from './do-transport.js';
import {
  caResponseSchema,
  clusterResponseSchema,
  databasesResponseSchema,
  firewallRulesRawSchema,
  firewallRulesResponseSchema,
  onlineMigrationSchema,
  userResponseSchema,
  type StartMigrationBody,
} from './schemas.js';

export const DEFAULT_DO_API_URL = 'https://api.digitalocean.com';

/** Whether DIGITALOCEAN_API_URL is DigitalOcean's own API (not a simulator or a proxy in its place). */
export const isDigitalOceansApi = (url: string | undefined) => new URL(url ?? DEFAULT_DO_API_URL).hostname.endsWith('.digitalocean.com');

export type DigitalOceanClientOptions = Omit<DoTransportOptions, 'baseUrl'> & {
  /** DIGITALOCEAN_API_URL; defaults to https://api.digitalocean.com. */
  baseUrl?: string;
};

export class DigitalOceanClient implements DigitalOceanApi {
  readonly #http: DoTransport;

  constructor(options: DigitalOceanClientOptions) {
    this.#http = new DoTransport({ ...options, baseUrl: (options.baseUrl ?? DEFAULT_DO_API_URL).replace(/\/+$/, '') });
  }

  async startOnlineMigration(clusterUuid: string, request: StartMigrationRequest): Promise<OnlineMigration> {
    const body: StartMigrationBody = {
      source: {
        host: request.source.host,
        port: request.source.port,
        dbname: request.source.dbname,
        username: request.source.username,
        password: request.source.password.reveal(),
      },
      disable_ssl: request.disableSsl,
      ignore_dbs: request.ignoreDbs,
    };
    const attempt = await this.#http.call('PUT', `/v2/databases/${enc(clusterUuid)}/online-migration`, body);
    return toMigration(this.#http.parse(attempt, onlineMigrationSchema, 'start online migration'));
  }

  async getOnlineMigration(clusterUuid: string): Promise<OnlineMigration | undefined> {
    const attempt = await this.#http.call('GET', `/v2/databases/${enc(clusterUuid)}/online-migration`, undefined, [404]);
    if (attempt.status === 404) return undefined;
    return toMigration(this.#http.parse(attempt, onlineMigrationSchema, 'online migration status'));
  }

  async stopOnlineMigration(clusterUuid: string, migrationId: string): Promise<void> {
    await this.#http.call('DELETE', `/v2/databases/${enc(clusterUuid)}/online-migration/${enc(migrationId)}`);
  }

  async getCluster(clusterUuid: string): Promise<DatabaseCluster> {
    const attempt = await this.#http.call('GET', `/v2/databases/${enc(clusterUuid)}`);
    const { database } = this.#http.parse(attempt, clusterResponseSchema, 'database cluster');
    return {
      id: database.id,
      name: database.name,
      engine: database.engine,
      version: database.version,
      status: database.status,
      connection: {
        host: database.connection.host,
        port: database.connection.port,
        user: database.connection.user,
        password: new Secret(database.connection.password),
        database: database.connection.database,
        ssl: database.connection.ssl,
      },
      ...(database.private_network_uuid ? { privateNetworkUuid: database.private_network_uuid } : {}),
    };
  }

  async listFirewallRules(clusterUuid: string): Promise<FirewallRule[]> {
    const attempt = await this.#http.call('GET', `/v2/databases/${enc(clusterUuid)}/firewall`);
    const { rules } = this.#http.parse(attempt, firewallRulesResponseSchema, 'firewall rules');
    return (rules ?? []).map((r) => ({ type: r.type, value: r.value }));
  }

  async appendFirewallRules(clusterUuid: string, additions: readonly NewFirewallRule[]): Promise<{ added: string[] }> {
    const path = `/v2/databases/${enc(clusterUuid)}/firewall`;
    const { rules } = this.#http.parse(await this.#http.call('GET', path), firewallRulesRawSchema, 'firewall rules');
    const existing = rules ?? [];
    const added = additions.filter((a) => !existing.some((r) => r.type === a.type && r.value === a.value));
    if (added.length === 0) return { added: [] };
    await this.#http.call('PUT', path, { rules: [...existing, ...added.map((a) => ({ type: a.type, value: a.value, description: a.description }))] });
    return { added: added.map((a) => a.value) };
  }

  async getCaCertificate(clusterUuid: string): Promise<string> {
    const attempt = await this.#http.call('GET', `/v2/databases/${enc(clusterUuid)}/ca`);
    const { ca } = this.#http.parse(attempt, caResponseSchema, 'CA certificate');
    const pem = Buffer.from(ca.certificate, 'base64').toString('utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
      throw new DoApiError(ErrorCode.DoBadResponse, 'DigitalOcean sent a CA certificate that is not a base64-encoded PEM certificate.', { status: attempt.status });
    }
    return pem;
  }

  async listDatabases(clusterUuid: string): Promise<string[]> {
    const attempt = await this.#http.call('GET', `/v2/databases/${enc(clusterUuid)}/dbs`);
    return (this.#http.parse(attempt, databasesResponseSchema, 'database list').dbs ?? []).map((d) => d.name);
  }

  async createUser(clusterUuid: string, name: string): Promise<CreatedUser> {
    const attempt = await this.#http.call('POST', `/v2/databases/${enc(clusterUuid)}/users`, { name });
    const { user } = this.#http.parse(attempt, userResponseSchema, 'new user');
    if (user.password === '') throw missingCredentials(`the new user "${user.name}"`);
    return { name: user.name, password: new Secret(user.password) };
  }

  async getUser(clusterUuid: string, name: string): Promise<CreatedUser | undefined> {
    const attempt = await this.#http.call('GET', `/v2/databases/${enc(clusterUuid)}/users/${enc(name)}`, undefined, [404]);
    if (attempt.status === 404) return undefined;
    const { user } = this.#http.parse(attempt, userResponseSchema, 'user');
    if (user.password === '') throw missingCredentials(`the user "${user.name}"`);
    return { name: user.name, password: new Secret(user.password) };
  }
}

function toMigration(body: z.infer<typeof onlineMigrationSchema>): OnlineMigration {
  return { id: body.id, status: body.status, createdAt: body.created_at };
}

const enc = encodeURIComponent;

/** DO leaves passwords out unless the token has `database:view_credentials`: said plainly, never an empty password. */
export function missingCredentials(whose: string): DoApiError {
  return new DoApiError(
    ErrorCode.DoForbidden,
    `DigitalOcean did not reveal the password of ${whose}: the token lacks the database:view_credentials scope. Add that scope to DIGITALOCEAN_TOKEN (or set digitalocean.target.password in the profile).`,
    {},
  );
}
