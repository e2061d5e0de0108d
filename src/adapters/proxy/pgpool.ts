/**
 * Pgpool-II (4.3) in raw mode: every query goes to the lowest-numbered live node. The source is node
 * `sourceNode` (DISALLOW_TO_FAILOVER in steady state, so a health-check blip cannot move traffic early),
 * the target is node `targetNode`, configured in advance (backend_hostname is not reloadable).
 * Cutover = flag the source ALLOW_TO_FAILOVER, reload, detach it, verify with node info.
 * Rollback (repoint to the source) = attach it, verify, flag it DISALLOW_TO_FAILOVER again.
 * Pgpool cannot pause: freeze() delegates to an in-database freeze, and every client session is dropped
 * when the main node changes ("Restart all children").
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../log.js';
import { CodedError, ErrorCode } from '../../errors.js';
import type { Secret } from '../../secret.js';
import { atomicWrite } from './files.js';
import { PcpClient, type PcpNodeInfo } from './pcp-client.js';
import type { Endpoint, WriteFreeze } from '../../domain/ports/writes.js';
import type { ProxyAdmin, ProxyStatus } from './proxy-admin.js';

export interface PgpoolAdminOptions {
  pcp: { host: string; port: number; user: string; password: Secret };
  sourceNode: number;
  targetNode: number;
  /**
   * pgpool.conf, so the bot can flip `backend_flagN` before a detach. Without it the operator must set
   * the source's flag to ALLOW_TO_FAILOVER by hand before cutover (repoint says so when it is not).
   */
  configFile?: string;
  /** The in-database freeze used as this proxy's freeze (pgpool has no pause). */
  freeze?: WriteFreeze;
  /** The database name shown in status (pgpool routes every database the same way). */
  database?: string;
  /** How long to wait for a detach/attach to take effect. */
  switchTimeoutMs?: number;
  pcpTimeoutMs?: number;
  logger: Logger;
}

const ALLOW = 'ALLOW_TO_FAILOVER';
const DISALLOW = 'DISALLOW_TO_FAILOVER';

export class PgpoolAdmin implements ProxyAdmin {
  readonly kind = 'pgpool' as const;
  readonly canPause = false;
  readonly clientImpact = 'connections-dropped' as const;
  readonly limitations: readonly string[] = [
    'Pgpool-II cannot pause clients: the freeze is done in the database, so writes fail with an error while frozen.',
    'Switching the backend drops every client session ("restart all children"), at cutover and again on rollback: applications must reconnect.',
    'The target must already be configured as a pgpool backend node; its host and port cannot change without restarting pgpool.',
    'PCP has no TLS: keep it on localhost or a private network.',
  ];

  readonly #options: PgpoolAdminOptions;
  readonly #log: Logger;

  constructor(options: PgpoolAdminOptions) {
    if (options.sourceNode === options.targetNode) {
      throw new CodedError(ErrorCode.ProxyAdminFailed, 'Pgpool sourceNode and targetNode must differ');
    }
    this.#options = options;
    this.#log = options.logger.child({ name: 'proxy', proxy: 'pgpool' });
  }

  async inspect(): Promise<ProxyStatus> {
    const nodes = await this.#withPcp((pcp) => pcp.allNodeInfo());
    const main = mainNode(nodes);
    const frozen = this.#options.freeze ? await this.#frozenState() : false;
    const describe = (n: PcpNodeInfo) => `node ${n.id} ${n.host}:${n.port} ${n.up ? 'up' : 'down'}`;
    return {
      pointsTo: main ? { host: main.host, port: main.port, database: this.#options.database ?? '*' } : null,
      frozen,
      healthy: main !== undefined,
      detail: `pgpool raw mode, main node ${main?.id ?? 'none'}; ${nodes.map(describe).join(', ')}`,
    };
  }

  async #frozenState(): Promise<boolean> {
    const freeze = this.#options.freeze as WriteFreeze & { isFrozen?: () => Promise<boolean> };
    return typeof freeze.isFrozen === 'function' ? freeze.isFrozen() : false;
  }

  async freeze(): Promise<void> {
    if (!this.#options.freeze) {
      throw new CodedError(
        ErrorCode.ProxyUnsupported,
        'Pgpool-II cannot pause clients; configure freeze.method read-only-roles or read-only-database',
      );
    }
    await this.#options.freeze.freeze();
  }

  async resume(): Promise<void> {
    if (!this.#options.freeze) return;
    await this.#options.freeze.resume();
  }

  /**
   * Makes the node at `to`'s host and port pgpool's main node: live nodes numbered below it are detached
   * (after flagging them ALLOW_TO_FAILOVER), and the node itself is attached if it is down. Repointing to
   * the source re-flags it DISALLOW_TO_FAILOVER. Verified with node info; ProxyVerifyFailed otherwise.
   */
  async repoint(to: Endpoint): Promise<void> {
    // PCP connections stay short: pgpool's failover waits for open PCP workers to finish, and a request
    // sent while a failover is still finishing is dropped, so every step uses its own connection,
    // polls with fresh ones, and re-sends a request that did not take.
    const nodes = await this.#withPcp((pcp) => pcp.allNodeInfo());
    const wanted = nodes.find((n) => n.host === to.host && n.port === to.port);
    if (!wanted) {
      throw new CodedError(
        ErrorCode.ProxyUnsupported,
        `Pgpool has no backend node for ${to.host}:${to.port}; configure it as backend node ${this.#options.targetNode} in pgpool.conf and restart pgpool first`,
        { details: { host: to.host, port: to.port } },
      );
    }
    const toDetach = nodes.filter((n) => n.id < wanted.id && n.up).map((n) => n.id);
    this.#log.info({ node: wanted.id, detach: toDetach }, 'repointing pgpool');

    const switched = !wanted.up || toDetach.length > 0;
    if (!wanted.up) {
      await this.#request(
        (pcp) => pcp.attachNode(wanted.id),
        (all) => all[wanted.id]?.up === true,
        `node ${wanted.id} to come up (attach)`,
      );
    }
    if (toDetach.length > 0) {
      await this.#setFlags(toDetach, ALLOW);
      await this.#request(
        async (pcp) => {
          const now = await pcp.allNodeInfo();
          for (const id of toDetach) if (now[id]?.up) await pcp.detachNode(id);
        },
        (all) => toDetach.every((id) => all[id]?.up === false),
        `node(s) ${toDetach.join(', ')} to go down (detach)`,
      );
    }
    const main = mainNode(await this.#withPcp((pcp) => pcp.allNodeInfo()));
    if (main?.id !== wanted.id) {
      throw new CodedError(
        ErrorCode.ProxyVerifyFailed,
        `Pgpool did not switch: main node is ${main ? `${main.id} (${main.host}:${main.port})` : 'none'}, wanted ${wanted.id}`,
        { details: { wanted: wanted.id, main: main?.id ?? null } },
      );
    }
    if (wanted.id === this.#options.sourceNode && this.#options.configFile) {
      // Back on the source (rollback): a source failure must not fail over to the target on its own.
      await this.#setFlags([wanted.id], DISALLOW, switched ? 3000 : 0);
    }
    this.#log.info({ node: wanted.id }, 'pgpool main node switched and verified');
  }

  /** Sends a request, polls node info on fresh connections until `done`, re-sends it every 2 s. */
  async #request(send: (pcp: PcpClient) => Promise<void>, done: (nodes: PcpNodeInfo[]) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + (this.#options.switchTimeoutMs ?? 15_000);
    let last = 'no node info';
    for (;;) {
      await this.#withPcp(send);
      const resendAt = Date.now() + 2000;
      while (Date.now() < resendAt) {
        await sleep(50);
        try {
          const nodes = await this.#withPcp((pcp) => pcp.allNodeInfo());
          if (done(nodes)) return;
          last = nodes.map((n) => `${n.id}:${n.status}`).join(' ');
        } catch (error) {
          last = (error as Error).message; // the PCP process restarts during a failover
        }
        if (Date.now() > deadline) {
          throw new CodedError(ErrorCode.ProxyVerifyFailed, `Pgpool: timed out waiting for ${what}`, {
            details: { nodes: last },
          });
        }
      }
      this.#log.warn({ what }, 'pgpool request did not take yet; sending it again');
    }
  }

  async close(): Promise<void> {
    // PCP connections are opened per operation and always closed.
  }

  /** Rewrites backend_flagN in pgpool.conf (atomically), reloads, and checks pgpool runs with it. */
  async #setFlags(nodes: number[], flag: string, settleMs = 0): Promise<void> {
    const current = await this.#withPcp((pcp) => pcp.poolStatus());
    const stale = nodes.filter((n) => !flagMatches(current.get(`backend_flag${n}`), flag));
    if (stale.length === 0) return;
    const file = this.#options.configFile;
    if (!file) {
      throw new CodedError(
        ErrorCode.ProxyAdminFailed,
        `Pgpool backend_flag${stale[0]} must be ${flag} before the switch; set it in pgpool.conf and reload, or give the bot the pgpool.conf path (proxy.configFile)`,
      );
    }
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (cause) {
      throw new CodedError(ErrorCode.ProxyAdminFailed, `Cannot read pgpool.conf at ${file}`, { cause });
    }
    for (const node of stale) text = setConfLine(text, `backend_flag${node}`, `'${flag}'`);
    await atomicWrite(file, text);
    // A reload is handled only after a running failover ends, so poll with fresh connections.
    const deadline = Date.now() + (this.#options.switchTimeoutMs ?? 15_000);
    let last = '';
    // Right after a switch pgpool is still finishing the failover: the PCP process is restarted from
    // the parent, whose config may predate the reload; insist on the flag for `settleMs`.
    let seenSince: number | undefined;
    for (;;) {
      await this.#withPcp((pcp) => pcp.reloadConfig('local'));
      const resendAt = Date.now() + 2000;
      while (Date.now() < resendAt) {
        await sleep(50);
        try {
          const status = await this.#withPcp((pcp) => pcp.poolStatus());
          if (stale.every((n) => flagMatches(status.get(`backend_flag${n}`), flag))) {
            seenSince ??= Date.now();
            if (Date.now() - seenSince >= settleMs) {
              this.#log.info({ nodes: stale, flag }, 'pgpool backend flags changed');
              return;
            }
          } else seenSince = undefined;
        } catch (error) {
          last = (error as Error).message;
        }
        if (Date.now() > deadline) {
          throw new CodedError(ErrorCode.ProxyVerifyFailed, `Pgpool did not pick up backend_flag ${flag} after reload`, {
            details: { last },
          });
        }
      }
    }
  }

  async #withPcp<T>(run: (pcp: PcpClient) => Promise<T>): Promise<T> {
    const { pcp } = this.#options;
    const client = await PcpClient.connect({ ...pcp, timeoutMs: this.#options.pcpTimeoutMs ?? 10_000 });
    try {
      return await run(client);
    } finally {
      await client.close();
    }
  }
}

/** In raw mode pgpool sends everything to the lowest-numbered live node. */
export function mainNode(nodes: readonly PcpNodeInfo[]): PcpNodeInfo | undefined {
  return nodes.filter((n) => n.up).sort((a, b) => a.id - b.id)[0];
}

function flagMatches(value: string | undefined, flag: string): boolean {
  // pcp_pool_status shows e.g. "DISALLOW_TO_FAILOVER" or "ALLOW_TO_FAILOVER|..."; ALLOW is a substring of DISALLOW.
  if (value === undefined) return false;
  const parts = value.split(/[|,\s]+/).map((p) => p.replace(/'/g, '').toUpperCase());
  return parts.includes(flag);
}

/** Replaces (or appends) `key = value` in a pgpool.conf text, keeping every other line as it was. */
export function setConfLine(text: string, key: string, value: string): string {
  const line = new RegExp(`^\\s*${key}\\s*=.*$`, 'm');
  const replacement = `${key} = ${value}`;
  if (line.test(text)) return text.replace(line, replacement);
  return `${text.endsWith('\n') || text === '' ? text : `${text}\n`}${replacement}\n`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
