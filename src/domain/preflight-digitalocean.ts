/**
 * The DigitalOcean-aware part of the preflight, pure: what DO's engine left on the source (per migrated
 * database a slot `aiven_db_migrate_<db>_slot` and a publication `aiven_db_migrate_<db>_pub`, as
 * aiven-db-migrate names them), the WAL those slots hold back, the two-week limit of DO's migration,
 * the target cluster (engine, databases), whether the application's role can log in to the target, and
 * whether DO can reach the source at all. Lists are per database where DO works per database.
 */
import { addressKind } from './addresses.js';

export type DoCheckName =
  | 'do_replication'
  | 'slot_wal'
  | 'two_week_limit'
  | 'target_engine'
  | 'target_databases'
  | 'app_login'
  | 'app_user'
  | 'source_reachable_by_do';

export interface DoCheckItem {
  check: DoCheckName;
  status: 'pass' | 'warn' | 'fail';
  detail: string;
  fix: string | null;
}

/** DO ends an online migration after two weeks. */
export const MIGRATION_LIMIT_HOURS = 14 * 24;
/** The countdown warns at these hours left. */
export const LIMIT_WARNING_HOURS = [48, 12] as const;
/** Slot WAL held back above this is worth a warning (the source's disk fills). */
export const RETAINED_WAL_WARN_BYTES = 1024 ** 3;

/** The names DigitalOcean's engine gives a migrated database's replication on the source. */
export function doReplicationNames(database: string): { slot: string; publication: string } {
  return { slot: `aiven_db_migrate_${database}_slot`, publication: `aiven_db_migrate_${database}_pub` };
}

export interface SlotFacts {
  name: string;
  active: boolean;
  /** pg_replication_slots.wal_status: reserved, extended, unreserved or lost. */
  walStatus: string | null;
  /** WAL the slot holds back on the source (current LSN − restart_lsn), bytes. */
  retainedBytes: number | null;
}

export interface DoPreflightFacts {
  stage: 'before-migration' | 'before-freeze';
  /** Per database DO migrates: its slot (null: none) and whether its publication exists (null: not checked). */
  replication: { database: string; slot: SlotFacts | null; publication: boolean | null }[] | { error: string };
  /** The session's migration, when it has one: DO's `created_at` and status, and now. */
  migration?: { createdAt: string; status: string; now: string };
  /** The target's engine and databases. */
  target: { engine: string; databases: string[] | { error: string } } | { error: string };
  /** The profile's target database (digitalocean.database). */
  targetDatabase: string;
  /** A login to the target as the application's role; `unnamed`: the profile names no application credentials. */
  appLogin: { user: string; error: string | null } | 'unnamed';
  /** Connection-parameters: the user the bot hands out at the switch, if created (`/migrate setup app-user`); null: not known. */
  appUser?: { name: string; exists: boolean | null };
  /** The source host DigitalOcean connects to, its addresses, and whether the cluster is in a VPC. */
  sourceHost: { host: string; addresses: string[]; clusterInVpc: boolean; doIsRemote: boolean };
}

const item = (check: DoCheckName, status: DoCheckItem['status'], detail: string, fix: string | null = null): DoCheckItem => ({
  check,
  status,
  detail,
  fix: status === 'pass' ? null : fix,
});

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

export function evaluateDoPreflight(f: DoPreflightFacts): DoCheckItem[] {
  return [
    ...replicationChecks(f),
    ...(f.migration ? [limitCheck(f.migration)] : []),
    ...targetChecks(f),
    ...(f.stage === 'before-freeze' ? [appLoginCheck(f.appLogin)] : []),
    ...(f.appUser ? [appUserCheck(f.appUser)] : []),
    reachabilityCheck(f.sourceHost),
  ];
}

function replicationChecks(f: DoPreflightFacts): DoCheckItem[] {
  if ('error' in f.replication) {
    return [item('do_replication', 'warn', `DigitalOcean's slots and publications could not be read: ${f.replication.error}`, 'Check that the profile\'s source user may read pg_replication_slots and pg_publication.')];
  }
  const items: DoCheckItem[] = [];
  for (const db of f.replication) {
    const names = doReplicationNames(db.database);
    if (f.stage === 'before-migration') {
      items.push(
        db.slot
          ? item('do_replication', 'warn', `${db.database}: slot ${names.slot} already exists before the migration (${db.slot.active ? 'active' : 'inactive'}); it holds back WAL.`, `If no migration runs, drop it on the source: SELECT pg_drop_replication_slot('${names.slot}');`)
          : item('do_replication', 'pass', `${db.database}: no DigitalOcean slot yet (DigitalOcean creates ${names.slot}).`),
      );
      continue;
    }
    if (!db.slot) {
      items.push(item('do_replication', 'fail', `${db.database}: no slot ${names.slot} on the source: DigitalOcean is not replicating this database.`, 'Check the migration in the DigitalOcean control panel; unless it is running for every database, stop it and start again.'));
    } else if (db.publication === false) {
      items.push(item('do_replication', 'fail', `${db.database}: slot ${names.slot} exists but publication ${names.publication} does not.`, 'DigitalOcean\'s migration of this database is broken: stop the migration and start it again.'));
    } else {
      items.push(
        db.slot.active
          ? item('do_replication', 'pass', `${db.database}: slot ${names.slot} is active${db.publication ? `, publication ${names.publication} exists` : ''}.`)
          : item('do_replication', 'warn', `${db.database}: slot ${names.slot} is not active: DigitalOcean is not connected to it right now.`, 'Check the migration status in DigitalOcean; replication resumes when DO reconnects.'),
      );
    }
    if (db.slot) items.push(slotWalCheck(db.database, db.slot));
  }
  return items;
}

function slotWalCheck(database: string, slot: SlotFacts): DoCheckItem {
  const held = slot.retainedBytes === null ? 'unknown WAL' : `${mib(slot.retainedBytes)} of WAL`;
  const where = `${database}: slot ${slot.name} holds ${held}, wal_status ${slot.walStatus ?? 'unknown'}`;
  switch (slot.walStatus) {
    case 'lost':
      return item('slot_wal', 'fail', `${where}: the WAL it needs is gone, the replication of ${database} cannot continue.`, 'Stop the DigitalOcean migration and start it again; raise max_slot_wal_keep_size (or set it to -1) first.');
    case 'unreserved':
      return item('slot_wal', 'fail', `${where}: past max_slot_wal_keep_size, the next checkpoint can invalidate it.`, 'Raise max_slot_wal_keep_size on the source now (ALTER SYSTEM SET max_slot_wal_keep_size = …; SELECT pg_reload_conf();) and find why DigitalOcean falls behind.');
    case 'extended':
      return item('slot_wal', 'warn', `${where}: beyond max_wal_size, kept only because of the slot.`, 'Watch the source\'s disk; find why DigitalOcean falls behind (lag report).');
    default:
      return slot.retainedBytes !== null && slot.retainedBytes > RETAINED_WAL_WARN_BYTES
        ? item('slot_wal', 'warn', `${where}.`, 'Watch the source\'s disk: the slot keeps WAL until DigitalOcean confirms it.')
        : item('slot_wal', 'pass', `${where}.`);
  }
}

/** Hours left until DO stops the migration (negative once past). */
export function hoursLeft(createdAt: string, now: string): number {
  return MIGRATION_LIMIT_HOURS - (Date.parse(now) - Date.parse(createdAt)) / 3_600_000;
}

function limitCheck(m: NonNullable<DoPreflightFacts['migration']>): DoCheckItem {
  const left = hoursLeft(m.createdAt, m.now);
  if (Number.isNaN(left)) return item('two_week_limit', 'warn', `The migration's start time (${m.createdAt}) cannot be read.`, 'Check the migration\'s start in the DigitalOcean control panel: DO stops it after two weeks.');
  const ends = new Date(Date.parse(m.createdAt) + MIGRATION_LIMIT_HOURS * 3_600_000).toISOString();
  if (left <= 0 || m.status === 'done') {
    return item('two_week_limit', 'fail', `DigitalOcean's two-week limit was reached at ${ends}: the migration no longer replicates.`, 'Start a new migration (the target keeps what was copied), then cut over within two weeks.');
  }
  const h = Math.floor(left);
  const warnAt = [...LIMIT_WARNING_HOURS].sort((a, b) => a - b).find((w) => left <= w);
  return warnAt === undefined
    ? item('two_week_limit', 'pass', `${h} h left until DigitalOcean stops the migration (${ends}).`)
    : item('two_week_limit', 'warn', `Only ${h} h left (under ${warnAt} h) until DigitalOcean stops the migration at ${ends}.`, 'Cut over before then, or plan a new migration: after the limit the target no longer receives writes.');
}

function targetChecks(f: DoPreflightFacts): DoCheckItem[] {
  if ('error' in f.target) return [];
  const items = [
    f.target.engine === 'pg'
      ? item('target_engine', 'pass', 'The target cluster runs PostgreSQL (engine pg).')
      : item('target_engine', 'fail', `The target cluster's engine is "${f.target.engine}", not PostgreSQL (pg).`, 'Point digitalocean.clusterUuid at a DigitalOcean PostgreSQL cluster.'),
  ];
  const dbs = f.target.databases;
  if ('error' in dbs) {
    items.push(item('target_databases', 'warn', `The target's databases could not be listed: ${dbs.error}`, 'Check the token\'s database:read scope.'));
    return items;
  }
  const migrated = 'error' in f.replication ? [f.targetDatabase] : f.replication.map((r) => r.database);
  if (f.stage === 'before-migration') {
    items.push(
      migrated.includes(f.targetDatabase)
        ? item('target_databases', 'pass', `DigitalOcean copies ${f.targetDatabase} into the target database of the same name.`)
        : item('target_databases', 'fail', `digitalocean.database "${f.targetDatabase}" is not a database DigitalOcean migrates from the source (${migrated.join(', ') || 'none'}): it would never receive data.`, 'Set digitalocean.database to the source database\'s name (DigitalOcean keeps names), or remove it from digitalocean.ignoreDbs.'),
    );
    return items;
  }
  for (const database of new Set([f.targetDatabase, ...migrated])) {
    items.push(
      dbs.includes(database)
        ? item('target_databases', 'pass', `${database} exists on the target.`)
        : item('target_databases', 'fail', `${database} does not exist on the target cluster.`, database === f.targetDatabase ? 'Check digitalocean.database, and that DigitalOcean\'s migration runs (it creates the databases it copies).' : 'DigitalOcean has not created it: check the migration in the control panel.'),
    );
  }
  return items;
}

function appLoginCheck(login: DoPreflightFacts['appLogin']): DoCheckItem {
  if (login === 'unnamed') {
    return item('app_login', 'warn', 'The profile names no application role, so nobody checked that applications can log in to the target.', 'Add application.user and application.password (the credentials your applications use): DigitalOcean\'s migration creates roles on the target with placeholder passwords.');
  }
  return login.error === null
    ? item('app_login', 'pass', `The application role "${login.user}" logs in to the target.`)
    : item('app_login', 'fail', `The application role "${login.user}" cannot log in to the target: ${login.error}`, `DigitalOcean's migration gives copied roles placeholder passwords: on the target (as doadmin) run ALTER ROLE ${login.user} PASSWORD '…' with the password the applications use.`);
}

function appUserCheck(user: NonNullable<DoPreflightFacts['appUser']>): DoCheckItem {
  if (user.exists === null) return item('app_user', 'warn', `Whether the application user "${user.name}" exists on the target is unknown.`, 'Check the token\'s database:read and database:view_credentials scopes.');
  return user.exists
    ? item('app_user', 'pass', `At the switch the applications get the parameters of their own user "${user.name}".`)
    : item('app_user', 'warn', `No application user "${user.name}" on the target: the switch would hand out doadmin's parameters.`, 'Let the bot create it: `/migrate setup app-user` shows what it does, `--confirm` does it (an operator).');
}

function reachabilityCheck(s: DoPreflightFacts['sourceHost']): DoCheckItem {
  const kinds = s.addresses.map(addressKind);
  const shown = `${s.host}${s.addresses.length && s.addresses[0] !== s.host ? ` (${s.addresses.join(', ')})` : ''}`;
  // A simulator or proxy in place of DigitalOcean's API may run its migrations from anywhere: flagged, not refused.
  const unreachable = s.doIsRemote ? 'fail' : 'warn';
  const fix = 'Set digitalocean.sourceForMigration.host to a public name or address of the source, with the port open to DigitalOcean.';
  if (kinds.length === 0) return item('source_reachable_by_do', 'warn', `${s.host} does not resolve here; DigitalOcean must resolve and reach it.`, fix);
  if (kinds.includes('loopback')) return item('source_reachable_by_do', unreachable, `${shown} is a loopback address: DigitalOcean connects to its own machine there, never to the source.`, fix);
  if (kinds.every((k) => k === 'private')) {
    return s.clusterInVpc
      ? item('source_reachable_by_do', 'warn', `${shown} is a private address: DigitalOcean reaches it only if the source is in the cluster's VPC.`, 'Make sure the source is in the same VPC as the cluster, or use a public address in digitalocean.sourceForMigration.host.')
      : item('source_reachable_by_do', unreachable, `${shown} is a private address and the cluster has no private network: DigitalOcean cannot reach it.`, fix);
  }
  return item('source_reachable_by_do', 'pass', `DigitalOcean connects to the source at ${shown}, a public address.`);
}
