/**
 * zod schemas for what DigitalOcean answers, after the official OpenAPI spec
 * (`components.schemas.online_migration`, `database_cluster_read`, `firewall_rule`, `error`).
 * Unknown fields pass through untouched: DO adds fields over time, and a new field is not a failure.
 * Likewise a new enum value (a migration status, a firewall rule type) reads as `unknown` rather than
 * failing the response: otherwise stop, abort and finish would fail on it.
 */
import { z } from 'zod';
import { FIREWALL_RULE_TYPES, ONLINE_MIGRATION_STATUSES } from '../../domain/ports/digitalocean.js';

/** One of `known`, or `unknown` for any other string. */
function tolerantEnum<const T extends readonly [string, ...string[]]>(known: T) {
  return z.string().transform((value): T[number] | 'unknown' => ((known as readonly string[]).includes(value) ? (value as T[number]) : 'unknown'));
}

export const onlineMigrationSchema = z.object({
  id: z.string().min(1),
  status: tolerantEnum(ONLINE_MIGRATION_STATUSES),
  created_at: z.string().min(1),
});

export const connectionSchema = z.object({
  uri: z.string().optional(),
  database: z.string().default(''),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  user: z.string().default(''),
  password: z.string().default(''),
  ssl: z.boolean().default(true),
});

export const clusterResponseSchema = z.object({
  database: z.object({
    id: z.string().min(1),
    name: z.string(),
    engine: z.string(),
    version: z.string(),
    status: z.string(),
    connection: connectionSchema,
    private_network_uuid: z.string().nullish(),
  }),
});

export const firewallRulesResponseSchema = z.object({
  rules: z
    .array(
      z.object({
        type: tolerantEnum(FIREWALL_RULE_TYPES),
        value: z.string(),
      }),
    )
    .nullable()
    .default([]),
});

/**
 * A rule as read, for writing it back untouched: its type stays the string DO sent (a type newer than
 * our spec must survive an append), read-only fields (`cluster_uuid`, `created_at`) are dropped.
 */
export const firewallRulesRawSchema = z.object({
  rules: z
    .array(z.object({ uuid: z.string().optional(), type: z.string().min(1), value: z.string(), description: z.string().optional() }))
    .nullable()
    .default([]),
});

export const caResponseSchema = z.object({ ca: z.object({ certificate: z.string().min(1) }) });

export const databasesResponseSchema = z.object({ dbs: z.array(z.object({ name: z.string() })).nullable().default([]) });

export const userResponseSchema = z.object({ user: z.object({ name: z.string().min(1), password: z.string().default('') }) });

export const errorBodySchema = z.object({
  id: z.string(),
  message: z.string(),
  request_id: z.string().optional(),
});

/** The PUT body, in DO's wire names (what the client sends and the simulator accepts). */
export const startMigrationBodySchema = z.object({
  source: z.object({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535),
    dbname: z.string().min(1),
    username: z.string().min(1),
    password: z.string(),
  }),
  disable_ssl: z.boolean().optional(),
  ignore_dbs: z.array(z.string()).optional(),
});
export type StartMigrationBody = z.infer<typeof startMigrationBodySchema>;
