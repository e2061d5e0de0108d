/** Logical replication never copies sequence values: the cutover sets them on the target itself. */
export interface SequenceCopyResult {
  copied: number;
  /** Sequences never used on the source: left unused on the target (set back to their start). */
  unused: number;
  elapsedMs: number;
}

/** Copies every sequence's value from the frozen source to the target (plus the profile's margin). */
export interface SequenceCopier {
  copy(): Promise<SequenceCopyResult>;
}
