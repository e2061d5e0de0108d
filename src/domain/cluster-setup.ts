/**
 * Set-up the bot can do on the DigitalOcean cluster itself, as plans: each is shown first (in the dry
 * run and by `/migrate setup <action>`), and done only when an operator confirms it. Pure.
 *
 * - `trusted-sources`: append the proxy's and the bot's public addresses to the cluster's trusted
 *   sources, keeping every existing rule.
 * - `app-user`: (connection-parameters) create a user for the applications on the target, so the
 *   parameters handed out at the switch are its own, not doadmin's.
 *
 * Fetching the cluster's CA is no set-up step: reading it changes nothing, and the bot always verifies
 * the target with it (verify-full) when DigitalOcean says the connection uses TLS.
 */
import { addressKind } from './addresses.js';
import { ipAllowed } from './preflight.js';

export const SETUP_ACTIONS = ['trusted-sources', 'app-user'] as const;
export type SetupAction = (typeof SETUP_ACTIONS)[number];

export interface WantedAddress {
  who: 'proxy' | 'bot';
  address: string;
}

export type SetupPlan =
  | {
      action: 'trusted-sources';
      /** Rules to append (ip_addr). */
      add: WantedAddress[];
      /** Already admitted by an existing rule. */
      admitted: WantedAddress[];
      /** Loopback or private: no trusted source can name them. */
      notPublic: WantedAddress[];
      /** How many rules exist (all kept). */
      existingRules: number;
    }
  | { action: 'app-user'; user: string; applicable: boolean; exists: boolean };

/** Whether a plan would change anything. */
export function planChanges(plan: SetupPlan): boolean {
  return plan.action === 'trusted-sources' ? plan.add.length > 0 : plan.applicable && !plan.exists;
}

export function planTrustedSources(rules: readonly { type: string; value: string }[], wanted: readonly WantedAddress[]): SetupPlan {
  const ipRules = rules.filter((r) => r.type === 'ip_addr').map((r) => r.value);
  const plan = { action: 'trusted-sources' as const, add: [] as WantedAddress[], admitted: [] as WantedAddress[], notPublic: [] as WantedAddress[], existingRules: rules.length };
  for (const w of wanted) {
    if (addressKind(w.address) !== 'public') plan.notPublic.push(w);
    else if (ipRules.some((rule) => ipAllowed(w.address, rule))) plan.admitted.push(w);
    else if (!plan.add.some((a) => a.address === w.address)) plan.add.push(w);
  }
  return plan;
}

/** The application user's name on the target: `<database>_app`, in the characters DigitalOcean accepts. */
export function appUserName(database: string): string {
  return `${database.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 58)}_app`;
}
