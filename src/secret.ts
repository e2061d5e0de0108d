import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A password or token held so that it cannot leak by accident: JSON, string conversion and
 * util.inspect all print "[redacted]". Only `reveal()` hands out the value, at the point of use.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/** Masks a value for display: keeps a short hint at either end of long values only. */
export function maskSecret(value: string): string {
  if (value.length < 12) return '•'.repeat(8);
  return `${value.slice(0, 2)}${'•'.repeat(8)}${value.slice(-2)}`;
}
