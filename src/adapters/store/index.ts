import type { Env } from '../../config/env.js';
import type { Logger } from '../../log.js';
import { AuditLog } from './audit-log.js';
import { openEmbedded, openPostgres, type Database } from './database.js';
import { migrate } from './migrate.js';
import { SessionStore } from './session-store.js';

export interface Store {
  db: Database;
  sessions: SessionStore;
  audit: AuditLog;
}

/** Opens the configured engine (DATABASE_URL, else embedded under DATA_DIR) and brings its schema up to date. */
export async function openStore(env: Pick<Env, 'DATABASE_URL' | 'DATA_DIR'>, log: Logger): Promise<Store> {
  const db = env.DATABASE_URL ? openPostgres(env.DATABASE_URL, log) : await openEmbedded(`${env.DATA_DIR}/store`);
  try {
    const applied = await migrate(db);
    log.info({ engine: db.engine, applied }, 'store ready');
  } catch (error) {
    await db.close().catch(() => undefined);
    throw error;
  }
  return { db, sessions: new SessionStore(db), audit: new AuditLog(db) };
}
