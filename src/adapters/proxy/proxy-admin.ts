/**
 * The proxies' drivers implement both capabilities of the domain (src/domain/ports/writes.ts); whether
 * a driver's freeze really holds clients is a property of the driver, used only by the factories.
 */
import type { Router, WriteFreeze } from '../../domain/ports/writes.js';

export type { Endpoint, RouterStatus as ProxyStatus } from '../../domain/ports/writes.js';

export interface ProxyAdmin extends Router, Omit<WriteFreeze, 'prepare'> {
  /** Whether freeze() holds clients (PgBouncer PAUSE) rather than delegating or being unsupported. */
  readonly canPause: boolean;
}
