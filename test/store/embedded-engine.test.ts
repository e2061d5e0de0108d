/**
 * The embedded engine's WebAssembly is compiled once per process from PGlite's own file, so that its
 * compile can start early. A PGlite upgrade that moved the file would lose that without an error
 * (PGlite would load the file itself): this says so.
 */
import { describe, expect, it } from 'vitest';
import { compileEmbeddedEngine, openEmbedded } from '../../src/adapters/store/database.js';

describe('the embedded engine', () => {
  it("is compiled once per process from PGlite's module file, and stores open with it", async () => {
    const engine = await compileEmbeddedEngine();
    expect(Object.prototype.toString.call(engine)).toBe('[object WebAssembly.Module]');
    expect(await compileEmbeddedEngine()).toBe(engine);
    const db = await openEmbedded(undefined);
    try {
      expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await db.close();
    }
  });
});
