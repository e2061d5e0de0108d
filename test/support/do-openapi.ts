/**
 * DigitalOcean's official OpenAPI spec (../shared/do-openapi, bundled, OpenAPI 3.0) turned into ajv
 * validators for one operation's request body and responses. OpenAPI 3.0 specifics are converted:
 * `nullable` → a null type, `example`/`x-*` dropped, `$ref`s inlined.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';

export const DO_OPENAPI_FILE = fileURLToPath(
  new URL('../../../shared/do-openapi/DigitalOcean-public.v2.bundled.yaml', import.meta.url),
);

type Json = Record<string, unknown>;

export interface OperationContract {
  operationId: string;
  requestBody?: ValidateFunction;
  /** Validator for a status (falls back to `default`); `null` when the status declares no body. */
  response(status: number): ValidateFunction | null;
  declaredStatuses: string[];
  /** Header names the spec declares for that status. */
  headers(status: number): string[];
}

export function loadDoOpenApi(): { operation(method: string, path: string): OperationContract } {
  // The contract is checked on every run: a missing spec fails, it never skips.
  if (!existsSync(DO_OPENAPI_FILE)) throw new Error(`DigitalOcean's OpenAPI spec is missing at ${DO_OPENAPI_FILE}: check out shared/ beside the repository.`);
  const spec = parse(readFileSync(DO_OPENAPI_FILE, 'utf8')) as Json;
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const deref = (node: unknown, seen: string[] = []): unknown => {
    if (Array.isArray(node)) return node.map((n) => deref(n, seen));
    if (typeof node !== 'object' || node === null) return node;
    const obj = node as Json;
    if (typeof obj.$ref === 'string') {
      const ref = obj.$ref;
      if (seen.includes(ref)) return {};
      const target = ref
        .replace(/^#\//, '')
        .split('/')
        .reduce<unknown>((at, key) => (at as Json | undefined)?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
      return deref(target, [...seen, ref]);
    }
    const out: Json = {};
    for (const [key, value] of Object.entries(obj)) {
      if (key === 'example' || key === 'examples' || key.startsWith('x-')) continue;
      out[key] = deref(value, seen);
    }
    if (out.nullable === true) {
      delete out.nullable;
      if (typeof out.type === 'string') out.type = [out.type, 'null'];
    }
    return out;
  };
  return {
    operation(method, path) {
      const op = deref((spec.paths as Json)[path] && ((spec.paths as Json)[path] as Json)[method.toLowerCase()]) as Json | undefined;
      if (!op) throw new Error(`the spec has no ${method} ${path}`);
      const responses = op.responses as Record<string, Json>;
      const pick = (status: number) => responses[String(status)] ?? responses.default;
      const bodySchema = ((op.requestBody as Json | undefined)?.content as Json | undefined)?.['application/json'] as Json | undefined;
      return {
        operationId: String(op.operationId),
        ...(bodySchema ? { requestBody: ajv.compile(bodySchema.schema as Json) } : {}),
        declaredStatuses: Object.keys(responses),
        response(status) {
          const schema = ((pick(status)?.content as Json | undefined)?.['application/json'] as Json | undefined)?.schema;
          return schema ? ajv.compile(schema as Json) : null;
        },
        headers(status) {
          return Object.keys((pick(status)?.headers as Json | undefined) ?? {});
        },
      };
    },
  };
}

const ROUTES: Array<[RegExp, string]> = [
  [/^\/v2\/databases\/[^/]+\/online-migration\/[^/]+$/, '/v2/databases/{database_cluster_uuid}/online-migration/{migration_id}'],
  [/^\/v2\/databases\/[^/]+\/online-migration$/, '/v2/databases/{database_cluster_uuid}/online-migration'],
  [/^\/v2\/databases\/[^/]+\/firewall$/, '/v2/databases/{database_cluster_uuid}/firewall'],
  [/^\/v2\/databases\/[^/]+\/ca$/, '/v2/databases/{database_cluster_uuid}/ca'],
  [/^\/v2\/databases\/[^/]+\/dbs$/, '/v2/databases/{database_cluster_uuid}/dbs'],
  [/^\/v2\/databases\/[^/]+\/users$/, '/v2/databases/{database_cluster_uuid}/users'],
  [/^\/v2\/databases\/[^/]+\/users\/[^/]+$/, '/v2/databases/{database_cluster_uuid}/users/{username}'],
  [/^\/v2\/databases\/[^/]+$/, '/v2/databases/{database_cluster_uuid}'],
];

/** The spec's path template for a request path the client sent. */
export function specPath(path: string): string {
  const route = ROUTES.find(([re]) => re.test(path));
  if (!route) throw new Error(`no spec route for ${path}`);
  return route[1];
}
