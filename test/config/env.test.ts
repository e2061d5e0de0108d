import { describe, expect, it } from 'vitest';
import { loadEnv } from '../../src/config/env.js';
import { ErrorCode } from '../../src/errors.js';

const valid = {
  SLACK_BOT_TOKEN: 'xoxb-secret-bot-token',
  SLACK_SIGNING_SECRET: 'signing-secret-value',
  DIGITALOCEAN_TOKEN: 'dop_v1_secret',
};

describe('the environment', () => {
  it('fills defaults and wraps secrets', () => {
    const env = loadEnv(valid);
    expect(env).toMatchObject({
      PORT: 3000,
      DIGITALOCEAN_API_URL: 'https://api.digitalocean.com',
      DATA_DIR: './data',
      PGCUTOVER_CONFIG: './pgcutover.yml',
      LOG_LEVEL: 'info',
    });
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.SLACK_BOT_TOKEN.reveal()).toBe('xoxb-secret-bot-token');
    expect(JSON.stringify(env)).not.toContain('secret');
  });

  it('names every missing variable without echoing any value', () => {
    const attempt = () => loadEnv({ SLACK_SIGNING_SECRET: 'signing-secret-value', PORT: 'eighty' });
    expect(attempt).toThrow(expect.objectContaining({ code: ErrorCode.ConfigInvalid }));
    try {
      attempt();
    } catch (error) {
      const message = (error as Error).message;
      // One line each, saying where the credential comes from.
      expect(message).toContain("SLACK_BOT_TOKEN: is required; it is the Bot User OAuth Token (xoxb-…) on your Slack app's OAuth & Permissions page\n");
      expect(message).toContain('DIGITALOCEAN_TOKEN: is required; it is a DigitalOcean API token (control panel → API → Tokens)');
      expect(message).toContain('PORT:');
      expect(message).not.toContain('signing-secret-value');
    }
  });

  it('names the missing signing secret together with the other missing variables', () => {
    expect(() => loadEnv({})).toThrow(/SLACK_BOT_TOKEN: is required.*\n.*DIGITALOCEAN_TOKEN: is required.*\n.*SLACK_SIGNING_SECRET: is required in HTTP mode/s);
    expect(() => loadEnv({ SLACK_APP_TOKEN: 'xapp-socket-mode' })).not.toThrow(/SLACK_SIGNING_SECRET/);
  });

  it('says what is wrong with a malformed variable, not that it is required', () => {
    expect(() => loadEnv({ ...valid, PORT: 'abc' })).toThrow(/PORT: must be a number$/m);
    expect(() => loadEnv({ ...valid, PORT: 'abc' })).not.toThrow(/is required/);
  });

  it('refuses a DATABASE_URL that is not a PostgreSQL URL, without echoing it', () => {
    for (const bad of ['orders-db', 'db.internal:5432/orders', 'https://db.internal/orders', 'postgres://u:p%zz@db/orders', 'postgres:///orders']) {
      expect(() => loadEnv({ ...valid, DATABASE_URL: bad }), bad).toThrow(/DATABASE_URL: must be a PostgreSQL URL like postgres:\/\/user:password@host:5432\/database/);
    }
    try {
      loadEnv({ ...valid, DATABASE_URL: 'secret-looking-value' });
    } catch (error) {
      expect((error as Error).message).not.toContain('secret-looking-value');
    }
    for (const good of ['postgres://u:p@db.internal:5432/orders', 'postgresql://db/orders?sslmode=require', 'postgres:///orders?host=/var/run/postgresql']) {
      expect(loadEnv({ ...valid, DATABASE_URL: good }).DATABASE_URL?.reveal()).toBe(good);
    }
  });

  it('needs a signing secret in HTTP mode but not in Socket Mode', () => {
    const { SLACK_SIGNING_SECRET: _unused, ...withoutSecret } = valid;
    expect(() => loadEnv(withoutSecret)).toThrow(/SLACK_SIGNING_SECRET: is required in HTTP mode/);
    expect(loadEnv({ ...withoutSecret, SLACK_APP_TOKEN: 'xapp-1-abc' }).SLACK_APP_TOKEN?.reveal()).toBe('xapp-1-abc');
  });

  it('rejects a bot token of the wrong kind', () => {
    expect(() => loadEnv({ ...valid, SLACK_BOT_TOKEN: 'xoxp-user-token' })).toThrow(/SLACK_BOT_TOKEN: must start with "xoxb-"/);
  });

  it('treats empty variables as unset', () => {
    const env = loadEnv({ ...valid, PORT: '', DATABASE_URL: '' });
    expect(env.PORT).toBe(3000);
    expect(env.DATABASE_URL).toBeUndefined();
  });
});

describe('HOST', () => {
  it('is unset by default (every interface), takes an address or host name, and names a bad value', () => {
    expect(loadEnv(valid).HOST).toBeUndefined();
    expect(loadEnv({ ...valid, HOST: '127.0.0.1' }).HOST).toBe('127.0.0.1');
    expect(loadEnv({ ...valid, HOST: '::1' }).HOST).toBe('::1');
    expect(loadEnv({ ...valid, HOST: 'localhost' }).HOST).toBe('localhost');
    expect(() => loadEnv({ ...valid, HOST: 'not a host' })).toThrow(/HOST: must be an IP address or a host name/);
  });
});
