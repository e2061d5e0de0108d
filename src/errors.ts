/**
 * The one error taxonomy. Every failure the bot can explain carries a stable `code`, a message written
 * for the person in the channel, the underlying `cause`, and optional non-secret `details`.
 * `src/adapters/slack/texts.ts` is the single place where these become Slack messages.
 */
export const ErrorCode = {
  // configuration and start-up
  ConfigInvalid: 'config_invalid',
  // sessions and the state machine
  SessionNotFound: 'session_not_found',
  SessionAlreadyActive: 'session_already_active',
  SessionConflict: 'session_conflict',
  InvalidTransition: 'invalid_transition',
  // people and gates
  CommandInvalid: 'command_invalid',
  ProfileNotFound: 'profile_not_found',
  ProfileNotAllowedHere: 'profile_not_allowed_here',
  NotAuthorized: 'not_authorized',
  GateRefused: 'gate_refused',
  ApprovalExpired: 'approval_expired',
  // DigitalOcean
  DoUnauthorized: 'do_unauthorized',
  DoForbidden: 'do_forbidden',
  DoNotFound: 'do_not_found',
  DoRateLimited: 'do_rate_limited',
  DoUnavailable: 'do_unavailable',
  DoBadResponse: 'do_bad_response',
  DoRequestFailed: 'do_request_failed',
  /** DO accepted a start (200) and the migration then went to `error` or `canceled`. */
  DoMigrationFailed: 'do_migration_failed',
  // databases, replication and the fence
  DatabaseUnavailable: 'database_unavailable',
  LagUnknown: 'lag_unknown',
  FenceTimeout: 'fence_timeout',
  PreflightFailed: 'preflight_failed',
  // proxies and freezes
  ProxyAdminFailed: 'proxy_admin_failed',
  ProxyUnsupported: 'proxy_unsupported',
  ProxyVerifyFailed: 'proxy_verify_failed',
  FreezeFailed: 'freeze_failed',
  FreezeBudgetExceeded: 'freeze_budget_exceeded',
  // the cutover engine
  CutoverStepFailed: 'cutover_step_failed',
  ExecutorBusy: 'executor_busy',
  // Slack
  SlackApiFailed: 'slack_api_failed',
  /** Slack refused to post in the channel: the bot was not invited (or cannot see it). */
  BotNotInChannel: 'bot_not_in_channel',
  // anything not classified above
  Internal: 'internal',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Extra facts safe to show or log: never a password, token or connection string. */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | null | undefined>>;

export interface CodedErrorOptions {
  cause?: unknown;
  details?: ErrorDetails;
}

export class CodedError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, options: CodedErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CodedError';
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** A DigitalOcean API failure keeps what DO said, so an operator can quote it to DO support. */
export class DoApiError extends CodedError {
  readonly status: number | undefined;
  readonly doId: string | undefined;
  readonly requestId: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    extras: { status?: number; doId?: string; requestId?: string; retryAfterMs?: number; cause?: unknown },
  ) {
    super(code, message, {
      cause: extras.cause,
      details: { status: extras.status, doId: extras.doId, requestId: extras.requestId },
    });
    this.name = 'DoApiError';
    this.status = extras.status;
    this.doId = extras.doId;
    this.requestId = extras.requestId;
    this.retryAfterMs = extras.retryAfterMs;
  }
}

export function isCodedError(error: unknown): error is CodedError {
  return error instanceof CodedError;
}

/** Wraps anything thrown into a CodedError so the single error sink only deals with one shape. */
export function asCodedError(error: unknown): CodedError {
  if (isCodedError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new CodedError(ErrorCode.Internal, `Unexpected error: ${message}`, { cause: error });
}

/** Exhaustiveness guard for switches over unions. */
export function assertNever(value: never, what = 'value'): never {
  throw new CodedError(ErrorCode.Internal, `Unhandled ${what}: ${JSON.stringify(value)}`);
}
