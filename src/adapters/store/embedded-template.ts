/**
 * A prepared data directory for the embedded store. PGlite's initdb takes seconds and most of a
 * gigabyte of memory (issue 13 measured 6.9–7.8 s and ~800 MB to a first /healthz on an idle
 * machine), so `npm run build` runs it once and ships the initialised, migrated directory beside this
 * module; a fresh DATA_DIR starts as a copy of it (a file copy, well under a second). The template is
 * tied to the PGlite version that made it: from another version, or when there is none (running from
 * the sources), the store falls back to initdb as before.
 */
import { copyFileSync, cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** Where `npm run build` leaves the template: beside the built module. */
export const EMBEDDED_TEMPLATE_DIR = fileURLToPath(new URL('./embedded-template', import.meta.url));

/** Written last by the build, so a template without it is incomplete. */
const STAMP_FILE = 'pgcutover-template.json';
/** PostgreSQL writes PG_VERSION first and reads it to tell an initialised directory. */
const PG_VERSION = 'PG_VERSION';

const stampSchema = z.object({ pglite: z.string(), migrations: z.array(z.number().int()) });
export type TemplateStamp = z.infer<typeof stampSchema>;

/** The installed PGlite's version (a template from another one is not used). */
export function pgliteVersion(): string {
  const packageJson = new URL('../package.json', import.meta.resolve('@electric-sql/pglite'));
  return z.object({ version: z.string() }).parse(JSON.parse(readFileSync(packageJson, 'utf8'))).version;
}

export function readStamp(templateDir: string): TemplateStamp | undefined {
  try {
    return stampSchema.parse(JSON.parse(readFileSync(join(templateDir, STAMP_FILE), 'utf8')));
  } catch {
    return undefined;
  }
}

export function writeStamp(templateDir: string, stamp: TemplateStamp): void {
  writeFileSync(join(templateDir, STAMP_FILE), `${JSON.stringify(stamp)}\n`);
}

/**
 * Makes `dataDir` a copy of the template when it holds no database yet and the template suits the
 * installed PGlite. PG_VERSION is copied last: a copy cut short leaves a directory without it, which
 * the next start copies again. Returns whether it copied.
 */
export function seedFromTemplate(dataDir: string, templateDir: string = EMBEDDED_TEMPLATE_DIR): boolean {
  if (existsSync(join(dataDir, PG_VERSION))) return false;
  if (readStamp(templateDir)?.pglite !== pgliteVersion()) return false;
  cpSync(templateDir, dataDir, {
    recursive: true,
    filter: (source) => source !== join(templateDir, PG_VERSION) && source !== join(templateDir, STAMP_FILE),
  });
  copyFileSync(join(templateDir, PG_VERSION), join(dataDir, PG_VERSION));
  return true;
}
