/**
 * Configuration problems in an operator's words, for the environment and the profiles file alike.
 * Never echoes a value (it may be a secret): only what kind of value was found.
 */
import type { z } from 'zod';

const EXPECTED: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping of keys',
  record: 'a mapping of keys',
};

/** The kind of a value found (`undefined` = the key or variable is absent). */
export function kindOf(value: unknown): string {
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return 'text';
  if (typeof value === 'number') return 'a number';
  if (typeof value === 'boolean') return 'true or false';
  if (typeof value === 'object') return 'a mapping of keys';
  return typeof value;
}

/**
 * What is wrong, given the value found at the issue's path. `found` undefined means absent;
 * `showKind: false` leaves out what was found (every environment variable is text).
 */
export function describeIssue(issue: z.core.$ZodIssue, found: unknown, showKind = true): string {
  switch (issue.code) {
    case 'invalid_type': {
      // Zod reports a wrong type and a missing key alike; only the second is "required".
      if (found === undefined) return 'is required';
      const expected = `must be ${EXPECTED[issue.expected] ?? issue.expected}`;
      return showKind ? `${expected}, not ${kindOf(found)}` : expected;
    }
    case 'unrecognized_keys':
      return `unknown key(s): ${issue.keys.join(', ')}`;
    case 'invalid_union':
      // A discriminated union reports at its discriminator key (e.g. proxy.kind).
      if (issue.discriminator && 'options' in issue && issue.options?.length) {
        const options = issue.options.map((o) => `"${String(o)}"`).join(', ');
        return found === undefined ? `is required, one of ${options}` : `must be one of ${options}`;
      }
      return issue.message;
    default:
      return issue.message;
  }
}

/** The raw value at `path` in parsed YAML (undefined when a key on the way is absent). */
export function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let node = data;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}
