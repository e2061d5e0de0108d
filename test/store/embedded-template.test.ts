/**
 * A fresh embedded store starts as a copy of the prepared template (what `npm run build` leaves beside
 * the store module) instead of running initdb: already migrated, and its own database afterwards. A
 * template from another PGlite version is not used, and a copy cut short is made again.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEmbedded } from '../../src/adapters/store/database.js';
import { pgliteVersion, readStamp, seedFromTemplate, writeStamp } from '../../src/adapters/store/embedded-template.js';
import { migrate, readMigrations } from '../../src/adapters/store/migrate.js';
import { prepareTemplate } from '../../src/adapters/store/prepare-template.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';

let dir: string;
let template: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgcutover-template-'));
  template = join(dir, 'template');
  expect(await prepareTemplate(template)).toEqual({ pglite: pgliteVersion(), migrations: readMigrations().map((m) => m.version) });
}, 180_000); // initdb under load
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the embedded store template', () => {
  it('is built once: a second build with the same PGlite and migrations does nothing', async () => {
    expect(await prepareTemplate(template)).toBeUndefined();
    expect(readdirSync(dir)).toEqual(['template']);
  });

  it('a fresh data directory starts migrated from the template and keeps its own data', async () => {
    const dataDir = join(dir, 'fresh');
    const db = await openEmbedded(dataDir, template);
    try {
      expect(await migrate(db)).toEqual([]);
      const created = await new SessionStore(db).create({ channelId: 'CTEMPLATE', profile: 'orders', strategy: 'proxy', startedBy: 'U1' });
      expect(await new SessionStore(db).get(created.id)).toEqual(created);
    } finally {
      await db.close();
    }
    expect(existsSync(join(dataDir, 'pgcutover-template.json'))).toBe(false);
    const second = await openEmbedded(join(dir, 'second'), template);
    try {
      expect(await new SessionStore(second).activeInChannel('CTEMPLATE')).toBeUndefined();
    } finally {
      await second.close();
    }
  }, 120_000);

  it('copies again over a copy cut short, and never over a database', () => {
    const dataDir = join(dir, 'cut-short');
    expect(seedFromTemplate(dataDir, template)).toBe(true);
    unlinkSync(join(dataDir, 'PG_VERSION'));
    writeFileSync(join(dataDir, 'postgresql.conf'), 'half-written');
    expect(seedFromTemplate(dataDir, template)).toBe(true);
    expect(seedFromTemplate(dataDir, template)).toBe(false);
  });

  it('is not used when another PGlite version made it', () => {
    const other = join(dir, 'other-version');
    seedFromTemplate(other, template);
    const stamp = readStamp(template);
    if (!stamp) throw new Error('the template has no stamp');
    writeStamp(other, { ...stamp, pglite: '0.0.1' });
    expect(seedFromTemplate(join(dir, 'from-other'), other)).toBe(false);
    expect(existsSync(join(dir, 'from-other'))).toBe(false);
  });
});
