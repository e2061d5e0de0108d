/**
 * Factories for the composition root: the configured proxy driver and the write freeze the cutover uses.
 *
 *   const freeze = createWriteFreeze({ freeze: profile.freeze, proxy, source: profile.source, logger });
 * or, in one go (pgpool's freeze() then delegates to the in-database freeze):
 *   const { proxy, freeze } = createProxyAndFreeze(profile, { logger });
 */
import type { FreezeConfig, PostgresConnection, ProxyConfig } from '../../config/profiles.js';
import { CodedError, ErrorCode, assertNever } from '../../errors.js';
import type { Logger } from '../../log.js';
import { HttpProxyAdmin } from './http-admin.js';
import { InDatabaseFreeze, type InDatabaseFreezeRecord } from './in-database-freeze.js';
import { PgBouncerAdmin } from './pgbouncer.js';
import { PgBouncerEntries, type PgBouncerEntriesOptions } from './pgbouncer-entries.js';
import { PgpoolAdmin } from './pgpool.js';
import type { WriteFreeze } from '../../domain/ports/writes.js';
import type { ProxyAdmin } from './proxy-admin.js';

export type { Endpoint, Router, WriteFreeze } from '../../domain/ports/writes.js';
export type { ProxyAdmin, ProxyStatus } from './proxy-admin.js';
export { HttpProxyAdmin } from './http-admin.js';
export { InDatabaseFreeze, type InDatabaseFreezeRecord } from './in-database-freeze.js';
export { PgBouncerAdmin, type PreflightCheck, type DrainState } from './pgbouncer.js';
export { PgBouncerEntries } from './pgbouncer-entries.js';
export { PgpoolAdmin } from './pgpool.js';
export { PcpClient } from './pcp-client.js';

export interface ProxyDeps {
  logger: Logger;
  /** The cut-over database's name, for status lines of proxies that route every database (pgpool). */
  database?: string;
  /** Pgpool only: the in-database freeze its freeze()/resume() delegate to. */
  freeze?: WriteFreeze;
  /** PgBouncer only: cover every entry serving a migrated database (PgBouncerEntries), found this way. */
  pgbouncerEntries?: Pick<PgBouncerEntriesOptions, 'selection' | 'profileDatabases'>;
}

/** The driver for the configured proxy; null for `kind: none` (connection-parameters strategy). */
export function createProxyAdmin(config: ProxyConfig, deps: ProxyDeps): ProxyAdmin | null {
  switch (config.kind) {
    case 'pgbouncer': {
      const options = {
        admin: config.admin,
        database: config.database,
        databasesFile: config.databasesFile,
        pauseTimeoutSeconds: config.pauseTimeoutSeconds,
        logger: deps.logger,
      };
      return deps.pgbouncerEntries ? new PgBouncerEntries({ ...options, ...deps.pgbouncerEntries }) : new PgBouncerAdmin(options);
    }
    case 'pgpool':
      return new PgpoolAdmin({
        pcp: config.pcp,
        sourceNode: config.sourceNode,
        targetNode: config.targetNode,
        ...(config.configFile ? { configFile: config.configFile } : {}),
        ...(deps.freeze ? { freeze: deps.freeze } : {}),
        ...(deps.database ? { database: deps.database } : {}),
        logger: deps.logger,
      });
    case 'http':
      return new HttpProxyAdmin({
        baseUrl: config.baseUrl,
        auth: config.auth,
        timeoutMs: config.timeoutMs,
        clientImpact: config.clientImpact,
        logger: deps.logger,
      });
    case 'none':
      return null;
    default:
      return assertNever(config, 'proxy kind');
  }
}

export interface WriteFreezeOptions {
  freeze: FreezeConfig;
  /** The proxy driver, used by `proxy-pause`. */
  proxy: ProxyAdmin | null;
  /** The bot's admin connection to the source (in-database methods). */
  source: PostgresConnection;
  /** A freeze record persisted before a crash (in-database methods), so resume() restores exactly. */
  record?: InDatabaseFreezeRecord;
  /** Called with the in-database freeze record before anything changes: persist it. */
  onRecord?: (record: InDatabaseFreezeRecord) => void | Promise<void>;
  /** read-only-database: the session's other migrated databases, whose writers are locked out too. */
  databases?: readonly string[];
  logger: Logger;
}

/** The write freeze for the configured method: the proxy's PAUSE, or read-only roles/database. */
export function createWriteFreeze(options: WriteFreezeOptions): WriteFreeze {
  const { freeze } = options;
  if (freeze.method === 'proxy-pause') {
    if (!options.proxy?.canPause) {
      throw new CodedError(
        ErrorCode.ProxyUnsupported,
        `freeze.method proxy-pause needs a proxy that can pause (${options.proxy?.kind ?? 'none'} cannot); use read-only-roles or read-only-database`,
      );
    }
    return options.proxy;
  }
  return new InDatabaseFreeze({
    connection: options.source,
    method: freeze.method,
    roles: freeze.appRoles,
    ...(options.record ? { record: options.record } : {}),
    ...(options.onRecord ? { onRecord: options.onRecord } : {}),
    ...(options.databases ? { databases: options.databases } : {}),
    logger: options.logger,
  });
}

/** Both at once, wired so that pgpool's freeze() is the in-database freeze. */
export function createProxyAndFreeze(
  profile: { proxy: ProxyConfig; freeze: FreezeConfig; source: PostgresConnection },
  { pgbouncerEntries, ...deps }: Omit<WriteFreezeOptions, 'freeze' | 'proxy' | 'source'> & Pick<ProxyDeps, 'pgbouncerEntries'>,
): { proxy: ProxyAdmin | null; freeze: WriteFreeze } {
  const proxyDeps: ProxyDeps = { logger: deps.logger, database: profile.source.database, ...(pgbouncerEntries ? { pgbouncerEntries } : {}) };
  if (profile.freeze.method === 'proxy-pause') {
    const proxy = createProxyAdmin(profile.proxy, proxyDeps);
    return { proxy, freeze: createWriteFreeze({ ...deps, freeze: profile.freeze, proxy, source: profile.source }) };
  }
  const freeze = createWriteFreeze({ ...deps, freeze: profile.freeze, proxy: null, source: profile.source });
  const proxy = createProxyAdmin(profile.proxy, { ...proxyDeps, freeze });
  return { proxy, freeze };
}
