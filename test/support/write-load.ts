/**
 * A bounded batch writer for replication tests: inserts `rowsPerBatch` rows into `table` (column `note`)
 * in a loop until stop(), which resolves to the number of rows written. Loopback only.
 *
 * NOTE (proxy engineer): this file was accidentally overwritten while untracked; this is a
 * reconstruction of the API used by test/replication/online-migration.test.ts. Please check it
 * against your original.
 */
import pg from 'pg';

export interface BatchWriteLoadOptions {
  table: string;
  rowsPerBatch?: number;
  /** Stops by itself after this long (ms). */
  maxDurationMs?: number;
}

export interface BatchWriteLoad {
  /** Stops writing and resolves to the number of rows written. */
  stop(): Promise<number>;
}

export async function startWriteLoad(connectionString: string, options: BatchWriteLoadOptions): Promise<BatchWriteLoad> {
  const url = new URL(connectionString);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) throw new Error('write-load only writes to loopback');
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(options.table)) throw new Error(`invalid table name ${options.table}`);
  const rows = options.rowsPerBatch ?? 1000;
  const stopAt = Date.now() + (options.maxDurationMs ?? 60_000);
  const client = new pg.Client({ connectionString });
  client.on('error', () => undefined);
  await client.connect();
  let stopping = false;
  let written = 0;
  const running = (async () => {
    while (!stopping && Date.now() < stopAt) {
      const result = await client.query(
        `INSERT INTO ${options.table} (note) SELECT 'load ' || g FROM generate_series(1, ${rows}) g`,
      );
      written += result.rowCount ?? 0;
    }
  })();
  return {
    async stop() {
      stopping = true;
      await running.catch(() => undefined);
      await client.end().catch(() => undefined);
      return written;
    },
  };
}
