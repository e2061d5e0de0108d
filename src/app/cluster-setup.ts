/**
 * `/migrate setup <action>`: set-up the bot does on the DigitalOcean cluster of the channel's profile.
 * Without `--confirm` it only shows what it would do (the same plan the dry run shows); with it, an
 * operator has it done. Both are audited: the plan as `setup_<action>_planned`, the change as
 * `setup_<action>` with what was added or created (never a password).
 */
import type { LoadedConfig, Profile } from '../config/profiles.js';
import { appUserName, planChanges, planTrustedSources, type SetupAction, type SetupPlan, type WantedAddress } from '../domain/cluster-setup.js';
import type { CreatedUser, DigitalOceanApi } from '../domain/ports/digitalocean.js';
import type { AuditLog } from '../domain/ports/stores.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { People } from './people.js';

export interface ClusterSetupDeps {
  config: LoadedConfig;
  people: Pick<People, 'roles'>;
  audit: Pick<AuditLog, 'append'>;
  api: Pick<DigitalOceanApi, 'listFirewallRules' | 'appendFirewallRules' | 'createUser' | 'getUser' | 'getCluster'>;
  /** Lets a new application user read and write the target database's tables and sequences. */
  grant: (target: Profile['digitalocean'], user: string) => Promise<void>;
}

export type SetupOutcome =
  | { action: 'trusted-sources'; added: string[]; plan: SetupPlan }
  | { action: 'app-user'; created: CreatedUser | null; plan: SetupPlan; parameters: AppUserParameters };

/** Where the applications connect as the new user (its password is shown masked, never whole). */
export interface AppUserParameters {
  host: string;
  port: number;
  database: string;
  user: string;
  sslmode: string;
}

export class ClusterSetup {
  readonly #d: ClusterSetupDeps;

  constructor(deps: ClusterSetupDeps) {
    this.#d = deps;
  }

  /** What `action` would do for the profile, touching nothing. */
  async plan(profile: Profile, action: SetupAction): Promise<SetupPlan> {
    const uuid = profile.digitalocean.clusterUuid;
    if (action === 'trusted-sources') return planTrustedSources(await this.#d.api.listFirewallRules(uuid), wantedAddresses(profile));
    const user = appUserName(profile.digitalocean.database);
    const applicable = profile.strategy === 'connection-parameters';
    return { action, user, applicable, exists: applicable && (await this.#d.api.getUser(uuid, user)) !== undefined };
  }

  /** The plan for the channel's profile (anyone in the channel may look), audited. */
  async show(channelId: string, userId: string, action: SetupAction): Promise<{ profileName: string; plan: SetupPlan }> {
    const [profileName, profile] = this.#profileOf(channelId);
    const plan = await this.plan(profile, action);
    await this.#d.audit.append({ sessionId: null, channelId, actor: userId, action: `setup_${action}_planned`, outcome: 'succeeded', details: { profile: profileName, changes: planChanges(plan) } });
    return { profileName, plan };
  }

  /** Done by an operator of the channel's profile, after seeing the plan; audited either way. */
  async run(channelId: string, userId: string, action: SetupAction): Promise<{ profileName: string; outcome: SetupOutcome }> {
    const [profileName, profile] = this.#profileOf(channelId);
    const audit = (outcome: 'succeeded' | 'refused' | 'failed', details: Record<string, unknown>) =>
      this.#d.audit.append({ sessionId: null, channelId, actor: userId, action: `setup_${action}`, outcome, details: { profile: profileName, ...details } });
    if (!(await this.#d.people.roles(userId, profile)).operator) {
      const reason = `Only an operator of \`${profileName}\` may change its DigitalOcean cluster.`;
      await audit('refused', { reason });
      throw new CodedError(ErrorCode.NotAuthorized, reason);
    }
    try {
      const plan = await this.plan(profile, action);
      const uuid = profile.digitalocean.clusterUuid;
      if (plan.action === 'trusted-sources') {
        const { added } = plan.add.length
          ? await this.#d.api.appendFirewallRules(uuid, plan.add.map((w) => ({ type: 'ip_addr', value: w.address, description: `pgcutover: ${w.who}` })))
          : { added: [] };
        await audit('succeeded', { added, keptRules: plan.existingRules });
        return { profileName, outcome: { action: 'trusted-sources', added, plan } };
      }
      if (!plan.applicable) throw new CodedError(ErrorCode.CommandInvalid, `\`${profileName}\` uses the ${profile.strategy} strategy: applications keep their own credentials, no user is created.`);
      const created = plan.exists ? null : await this.#d.api.createUser(uuid, plan.user);
      // Again when it existed: tables created since are covered too.
      await this.#d.grant(profile.digitalocean, plan.user);
      await audit('succeeded', { user: plan.user, created: created !== null });
      const { connection } = await this.#d.api.getCluster(uuid);
      const parameters = { host: connection.host, port: connection.port, database: profile.digitalocean.database, user: plan.user, sslmode: connection.ssl ? 'verify-full' : 'disable' };
      return { profileName, outcome: { action: 'app-user', created, plan, parameters } };
    } catch (error) {
      await audit('failed', { message: error instanceof Error ? error.message : String(error) });
      throw error;
    }
  }

  #profileOf(channelId: string): [string, Profile] {
    const found = [...this.#d.config.profiles.entries()].find(([, p]) => p.channels.includes(channelId));
    if (!found) throw new CodedError(ErrorCode.ProfileNotAllowedHere, 'No profile may be used in this channel; see `/migrate profiles`.');
    return found;
  }
}

/** The proxy's and the bot's public addresses, as the profile names them. */
export function wantedAddresses(profile: Profile): WantedAddress[] {
  const named = profile.digitalocean.publicAddresses ?? {};
  return [
    ...(named.proxy ? [{ who: 'proxy' as const, address: named.proxy }] : []),
    ...(named.bot ? [{ who: 'bot' as const, address: named.bot }] : []),
  ];
}
