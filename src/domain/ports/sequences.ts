/** Logical replication never copies sequence values: the cutover sets them on the target itself. */
export interface SequenceCopyResult {
  copied: number;
  /** Sequences never used on the source: left alone on the target. */
  unused: number;
  elapsedMs: number;
}

/** Copies every sequence's value from the frozen source to the target (plus the profile's margin). */
export interface SequenceCopier {
  copy(): Promise<SequenceCopyResult>;
  /**
   * While syncing: sets every target sequence behind its source value plus the margin, so the copy
   * inside the freeze has nothing (or one statement) to do.
   */
  pushAhead?(): Promise<unknown>;
  /** Gives back the connections pushAhead() kept open for the copy, when the copy never ran. */
  close?(): Promise<void>;
}
