/**
 * Starting DO's online migration is two steps: the PUT, which can answer 200 and fail moments later
 * (Terraform's provider: "Requests can pass the API precheck and returns 200 response but still fail
 * the migration quickly"), then GETs until the migration shows it is alive.
 */
import { CodedError, ErrorCode } from '../../errors.js';
import type { DigitalOceanApi, OnlineMigration, StartMigrationRequest } from '../../domain/ports/digitalocean.js';

export interface StartAndConfirmOptions {
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /** Pause between status polls. Default 2 s. */
  pollIntervalMs?: number;
  /**
   * How long to watch after the PUT. Default 20 s. A migration still `running` (initial copy) at the
   * end is returned as is: the copy can take hours, and the session's monitor keeps polling.
   */
  watchMs?: number;
}

/**
 * PUT, then poll GET: resolves with the migration once it is `syncing` or `done` (or still `running`
 * after `watchMs`); rejects with DoMigrationFailed when it turns `error` or `canceled`.
 */
export async function startAndConfirm(
  api: DigitalOceanApi,
  clusterUuid: string,
  request: StartMigrationRequest,
  options: StartAndConfirmOptions = {},
): Promise<OnlineMigration> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = options.now ?? Date.now;
  const interval = options.pollIntervalMs ?? 2000;
  const deadline = now() + (options.watchMs ?? 20_000);
  const started = await api.startOnlineMigration(clusterUuid, request);
  let latest = started;
  for (;;) {
    if (latest.status === 'syncing' || latest.status === 'done') return latest;
    if (latest.status === 'error' || latest.status === 'canceled') {
      throw new CodedError(
        ErrorCode.DoMigrationFailed,
        `DigitalOcean accepted the migration, then reported it as "${latest.status}". ` +
          'Check that the target can reach the source (trusted sources, listen_addresses, pg_hba.conf) and that the source user is a superuser, then start again.',
        { details: { migrationId: latest.id, status: latest.status } },
      );
    }
    if (now() >= deadline) return latest;
    await sleep(interval);
    const current = await api.getOnlineMigration(clusterUuid);
    if (current && current.id === started.id) latest = current;
    else if (current) {
      throw new CodedError(
        ErrorCode.DoMigrationFailed,
        `DigitalOcean reports migration ${current.id}, not the one just started (${started.id}): someone else started or replaced it.`,
        { details: { migrationId: started.id, reported: current.id } },
      );
    }
  }
}
