/**
 * PgBouncer's %include'd databases file, as text: find the line of one database, replace its
 * connection string (keeping its other keys, quoting values, and the original line in a marker comment
 * so a rollback restores it verbatim), and parse or render a connection string.
 */
import { access, constants, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Endpoint } from '../../domain/ports/writes.js';
import { CodedError, ErrorCode } from '../../errors.js';

export async function readDatabasesFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    throw new CodedError(ErrorCode.ProxyAdminFailed, `Cannot read the PgBouncer databases file ${file}`, { cause });
  }
}

interface DatabaseLine {
  index: number;
  value: string;
}

export function findDatabaseLine(text: string, db: string): DatabaseLine | undefined {
  const lines = text.split('\n');
  const matches: DatabaseLine[] = [];
  lines.forEach((line, index) => {
    const m = /^\s*("?)([^"=\s]+)\1\s*=(.*)$/.exec(line);
    if (m && m[2] === db) matches.push({ index, value: m[3] ?? '' });
  });
  if (matches.length > 1) {
    throw new CodedError(ErrorCode.ProxyAdminFailed, `The databases file has ${matches.length} lines for "${db}"`);
  }
  return matches[0];
}

const ORIGINAL_MARKER = /^;\s*pgcutover-original\s+("?)([^"=\s]+)\1\s*=(.*)$/;

/**
 * Replaces the db's line, keeping its other keys (pool_size, pool_mode, connect_query, …). The first
 * repoint keeps the original line in a comment above it (on disk, so it survives a restart); a
 * repoint back to that server without credentials restores it verbatim, so a rollback never logs in
 * to the source with the target's user and password.
 */
export function replaceDatabaseLine(text: string, db: string, to: Endpoint): string {
  const line = findDatabaseLine(text, db);
  if (!line) {
    throw new CodedError(ErrorCode.ProxyAdminFailed, `The PgBouncer databases file has no line for "${db}"`);
  }
  const lines = text.split('\n');
  const marked = lines.map((l) => ORIGINAL_MARKER.exec(l)).find((m) => m?.[2] === db);
  const original = marked?.[3] ?? line.value;
  const originalParams = parseConnString(original);
  const backToOriginal =
    !to.user &&
    originalParams.get('host') === to.host &&
    Number(originalParams.get('port') ?? 5432) === to.port &&
    (originalParams.get('dbname') ?? db) === to.database;
  lines[line.index] = backToOriginal
    ? `${db} =${original}`
    : `${db} = ${renderConnString(parseConnString(line.value), to)}`;
  if (!marked) lines.splice(line.index, 0, `; pgcutover-original ${db} =${original}`);
  return lines.join('\n');
}

/** Parses `key=value key='quoted ''value'''` as PgBouncer does. */
export function parseConnString(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i] ?? '')) i++;
    if (i >= text.length) break;
    const eq = text.indexOf('=', i);
    if (eq === -1) break;
    const key = text.slice(i, eq).trim();
    i = eq + 1;
    while (text[i] === ' ') i++;
    let value = '';
    if (text[i] === "'") {
      i++;
      for (; i < text.length; i++) {
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            value += "'";
            i++;
          } else {
            i++;
            break;
          }
        } else value += text[i];
      }
    } else {
      while (i < text.length && !/\s/.test(text[i] ?? '')) value += text[i++];
    }
    out.set(key, value);
  }
  return out;
}

const quoteValue = (value: string) => (/^[A-Za-z0-9_.:/-]+$/.test(value) ? value : `'${value.replace(/'/g, "''")}'`);

export function renderConnString(existing: Map<string, string>, to: Endpoint): string {
  const params = new Map(existing);
  params.set('host', to.host);
  params.set('port', String(to.port));
  params.set('dbname', to.database);
  if (to.user) {
    params.set('user', to.user);
    if (to.password) params.set('password', to.password.reveal());
    else params.delete('password');
  }
  return [...params].map(([k, v]) => `${k}=${quoteValue(v)}`).join(' ');
}

/** Preflight of the file: it holds the line PgBouncer runs with (`running`), and the bot can rewrite it atomically. */
export async function checkDatabasesFile(file: string, db: string, running: { host: string | null; port: number }): Promise<{ name: string; ok: boolean; detail: string }[]> {
  const checks: { name: string; ok: boolean; detail: string }[] = [];
  try {
    const text = await readDatabasesFile(file);
    const line = findDatabaseLine(text, db);
    const params = line ? parseConnString(line.value) : undefined;
    const matches = params?.get('host') === running.host && Number(params?.get('port') ?? 5432) === running.port;
    checks.push({
      name: 'databases file',
      ok: matches,
      detail: !line
        ? `${file} has no line for "${db}"`
        : matches
          ? `${file} has the line PgBouncer runs with`
          : `${file} does not match what PgBouncer runs (is it the %include'd file?)`,
    });
    await access(file, constants.W_OK);
    await access(dirname(file), constants.W_OK);
    checks.push({ name: 'databases file writable', ok: true, detail: `${file} and its directory are writable` });
  } catch (error) {
    checks.push({ name: 'databases file writable', ok: false, detail: `${file}: ${(error as Error).message}` });
  }
  return checks;
}
