/**
 * A Database wrapper that counts the statements store code sends (inside transactions too) and the
 * rows they return, attributed to a session when one of the statement's parameters names it. BEGIN
 * and COMMIT, sent by the engines themselves, are not counted.
 */
import type { Database, QueryResult, SqlClient } from '../../src/adapters/store/database.js';

export interface StatementCounts {
  statements: number;
  rows: number;
  /** Per session id (one of the statement's parameters equals it). */
  bySession: Map<string, { statements: number; rows: number }>;
  /** Statements that named no single session (a pass's bulk loads). */
  shared: { statements: number; rows: number; texts: string[] };
}

export interface CountingDatabase extends Database {
  counts: StatementCounts;
  reset(): void;
}

const empty = (): StatementCounts => ({ statements: 0, rows: 0, bySession: new Map(), shared: { statements: 0, rows: 0, texts: [] } });

export function countingDatabase(db: Database, sessionIds: () => ReadonlySet<string>): CountingDatabase {
  let counts = empty();
  const record = (text: string, params: readonly unknown[], rows: number) => {
    counts.statements++;
    counts.rows += rows;
    const ids = sessionIds();
    const named = params.find((p): p is string => typeof p === 'string' && ids.has(p));
    if (named) {
      const entry = counts.bySession.get(named) ?? { statements: 0, rows: 0 };
      entry.statements++;
      entry.rows += rows;
      counts.bySession.set(named, entry);
    } else {
      counts.shared.statements++;
      counts.shared.rows += rows;
      counts.shared.texts.push(text.replace(/\s+/g, ' ').trim().slice(0, 80));
    }
  };
  const counted = (client: SqlClient): SqlClient => ({
    async query<Row>(text: string, params: readonly unknown[] = []): Promise<QueryResult<Row>> {
      const result = await client.query<Row>(text, params);
      record(text, params, result.rows.length);
      return result;
    },
    exec: (script) => client.exec(script),
  });
  const top = counted(db);
  return {
    engine: db.engine,
    query: top.query,
    exec: top.exec,
    transaction: (work) => db.transaction((tx) => work(counted(tx))),
    withTryAdvisoryLock: (key, work) => db.withTryAdvisoryLock(key, work),
    close: () => db.close(),
    get counts() {
      return counts;
    },
    reset() {
      counts = empty();
    },
  };
}
