/**
 * What a new application user may do on the target: read and write every table and use every sequence
 * of the target database's own schemas, as the bot's target user (doadmin) grants it. Run by
 * `/migrate setup app-user` right after DigitalOcean created the user.
 */
import pg from 'pg';
import type { DigitalOceanApi } from '../../domain/ports/digitalocean.js';
import { connect } from '../source/connect.js';
import { resolveTarget, type TargetProfile } from './target-connection.js';

export function applicationUserGrants(api: Pick<DigitalOceanApi, 'getCluster' | 'getCaCertificate'>) {
  return async (profile: TargetProfile, user: string): Promise<void> => {
    const client = await connect(await resolveTarget(api, profile), { applicationName: 'pgcutover-setup' });
    try {
      const role = pg.escapeIdentifier(user);
      const { rows } = await client.query<{ nspname: string; db: string }>(
        `SELECT nspname, current_database() AS db FROM pg_namespace
          WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'`,
      );
      await client.query('BEGIN');
      if (rows[0]) await client.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${pg.escapeIdentifier(rows[0].db)} TO ${role}`);
      for (const { nspname } of rows) {
        const schema = pg.escapeIdentifier(nspname);
        await client.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
        await client.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
        await client.query(`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${schema} TO ${role}`);
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      await client.end().catch(() => undefined);
    }
  };
}
