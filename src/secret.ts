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

/** A password as shown to people: no character of it, nor its length. */
export const MASKED = '••••••••';

/** Masks a value for display: no character of it, nor its length, shows. */
export function maskSecret(_value: string): string {
  return MASKED;
}
