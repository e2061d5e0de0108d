/**
 * The single place where errors become Slack messages. Known codes become a friendly ephemeral line
 * (the CodedError message is written for people); anything unknown becomes a generic message with a
 * short reference id that is logged with the full error. Never a stack trace, never a secret.
 */
import { randomBytes } from 'node:crypto';
import { asCodedError, ErrorCode, type CodedError } from '../../errors.js';
import type { Logger } from '../../log.js';

export interface ErrorReply {
  text: string;
  /** Set when the error was unexpected and logged under this reference. */
  reference?: string;
}

/** Prefixes per code; codes not listed are shown with the generic prefix when their message is for people. */
const PREFIX: Partial<Record<ErrorCode, string>> = {
  [ErrorCode.CommandInvalid]: ':grey_question:',
  [ErrorCode.ProfileNotFound]: ':grey_question:',
  [ErrorCode.ProfileNotAllowedHere]: ':no_entry:',
  [ErrorCode.NotAuthorized]: ':no_entry:',
  [ErrorCode.GateRefused]: ':no_entry:',
  [ErrorCode.ApprovalExpired]: ':hourglass:',
  [ErrorCode.SessionConflict]: ':arrows_counterclockwise:',
  [ErrorCode.InvalidTransition]: ':warning:',
  [ErrorCode.SessionAlreadyActive]: ':warning:',
  [ErrorCode.SessionNotFound]: ':grey_question:',
  [ErrorCode.PreflightFailed]: ':x:',
  [ErrorCode.FenceTimeout]: ':x:',
  [ErrorCode.FreezeFailed]: ':x:',
  [ErrorCode.FreezeBudgetExceeded]: ':hourglass:',
  [ErrorCode.ExecutorBusy]: ':hourglass_flowing_sand:',
};

/** Codes whose message is not meant for the channel (internal detail): shown generically with a reference. */
const GENERIC: ReadonlySet<ErrorCode> = new Set<ErrorCode>([ErrorCode.Internal, ErrorCode.ConfigInvalid]);

/** Codes that are ordinary refusals (logged at info, not as errors). */
const EXPECTED: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.CommandInvalid,
  ErrorCode.ProfileNotFound,
  ErrorCode.ProfileNotAllowedHere,
  ErrorCode.NotAuthorized,
  ErrorCode.GateRefused,
  ErrorCode.ApprovalExpired,
  ErrorCode.SessionConflict,
  ErrorCode.InvalidTransition,
  ErrorCode.SessionAlreadyActive,
  ErrorCode.SessionNotFound,
]);

export function errorReply(error: unknown, log: Logger, context: Record<string, unknown> = {}): ErrorReply {
  const coded: CodedError = asCodedError(error);
  if (GENERIC.has(coded.code)) {
    const reference = randomBytes(4).toString('hex');
    log.error({ err: error, reference, code: coded.code, ...context }, 'unexpected error answered in Slack');
    return {
      text: `:boom: Something went wrong on our side (reference \`${reference}\`). Nothing more was done; ask the bot's operators to look up this reference in the logs.`,
      reference,
    };
  }
  if (EXPECTED.has(coded.code)) log.info({ code: coded.code, ...context }, coded.message);
  else log.warn({ code: coded.code, details: coded.details, ...context }, coded.message);
  return { text: `${PREFIX[coded.code] ?? ':warning:'} ${oneParagraph(coded.message)}` };
}

/** Slack shows the first 3000 characters of a section; error messages stay short and single-paragraph. */
function oneParagraph(message: string): string {
  const trimmed = message.trim();
  return trimmed.length > 1500 ? `${trimmed.slice(0, 1500)}…` : trimmed;
}
