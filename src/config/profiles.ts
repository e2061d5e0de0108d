import { readFileSync } from 'node:fs';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { parseReportSchedule } from '../domain/report-schedule.js';
import { ROLLBACK_DEFAULTS } from '../domain/rollback-window.js';
import { CodedError, ErrorCode } from '../errors.js';
import { Secret } from '../secret.js';
import { describeIssue, valueAt } from './issues.js';

const ENV_REFERENCE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
const nonEmpty = z.string().trim().min(1);
const port = z.number().int().min(1).max(65535);
const channelId = z.string().regex(/^[CG][A-Z0-9]{2,}$/, 'must be a Slack channel id like C0123ABCD');
/** A Slack user (U…/W…) or a user group (S…) that stands for its members. */
const principal = z.string().regex(/^[UWS][A-Z0-9]{2,}$/, 'must be a Slack user id (U…) or user group id (S…)');

/** Secrets in the file are only ever `${ENV_VAR}` references, resolved against the environment at load. */
function secretReference(env: NodeJS.ProcessEnv) {
  return z.string().transform((raw, ctx) => {
    const match = ENV_REFERENCE.exec(raw.trim());
    if (!match?.[1]) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be an ${ENV_VAR} reference; secrets are never written literally in the config file',
      });
      return z.NEVER;
    }
    const value = env[match[1]];
    if (value === undefined || value === '') {
      ctx.addIssue({ code: 'custom', message: `references \${${match[1]}}, which is not set in the environment` });
      return z.NEVER;
    }
    return new Secret(value);
  });
}

const sslmode = z.enum(['disable', 'prefer', 'require', 'verify-ca', 'verify-full']);

function schemas(env: NodeJS.ProcessEnv) {
  const secretRef = secretReference(env);

  const postgresConnection = z.strictObject({
    host: nonEmpty,
    port: port.default(5432),
    database: nonEmpty,
    user: nonEmpty,
    password: secretRef,
    sslmode: sslmode.default('prefer'),
  });

  const pgbouncerProxy = z.strictObject({
    kind: z.literal('pgbouncer'),
    /** The admin console (a pgbouncer `admin_users` user). */
    admin: z.strictObject({ host: nonEmpty, port: port.default(6432), user: nonEmpty, password: secretRef.optional() }),
    /** The database name applications use in PgBouncer (its line in the databases file). */
    database: nonEmpty,
    /**
     * Every PgBouncer entry the cutover pauses and repoints, `database` included. Default: `database` and
     * every other entry pointing at a database DigitalOcean migrates (all of the source's but `ignoreDbs`).
     */
    databases: z.array(nonEmpty).min(1).optional(),
    /** The file PgBouncer `%include`s for its [databases] section; the bot rewrites it to repoint. */
    databasesFile: nonEmpty,
    /** How long a PAUSE may take to drain before the bot gives up and resumes. */
    pauseTimeoutSeconds: z.number().positive().default(10),
  });

  const pgpoolProxy = z.strictObject({
    kind: z.literal('pgpool'),
    pcp: z.strictObject({ host: nonEmpty, port: port.default(9898), user: nonEmpty, password: secretRef }),
    sourceNode: z.number().int().min(0).default(0),
    targetNode: z.number().int().min(0).default(1),
    /** pgpool.conf, so the bot can flip backend_flag of the source before detaching it (optional). */
    configFile: nonEmpty.optional(),
  });

  const httpProxy = z.strictObject({
    kind: z.literal('http'),
    baseUrl: z.url(),
    auth: z.discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('bearer'), token: secretRef }),
      z.strictObject({ kind: z.literal('hmac'), secret: secretRef }),
    ]),
    timeoutMs: z.number().int().positive().default(5000),
    /** What the endpoint's freeze does to clients: queries-wait (it holds them) or writes-fail/connections-dropped. */
    clientImpact: z.enum(['queries-wait', 'writes-fail', 'connections-dropped']).default('queries-wait'),
  });

  const noProxy = z.strictObject({ kind: z.literal('none') });

  const profile = z
    .strictObject({
      description: z.string().optional(),
      channels: z.array(channelId).min(1),
      strategy: z.enum(['proxy', 'connection-parameters']),
      /** Where the bot itself connects to the source: monitoring, fence, sequences, in-database freeze. */
      source: postgresConnection,
      digitalocean: z.strictObject({
        clusterUuid: z.uuid(),
        /** The database on the target cluster that receives the migration. */
        database: nonEmpty,
        /** What DigitalOcean connects to when it differs from `source` (e.g. a public address). */
        sourceForMigration: z
          .strictObject({
            host: nonEmpty,
            port: port.default(5432),
            database: nonEmpty.optional(),
            user: nonEmpty.optional(),
            password: secretRef.optional(),
          })
          .optional(),
        ignoreDbs: z.array(nonEmpty).default([]),
        disableSsl: z.boolean().default(false),
        /**
         * The public IPv4 addresses DigitalOcean sees the proxy's and the bot's connections come from: the
         * trusted sources the preflight checks and `/migrate setup trusted-sources` adds.
         */
        publicAddresses: z.strictObject({ proxy: z.ipv4().optional(), bot: z.ipv4().optional() }).optional(),
        /**
         * Overrides the target connection DigitalOcean reports for the cluster (user, password, sslmode).
         * No defaults here: a key left out keeps DigitalOcean's value.
         */
        target: z
          .strictObject({
            host: nonEmpty.optional(),
            port: port.optional(),
            database: nonEmpty.optional(),
            user: nonEmpty.optional(),
            password: secretRef.optional(),
            sslmode: sslmode.optional(),
          })
          .optional(),
      }),
      /**
       * The role and password the applications log in with. Preflight logs in to the target with them
       * before a freeze: DigitalOcean's migration creates the roles with placeholder passwords.
       */
      application: z.strictObject({ user: nonEmpty, password: secretRef }).optional(),
      replication: z
        .strictObject({
          /** The logical slot of the migration on the source; `auto` picks the only active logical slot. */
          slot: nonEmpty.default('auto'),
          fenceTimeoutSeconds: z.number().positive().default(15),
        })
        .prefault({}),
      proxy: z.discriminatedUnion('kind', [pgbouncerProxy, pgpoolProxy, httpProxy, noProxy]),
      freeze: z
        .strictObject({
          method: z.enum(['proxy-pause', 'read-only-roles', 'read-only-database']).default('proxy-pause'),
          budgetSeconds: z.number().positive().max(600).default(30),
          /** Roles made read-only by the `read-only-roles` method. */
          appRoles: z.array(nonEmpty).default([]),
        })
        .prefault({}),
      sequences: z.strictObject({ margin: z.number().int().min(0).default(1000) }).prefault({}),
      rollback: z
        .strictObject({
          /**
           * Where the target cannot replicate back (see the preflight item "replicating back"), a rollback
           * after the switch leaves the target's writes on the target only: the freeze is refused unless
           * this says `accept`.
           */
          withoutReplicatingBack: z.enum(['refuse', 'accept']).default('refuse'),
          /**
           * How long after the switch the target's writes keep flowing back (a rollback loses nothing);
           * then the reverse replication is removed, and a rollback leaves the target's writes there.
           */
          windowHours: z.number().positive().default(ROLLBACK_DEFAULTS.windowHours),
          /** WAL the target may keep for the reverse slot before the channel is alerted (MiB). */
          maxRetainedWalMb: z.number().positive().default(ROLLBACK_DEFAULTS.maxRetainedWalMb),
        })
        .prefault({}),
      gates: z.strictObject({
        operators: z.array(principal).default([]),
        approvers: z.array(principal).default([]),
        twoPersonRule: z.boolean().default(true),
        /**
         * approve-first: both gates are approved before anything freezes; the approval that completes the
         * pair runs the whole cutover at once. step-by-step: the freeze runs when approved, and writes are
         * held while people look around and approve the switch.
         */
        flow: z.enum(['approve-first', 'step-by-step']).default('approve-first'),
        approvalExpiryMinutes: z.number().positive().default(15),
        maxLagBytesToFreeze: z.number().int().min(0).default(16 * 1024 * 1024),
      }),
      reports: z
        .strictObject({
          schedule: z
            .string()
            .default('every 5m')
            .superRefine((text, ctx) => {
              const parsed = parseReportSchedule(text);
              if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.message });
            }),
          alerts: z
            .strictObject({
              lagBytes: z.number().int().min(0).default(256 * 1024 * 1024),
              consecutiveSamples: z.number().int().min(1).default(3),
              twoWeekLimitWarningHours: z.number().positive().default(48),
            })
            .prefault({}),
        })
        .prefault({}),
    })
    .superRefine((p, ctx) => {
      const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
      if (p.strategy === 'proxy' && p.proxy.kind === 'none') {
        issue(['proxy', 'kind'], 'strategy "proxy" needs a proxy (pgbouncer, pgpool or http)');
      }
      if (p.freeze.method === 'proxy-pause' && (p.proxy.kind === 'pgpool' || p.proxy.kind === 'none')) {
        issue(
          ['freeze', 'method'],
          `proxy "${p.proxy.kind}" cannot pause clients; use read-only-roles or read-only-database`,
        );
      }
      if (p.freeze.method === 'proxy-pause' && p.proxy.kind === 'http' && p.proxy.clientImpact !== 'queries-wait') {
        issue(['freeze', 'method'], 'this HTTP endpoint does not hold queries (clientImpact); use read-only-roles or read-only-database');
      }
      if (p.freeze.method === 'read-only-roles' && p.freeze.appRoles.length === 0) {
        issue(['freeze', 'appRoles'], 'read-only-roles needs at least one application role');
      }
      if (p.gates.operators.length === 0) {
        issue(['gates', 'operators'], 'name at least one operator (user id or user group id)');
      }
      if (p.proxy.kind === 'pgpool' && p.proxy.sourceNode === p.proxy.targetNode) {
        issue(['proxy', 'targetNode'], 'must differ from sourceNode');
      }
    });

  const file = z.strictObject({ profiles: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/), profile) });
  return { file };
}

export type ConfigFile = z.infer<ReturnType<typeof schemas>['file']>;
export type Profile = ConfigFile['profiles'][string];
export type PostgresConnection = Profile['source'];
export type ProxyConfig = Profile['proxy'];
export type GateConfig = Profile['gates'];
export type FreezeConfig = Profile['freeze'];

export interface LoadedConfig {
  path: string;
  profiles: ReadonlyMap<string, Profile>;
}

/**
 * Loads and validates the profiles file. Any problem is a ConfigInvalid error that names the file,
 * the key path and the line, and never echoes a value (values may be secrets).
 */
export function loadProfiles(path: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const reason =
      (cause as NodeJS.ErrnoException).code === 'ENOENT'
        ? 'file not found; copy pgcutover.example.yml there and edit it, or set PGCUTOVER_CONFIG to your profiles file'
        : 'cannot be read (set PGCUTOVER_CONFIG)';
    throw new CodedError(ErrorCode.ConfigInvalid, `Config file ${path}: ${reason}`, { cause });
  }
  return parseProfiles(text, path, env);
}

export function parseProfiles(text: string, path: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    // Later YAML errors usually cascade from the first; three are enough to find it.
    const lines = doc.errors.slice(0, 3).map((e) => `  line ${lineCounter.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`);
    throw new CodedError(ErrorCode.ConfigInvalid, `Config file ${path} is not valid YAML:\n${lines.join('\n')}`);
  }
  let data: unknown;
  try {
    // yaml refuses aliases that expand past maxAliasCount nodes ("billion laughs"); a profiles file needs few.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new CodedError(ErrorCode.ConfigInvalid, `Config file ${path} is not usable YAML: ${reason}`, { cause });
  }
  const parsed = schemas(env).file.safeParse(data);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const keyPath = issue.path.map(String).join('.') || '(top level)';
      const line = lineOf(doc, issue.path, lineCounter);
      return `  ${keyPath}${line ? ` (line ${line})` : ''}: ${describeIssue(issue, valueAt(data, issue.path))}`;
    });
    throw new CodedError(ErrorCode.ConfigInvalid, `Config file ${path} is invalid:\n${lines.join('\n')}`);
  }
  const shared = sharedChannels(parsed.data.profiles).map(({ keyPath, channel, first, second }) => {
    const line = lineOf(doc, keyPath, lineCounter);
    return `  ${keyPath.join('.')}${line ? ` (line ${line})` : ''}: channel ${channel} is claimed by both "${first}" and "${second}"; a channel may belong to one profile`;
  });
  if (shared.length > 0) throw new CodedError(ErrorCode.ConfigInvalid, `Config file ${path} is invalid:\n${shared.join('\n')}`);
  return { path, profiles: new Map(Object.entries(parsed.data.profiles)) };
}

/**
 * Channels listed by more than one profile. Refused rather than resolved: a channel has one active
 * session and one status message, and an approval there must not leave in doubt which database it moves.
 */
function sharedChannels(profiles: Record<string, Profile>) {
  const owners = new Map<string, string>();
  const shared: { keyPath: (string | number)[]; channel: string; first: string; second: string }[] = [];
  for (const [name, profile] of Object.entries(profiles)) {
    profile.channels.forEach((channel, index) => {
      const owner = owners.get(channel);
      if (owner === undefined) owners.set(channel, name);
      else if (owner !== name) shared.push({ keyPath: ['profiles', name, 'channels', index], channel, first: owner, second: name });
    });
  }
  return shared;
}

/** The line of the deepest node on `path` that exists in the document (a missing key points at its parent). */
function lineOf(doc: Document, path: readonly PropertyKey[], lineCounter: LineCounter): number | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => String((item.key as { value?: unknown })?.value) === String(key));
      if (!pair) break;
      offset = (pair.key as { range?: [number] }).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(key)] as { range?: [number] } | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else break;
  }
  return offset === undefined ? undefined : lineCounter.linePos(offset).line;
}
