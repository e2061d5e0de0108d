/**
 * Verification at the switch point: both sides are captured inside the freeze, right after the fence
 * (source == target there), and compared after the resume, with no added downtime.
 *
 *   before the freeze   prepare()          holds one connection per side
 *   inside the freeze   exportSnapshots()  after the fence: a repeatable-read snapshot exported on each
 *                                          side, one round trip each, both at once
 *   after the resume    verify()           counts and checksums as of those snapshots; ends them
 */
import type { VerificationReport, VerifyLimits } from '../switch-point.js';

export interface SwitchPointSnapshots {
  source: string;
  target: string;
  elapsedMs: number;
}

export interface SwitchPointVerifier {
  prepare(): Promise<void>;
  exportSnapshots(): Promise<SwitchPointSnapshots>;
  /** Soon after the resume: the exported transactions hold back vacuum on both sides until it ends. */
  verify(limits?: VerifyLimits): Promise<VerificationReport>;
  /** Gives back the held connections (ending any exported transaction). */
  close(): Promise<void>;
}
