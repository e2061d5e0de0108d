/**
 * Build step (`npm run build`): prepares the embedded store's template, an initialised and migrated
 * PGlite data directory that a fresh DATA_DIR is copied from (see adapters/store/embedded-template.ts).
 * Does nothing when the template already matches the installed PGlite and the migrations.
 */
import { EMBEDDED_TEMPLATE_DIR } from './adapters/store/embedded-template.js';
import { prepareTemplate } from './adapters/store/prepare-template.js';

prepareTemplate(EMBEDDED_TEMPLATE_DIR).then(
  (built) => {
    if (built) process.stdout.write(`embedded store template ready (PGlite ${built.pglite}, migrations up to ${built.migrations.at(-1) ?? 0})\n`);
  },
  (err: unknown) => {
    process.stderr.write(`pgcutover: preparing the embedded store template failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
