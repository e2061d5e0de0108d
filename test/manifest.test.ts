/**
 * manifest.yml against Slack's official manifest JSON schema (draft-07, kept in
 * ../shared/slack-manifest-schema), plus the cross-field rules the schema does not encode.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { VERBS } from '../src/domain/commands.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Slack's schema beside the checkout (CI and developers have ../shared); its absence is a failure, not a skip. */
const SCHEMA_DIR = `${ROOT}../shared/slack-manifest-schema`;
const manifest = parse(readFileSync(`${ROOT}manifest.yml`, 'utf8')) as {
  features: { slash_commands: Array<{ command: string; url: string; usage_hint: string }>; app_home?: { home_tab_enabled?: boolean } };
  oauth_config: { scopes: { bot: string[] } };
  settings: {
    interactivity: { is_enabled: boolean; request_url?: string };
    event_subscriptions?: { request_url?: string; bot_events?: string[] };
    socket_mode_enabled: boolean;
  };
};

function validator() {
  if (!existsSync(SCHEMA_DIR)) throw new Error(`Slack's manifest schema is missing at ${SCHEMA_DIR}: check out shared/ beside the repository.`);
  const ajv = new Ajv({ allErrors: true, strict: false, formats: { uri: true } });
  const v1 = JSON.parse(readFileSync(`${SCHEMA_DIR}/schemas/manifest.schema.1.0.0.json`, 'utf8')) as object;
  return ajv.compile(v1);
}

describe('manifest.yml', () => {
  it('is valid against the official v1 manifest schema', () => {
    const validate = validator();
    const valid = validate(manifest);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  it('the validator does reject an invalid manifest (the upstream fixture and a typo)', () => {
    const validate = validator();
    const invalid = JSON.parse(readFileSync(`${SCHEMA_DIR}/examples/v1.manifest.invalid.json`, 'utf8')) as object;
    expect(validate(invalid)).toBe(false);
    expect(validate({ ...manifest, settings: { ...manifest.settings, interactivty: true } })).toBe(false);
  });
});

describe('manifest.yml cross-field rules', () => {
  it('declares /migrate with every verb and points commands and interactivity at /slack/events', () => {
    const command = manifest.features.slash_commands.find((c) => c.command === '/migrate');
    expect(command).toBeDefined();
    for (const verb of VERBS) expect(command!.usage_hint).toContain(verb);
    expect(command!.url).toMatch(/\/slack\/events$/);
    expect(manifest.settings.interactivity.is_enabled).toBe(true);
    // "Interactivity requires a Request URL" unless Socket Mode is on (apps.manifest.validate).
    if (!manifest.settings.socket_mode_enabled) expect(manifest.settings.interactivity.request_url).toMatch(/\/slack\/events$/);
  });

  it('enables the App Home tab and subscribes to app_home_opened at /slack/events', () => {
    expect(manifest.features.app_home?.home_tab_enabled).toBe(true);
    expect(manifest.settings.event_subscriptions?.bot_events).toContain('app_home_opened');
    // "Event Subscription requires either Request URL or Socket Mode Enabled" (apps.manifest.validate).
    if (!manifest.settings.socket_mode_enabled) expect(manifest.settings.event_subscriptions?.request_url).toMatch(/\/slack\/events$/);
  });

  it('asks for the minimum bot scopes', () => {
    expect([...manifest.oauth_config.scopes.bot].sort()).toEqual(['chat:write', 'commands', 'usergroups:read']);
  });
});

describe('manifest.socket-mode.yml', () => {
  const socketMode = parse(readFileSync(`${ROOT}manifest.socket-mode.yml`, 'utf8')) as typeof manifest;

  it('is valid against the official v1 manifest schema', () => {
    const validate = validator();
    expect(validate(socketMode)).toBe(true);
    expect(validate.errors ?? []).toEqual([]);
  });

  it('is manifest.yml with Socket Mode on and no request URLs, nothing else', () => {
    const { url: _url, ...command } = manifest.features.slash_commands[0]!;
    const { request_url: _interactivityUrl, ...interactivity } = manifest.settings.interactivity;
    const { request_url: _eventsUrl, ...events } = manifest.settings.event_subscriptions ?? {};
    expect(socketMode).toEqual({
      ...manifest,
      features: { ...manifest.features, slash_commands: [command, ...manifest.features.slash_commands.slice(1)] },
      settings: { ...manifest.settings, interactivity, event_subscriptions: events, socket_mode_enabled: true },
    });
  });
});
