/**
 * The DigitalOcean calls pgcutover makes, as a small port. The HTTP client in this folder implements
 * it against api.digitalocean.com (or DIGITALOCEAN_API_URL); the simulator serves the same contract
 * on local clusters.
 */
import type { Secret } from '../../secret.js';

/** Exactly the values DO's OpenAPI spec lists for `online_migration.status`. */
export const ONLINE_MIGRATION_STATUSES = ['running', 'syncing', 'canceled', 'error', 'done'] as const;
export type OnlineMigrationStatus = (typeof ONLINE_MIGRATION_STATUSES)[number];

export interface OnlineMigration {
  id: string;
  /** `unknown`: a status DigitalOcean added after the spec we follow (never a reason to fail a call). */
  status: OnlineMigrationStatus | 'unknown';
  createdAt: string;
}

/** What DigitalOcean connects to (the source), as sent in the PUT body. */
export interface MigrationSource {
  host: string;
  port: number;
  dbname: string;
  username: string;
  password: Secret;
}

export interface StartMigrationRequest {
  source: MigrationSource;
  disableSsl: boolean;
  ignoreDbs: string[];
}

/** The target cluster's own connection details, as DO reports them. */
export interface ClusterConnection {
  host: string;
  port: number;
  user: string;
  password: Secret;
  database: string;
  ssl: boolean;
}

export interface DatabaseCluster {
  id: string;
  name: string;
  engine: string;
  version: string;
  /** e.g. `online`, `creating`, `migrating`, `resizing`, `forking`. */
  status: string;
  connection: ClusterConnection;
  /** The VPC the cluster is in, when DO reports one: a private source is reachable only from there. */
  privateNetworkUuid?: string;
}

export const FIREWALL_RULE_TYPES = ['ip_addr', 'droplet', 'k8s', 'tag', 'app'] as const;

export interface FirewallRule {
  /** `unknown`: a rule type DigitalOcean added after the spec we follow. */
  type: (typeof FIREWALL_RULE_TYPES)[number] | 'unknown';
  value: string;
}

/** A trusted source the bot adds (always an IPv4 address: DO refuses IPv6 sources). */
export interface NewFirewallRule {
  type: 'ip_addr';
  value: string;
  description: string;
}

/** A user DigitalOcean created on the cluster, with its generated password. */
export interface CreatedUser {
  name: string;
  password: Secret;
}

export interface DigitalOceanApi {
  startOnlineMigration(clusterUuid: string, request: StartMigrationRequest): Promise<OnlineMigration>;
  /** The most recent migration, or `undefined` when the cluster never had one (DO answers 404). */
  getOnlineMigration(clusterUuid: string): Promise<OnlineMigration | undefined>;
  stopOnlineMigration(clusterUuid: string, migrationId: string): Promise<void>;
  getCluster(clusterUuid: string): Promise<DatabaseCluster>;
  listFirewallRules(clusterUuid: string): Promise<FirewallRule[]>;
  /**
   * Reads the rules, appends those not there yet, and PUTs the whole list (DO's PUT replaces the set):
   * every existing rule is sent back as read, whatever its type. Resolves to the values it added.
   */
  appendFirewallRules(clusterUuid: string, rules: readonly NewFirewallRule[]): Promise<{ added: string[] }>;
  /** The cluster's CA certificate, PEM. */
  getCaCertificate(clusterUuid: string): Promise<string>;
  /** The databases on the cluster (GET …/dbs). */
  listDatabases(clusterUuid: string): Promise<string[]>;
  /** Creates a user; fails when DO withholds the password (the token lacks `database:view_credentials`). */
  createUser(clusterUuid: string, name: string): Promise<CreatedUser>;
  /** A user with its password, or `undefined` when there is none of that name; fails like createUser without the scope. */
  getUser(clusterUuid: string, name: string): Promise<CreatedUser | undefined>;
}
