/**
 * What the DigitalOcean-aware preflight needs from a profile: the source's other databases, the target
 * database, a login as the application's role to the target (with the same TLS verification the bot
 * uses), the proxy's host and the public addresses DigitalOcean sees.
 */
import type { Profile } from '../config/profiles.js';
import { appUserName } from '../domain/cluster-setup.js';
import { isDigitalOceansApi } from './digitalocean/digitalocean-client.js';
import type { TargetConnection } from './digitalocean/target-connection.js';
import { databaseRunner, loginAs } from './source/do-preflight-facts.js';
import type { PreflightDeps } from './source/preflight-gatherer.js';

export function doPreflightDeps(
  profile: Profile,
  apiUrl: string | undefined,
  target: () => Promise<TargetConnection>,
): Pick<PreflightDeps, 'digitalocean' | 'publicAddresses' | 'proxyHost'> {
  const app = profile.application;
  const proxyHost = proxyHostOf(profile);
  return {
    digitalocean: {
      sourceIn: databaseRunner(profile.source),
      targetDatabase: profile.digitalocean.database,
      doIsRemote: isDigitalOceansApi(apiUrl),
      ...(profile.strategy === 'connection-parameters' ? { appUserName: appUserName(profile.digitalocean.database) } : {}),
      ...(app ? { appLogin: { user: app.user, login: async () => loginAs({ ...(await target()), user: app.user, password: app.password })() } } : {}),
    },
    ...(profile.digitalocean.publicAddresses ? { publicAddresses: profile.digitalocean.publicAddresses } : {}),
    ...(proxyHost ? { proxyHost } : {}),
  };
}

function proxyHostOf(profile: Profile): string | undefined {
  const proxy = profile.proxy;
  switch (proxy.kind) {
    case 'pgbouncer':
      return proxy.admin.host;
    case 'pgpool':
      return proxy.pcp.host;
    case 'http':
      return new URL(proxy.baseUrl).hostname;
    case 'none':
      return undefined;
  }
}
