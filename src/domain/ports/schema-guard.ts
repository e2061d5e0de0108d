/**
 * The schema guard: the catalogs of source and target compared, cheaply enough for preflight, every
 * report tick and right before the freeze (drift blocks the freeze).
 */
import type { SchemaDifference } from '../schema-drift.js';

export interface SchemaComparison {
  /** sha-256 of each side's catalog: equal fingerprints mean no drift. */
  sourceFingerprint: string;
  targetFingerprint: string;
  differences: SchemaDifference[];
}

export interface SchemaGuard {
  compare(): Promise<SchemaComparison>;
}
