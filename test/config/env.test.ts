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
      expect(message).toContain('SLACK_BOT_TOKEN: is required');
      expect(message).toContain('DIGITALOCEAN_TOKEN: is required');
      expect(message).toContain('PORT:');
      expect(message).not.toContain('signing-secret-value');
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
