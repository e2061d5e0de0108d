/**
 * Preflight: the checks run before a migration starts and again before a freeze, as a list of
 * pass/warn/fail items, each failing or warning item with the fix. Pure: it evaluates facts that
 * `src/adapters/source/preflight-gatherer.ts` collects from the source, DigitalOcean and the proxy;
 * the DigitalOcean-aware checks are in `preflight-digitalocean.ts`.
 */
import { addressKind, inCidr } from './addresses.js';
import { evaluateDoPreflight, type DoCheckName, type DoPreflightFacts } from './preflight-digitalocean.js';

export type PreflightStage = 'before-migration' | 'before-freeze';
export type PreflightStatus = 'pass' | 'warn' | 'fail';
export type PreflightCheck =
  | 'source_reachable'
  | 'wal_level'
  | 'replication_slots'
  | 'wal_senders'
  | 'source_user'
  | 'versions'
  | 'replica_identity'
  | 'large_objects'
  | 'unlogged_tables'
  | 'sequences'
  | 'do_cluster'
  | 'trusted_sources'
  | 'proxy'
  | DoCheckName;

export interface PreflightItem {
  check: PreflightCheck;
  status: PreflightStatus;
  detail: string;
  /** What to do about it; null when the check passed. */
  fix: string | null;
}

export interface SourceFacts {
  database: string;
  walLevel: string;
  maxReplicationSlots: number;
  usedReplicationSlots: number;
  maxWalSenders: number;
  usedWalSenders: number;
  /** Databases DO will migrate (all connectable, non-template ones minus ignore_dbs): one slot each. */
  databasesToMigrate: number;
  /** server_version_num, e.g. 150018. */
  versionNum: number;
  /** The user DO connects with; `superuser` null when the role does not exist. */
  migrationUser: { name: string; superuser: boolean | null };
  tablesWithoutReplicaIdentity: string[];
  unloggedTables: string[];
  largeObjects: number;
  sequences: number;
}

export interface ClusterFacts {
  status: string;
  /** Major version DO reports (`version`), null when not a number. */
  versionMajor: number | null;
}

export interface FirewallFacts {
  rules: { type: string; value: string }[];
  /** Addresses that must be admitted on the target: the source's, the proxy's and the bot's. */
  required: { who: 'source' | 'proxy' | 'bot'; host: string; addresses: string[] }[];
}

export interface ProxyFacts {
  expected: { host: string; port: number; database: string };
  /** What the proxy reported, or why it could not be asked. */
  observed: { healthy: boolean; pointsTo: { host: string; port: number; database: string } | null; detail: string } | { error: string };
}

export interface PreflightFacts {
  stage: PreflightStage;
  source: SourceFacts | { error: string };
  cluster: ClusterFacts | { error: string };
  firewall: FirewallFacts | { error: string };
  /** Absent when the profile has no proxy (connection-parameters strategy). */
  proxy?: ProxyFacts;
  /** DigitalOcean's replication, the target cluster, the application's login and the source's reachability. */
  digitalocean?: DoPreflightFacts;
}

const item = (check: PreflightCheck, status: PreflightStatus, detail: string, fix: string | null = null): PreflightItem => ({
  check,
  status,
  detail,
  fix: status === 'pass' ? null : fix,
});

const list = (names: string[], max = 5) =>
  names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;

export function evaluatePreflight(facts: PreflightFacts): PreflightItem[] {
  const items: PreflightItem[] = [];
  const { source, cluster } = facts;
  if ('error' in source) {
    items.push(item('source_reachable', 'fail', `The source cannot be queried: ${source.error}`, 'Check the profile\'s source connection (host, port, user, password) and that the bot can reach it.'));
  } else {
    items.push(...sourceChecks(source, facts.stage));
  }

  if ('error' in cluster) {
    items.push(item('do_cluster', 'fail', `DigitalOcean cluster unavailable: ${cluster.error}`, 'Check digitalocean.clusterUuid and the token\'s database:read scope.'));
  } else {
    items.push(
      cluster.status === 'online'
        ? item('do_cluster', 'pass', 'The DigitalOcean cluster is online.')
        : item('do_cluster', 'fail', `The DigitalOcean cluster is "${cluster.status}", not online.`, 'Wait until the cluster is online (DO control panel or `doctl databases get`), then run the preflight again.'),
    );
    if (!('error' in source)) {
      const sourceMajor = Math.floor(source.versionNum / 10000);
      if (cluster.versionMajor === null) {
        items.push(item('versions', 'warn', `Source is PostgreSQL ${sourceMajor}; the target's version is unknown.`, 'Check the target version in the DO control panel: it must be at least the source version.'));
      } else if (sourceMajor <= cluster.versionMajor) {
        items.push(item('versions', 'pass', `Source PostgreSQL ${sourceMajor} ≤ target PostgreSQL ${cluster.versionMajor}.`));
      } else {
        items.push(item('versions', 'fail', `Source PostgreSQL ${sourceMajor} is newer than the target (PostgreSQL ${cluster.versionMajor}).`, `Upgrade the DigitalOcean cluster to PostgreSQL ${sourceMajor} or later before migrating.`));
      }
    }
  }

  items.push(firewallCheck(facts.firewall));
  if (facts.proxy) items.push(proxyCheck(facts.proxy));
  if (facts.digitalocean) items.push(...evaluateDoPreflight(facts.digitalocean));
  return items;
}

function sourceChecks(s: SourceFacts, stage: PreflightStage): PreflightItem[] {
  const items: PreflightItem[] = [];
  items.push(
    s.walLevel === 'logical'
      ? item('wal_level', 'pass', 'wal_level is logical.')
      : item('wal_level', 'fail', `wal_level is "${s.walLevel}": logical replication needs "logical".`, "Run `ALTER SYSTEM SET wal_level = logical;` on the source and restart PostgreSQL."),
  );
  // Before the migration DO still needs one slot and one sender per database; before a freeze they are in use already.
  const needed = stage === 'before-migration' ? s.databasesToMigrate : 0;
  const freeSlots = s.maxReplicationSlots - s.usedReplicationSlots;
  items.push(
    freeSlots >= needed
      ? item('replication_slots', 'pass', `max_replication_slots = ${s.maxReplicationSlots}, ${s.usedReplicationSlots} in use${needed ? `, ${needed} needed` : ''}.`)
      : item('replication_slots', 'fail', `max_replication_slots = ${s.maxReplicationSlots} with ${s.usedReplicationSlots} in use: DO needs ${needed} free (one per database).`, `Set max_replication_slots to at least ${s.usedReplicationSlots + needed} (ALTER SYSTEM SET max_replication_slots = …) and restart, or drop unused slots.`),
  );
  const freeSenders = s.maxWalSenders - s.usedWalSenders;
  items.push(
    freeSenders >= needed
      ? item('wal_senders', 'pass', `max_wal_senders = ${s.maxWalSenders}, ${s.usedWalSenders} in use${needed ? `, ${needed} needed` : ''}.`)
      : item('wal_senders', 'fail', `max_wal_senders = ${s.maxWalSenders} with ${s.usedWalSenders} in use: DO needs ${needed} free.`, `Set max_wal_senders to at least ${s.usedWalSenders + needed} and restart.`),
  );
  const user = s.migrationUser;
  if (user.name === 'postgres') {
    items.push(item('source_user', 'fail', 'DigitalOcean refuses the default `postgres` user for migrations.', 'Create another superuser, e.g. `CREATE ROLE do_migration LOGIN SUPERUSER PASSWORD …`, and use it in digitalocean.sourceForMigration.user.'));
  } else if (user.superuser === null) {
    items.push(item('source_user', 'fail', `The migration user "${user.name}" does not exist on the source.`, 'Create a dedicated superuser (not `postgres`) for DigitalOcean and put it in digitalocean.sourceForMigration.user.'));
  } else if (!user.superuser) {
    items.push(item('source_user', 'fail', `The migration user "${user.name}" is not a superuser; DigitalOcean requires one.`, `Run \`ALTER ROLE ${user.name} SUPERUSER;\` on the source, or use another superuser.`));
  } else {
    items.push(item('source_user', 'pass', `The migration user "${user.name}" is a superuser.`));
  }
  items.push(
    s.tablesWithoutReplicaIdentity.length === 0
      ? item('replica_identity', 'pass', `Every table in ${s.database} has a primary key or a replica identity.`)
      : item(
          'replica_identity',
          'fail',
          `${s.tablesWithoutReplicaIdentity.length} table(s) in ${s.database} have no primary key or replica identity (${list(s.tablesWithoutReplicaIdentity)}): once published, UPDATE and DELETE on them fail on the source.`,
          'Add a primary key (`ALTER TABLE … ADD PRIMARY KEY (…)`), or `ALTER TABLE … REPLICA IDENTITY FULL` (slower apply), before starting the migration.',
        ),
  );
  items.push(
    s.largeObjects === 0
      ? item('large_objects', 'pass', 'No large objects.')
      : item('large_objects', 'warn', `${s.largeObjects} large object(s) in ${s.database}: logical replication does not copy them, they would be missing on the target.`, 'Move them to bytea columns, or copy them separately (pg_dump --large-objects) during the freeze.'),
  );
  items.push(
    s.unloggedTables.length === 0
      ? item('unlogged_tables', 'pass', 'No unlogged tables.')
      : item('unlogged_tables', 'warn', `Unlogged table(s) are not replicated: ${list(s.unloggedTables)}.`, 'Run `ALTER TABLE … SET LOGGED` for tables whose data must move, or accept that they arrive empty.'),
  );
  items.push(
    item(
      'sequences',
      'pass',
      s.sequences === 0
        ? 'No sequences.'
        : `${s.sequences} sequence(s): logical replication does not carry their values; the bot sets them on the target at cutover.`,
    ),
  );
  return items;
}

function firewallCheck(firewall: FirewallFacts | { error: string }): PreflightItem {
  if ('error' in firewall) {
    return item('trusted_sources', 'warn', `Trusted sources could not be read: ${firewall.error}`, 'Check the token\'s database:read scope, or verify trusted sources in the DO control panel.');
  }
  if (firewall.rules.length === 0) {
    return item('trusted_sources', 'pass', 'The target has no trusted-source rules: it accepts connections from anywhere.');
  }
  const ipRules = firewall.rules.filter((r) => r.type === 'ip_addr').map((r) => r.value);
  const otherRules = firewall.rules.filter((r) => r.type !== 'ip_addr');
  const missing: string[] = [];
  const unverifiable: string[] = [];
  const notPublic: string[] = [];
  for (const need of firewall.required) {
    if (need.addresses.length === 0) {
      unverifiable.push(`${need.who} (${need.host}: address unknown)`);
      continue;
    }
    // DigitalOcean sees the public address a host connects from, never its loopback or private one.
    const publicAddresses = need.addresses.filter((a) => addressKind(a) === 'public');
    if (publicAddresses.length === 0) {
      notPublic.push(`${need.who} ${need.host} (${need.addresses.join(', ')})`);
      continue;
    }
    const uncovered = publicAddresses.filter((a) => !ipRules.some((rule) => ipAllowed(a, rule)));
    if (uncovered.length === 0) continue;
    if (otherRules.length > 0) unverifiable.push(`${need.who} ${uncovered.join(', ')}`);
    else missing.push(`${need.who} ${uncovered.join(', ')}`);
  }
  if (missing.length > 0) {
    return item('trusted_sources', 'fail', `The target's trusted sources do not admit: ${missing.join('; ')}.`, 'Let the bot append them (`/migrate setup trusted-sources`; every existing rule is kept), or run `doctl databases firewalls append <cluster> --rule ip_addr:<address>` for each.');
  }
  if (notPublic.length > 0) {
    return item('trusted_sources', 'warn', `Not a public address, so no trusted source can name it: ${notPublic.join('; ')}.`, 'DigitalOcean sees the public address these hosts connect from: name it in digitalocean.publicAddresses (proxy, bot), then let the bot add it (`/migrate setup trusted-sources`).');
  }
  if (unverifiable.length > 0) {
    return item('trusted_sources', 'warn', `Cannot confirm these are admitted (only droplet/tag/k8s/app rules could cover them): ${unverifiable.join('; ')}.`, 'Check in the DO control panel that the source and the proxy are trusted sources, or add ip_addr rules for them.');
  }
  return item('trusted_sources', 'pass', 'The target\'s trusted sources admit the source and the proxy.');
}

function proxyCheck(proxy: ProxyFacts): PreflightItem {
  const { expected, observed } = proxy;
  const where = `${expected.host}:${expected.port}/${expected.database}`;
  if ('error' in observed) {
    return item('proxy', 'fail', `The proxy cannot be reached: ${observed.error}`, 'Check the profile\'s proxy admin address and credentials, and that the proxy runs.');
  }
  if (!observed.healthy) {
    return item('proxy', 'fail', `The proxy reports a problem: ${observed.detail}`, 'Fix the proxy before migrating: applications must reach the source through it.');
  }
  if (observed.pointsTo === null) {
    return item('proxy', 'warn', `The proxy is up (${observed.detail}) but cannot tell where it points.`, `Confirm by hand that it sends the database to ${where}.`);
  }
  const p = observed.pointsTo;
  const same = p.port === expected.port && p.database === expected.database && sameHost(p.host, expected.host);
  return same
    ? item('proxy', 'pass', `The proxy is up and points at the source (${where}).`)
    : item('proxy', 'fail', `The proxy points at ${p.host}:${p.port}/${p.database}, not at the source (${where}).`, 'Point the proxy at the source before migrating, or fix the profile\'s source.');
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);
const sameHost = (a: string, b: string) => a === b || (LOOPBACK.has(a) && LOOPBACK.has(b));

/** Whether IPv4 `address` matches a rule value: an exact address or a CIDR block. */
export function ipAllowed(address: string, rule: string): boolean {
  const [base, bitsText] = rule.split('/');
  if (base === undefined) return false;
  if (bitsText === undefined) return address === base;
  return inCidr(address, base, Number(bitsText));
}

/** The worst status: what the gate looks at. */
export function preflightVerdict(items: readonly PreflightItem[]): PreflightStatus {
  if (items.some((i) => i.status === 'fail')) return 'fail';
  return items.some((i) => i.status === 'warn') ? 'warn' : 'pass';
}
