// The `lapinmq` command's exit codes, mapped from `LapinError.code`, and the one-line error message
// it prints. Documented in docs/cli.md: keep the two in step.
import { LapinError } from '../index.js'
import { printable } from './message-output.js'

/** Exit codes of the `lapinmq` command. */
export const ExitCode = {
  /** Everything done: every message confirmed, consumed or moved. */
  OK: 0,
  /** A failure with no more precise code (a mismatch in the demo, an unexpected error). */
  FAILED: 1,
  /** Bad command line: unknown flag, bad value, missing argument. */
  USAGE: 2,
  /** A message was returned: no queue is bound for its exchange and routing key. */
  UNROUTABLE: 3,
  /** A message was nacked by the broker (e.g. a full queue that rejects publishes). */
  NACKED: 4,
  /**
   * No confirm (or, for a call, no reply) came before the deadline: the message may or may not
   * have been delivered.
   */
  TIMEOUT: 5,
  /** A queue or exchange does not exist. */
  NOT_FOUND: 6,
  /** Wrong credentials, no permission, an unknown vhost, or TLS that cannot be set up. */
  REFUSED: 7,
  /** The broker cannot be reached, or the connection was lost for good. */
  UNAVAILABLE: 8,
  /** The queue exists with other arguments, or is exclusive to another connection. */
  CONFLICT: 9,
  /** Any other broker or lapinmq error. */
  BROKER_ERROR: 10,
  /** Interrupted (Ctrl-C or SIGTERM) before the work was done; nothing was lost. */
  INTERRUPTED: 130,
  /**
   * stdout closed (the reader of a pipe left): what was written counts as delivered, the rest went
   * back. The status of a writer that a closed pipe stops (128 + SIGPIPE).
   */
  OUTPUT_CLOSED: 141,
} as const

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/** A command line that cannot work, found after parsing (e.g. a body given twice): exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

const byCode: Readonly<Record<string, ExitCode>> = {
  UNROUTABLE: ExitCode.UNROUTABLE,
  NO_ROUTE: ExitCode.UNROUTABLE,
  PUBLISH_NACKED: ExitCode.NACKED,
  CONFIRM_TIMEOUT: ExitCode.TIMEOUT,
  RPC_TIMEOUT: ExitCode.TIMEOUT,
  NOT_FOUND: ExitCode.NOT_FOUND,
  ACCESS_REFUSED: ExitCode.REFUSED,
  NOT_ALLOWED: ExitCode.REFUSED,
  TLS_CONFIG_INVALID: ExitCode.REFUSED,
  TLS_VERIFY_FAILED: ExitCode.REFUSED,
  CONNECTION_FAILED: ExitCode.UNAVAILABLE,
  CONNECTION_CLOSED: ExitCode.UNAVAILABLE,
  CONNECTION_FORCED: ExitCode.UNAVAILABLE,
  CHANNEL_CLOSED: ExitCode.UNAVAILABLE,
  PRECONDITION_FAILED: ExitCode.CONFLICT,
  RESOURCE_LOCKED: ExitCode.CONFLICT,
  ABORTED: ExitCode.INTERRUPTED,
}

/** The exit code for an error: by `LapinError.code`; bad arguments are usage errors. */
export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof LapinError) return byCode[err.code] ?? ExitCode.BROKER_ERROR
  if (err instanceof UsageError || err instanceof TypeError || err instanceof RangeError)
    return ExitCode.USAGE
  return ExitCode.FAILED
}

/**
 * One line describing an error, safe to print: the code first, any URL password redacted
 * (lapinmq's own messages never hold a password or a body; other errors might hold a URL), and
 * control characters escaped (a queue name in the broker's text may hold any).
 */
export function describeError(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  const safe = printable(
    text.replace(/((?:amqps?|https?):\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@').replace(/\s*\n\s*/g, ' '),
  )
  return err instanceof LapinError ? `${err.code}: ${safe}` : safe
}

const hints = new WeakMap<object, string>()

/** Attaches a line of advice that is printed after the error's own line. Returns the error. */
export function withHint<E>(err: E, hint: string): E {
  if (typeof err === 'object' && err !== null) hints.set(err, hint)
  return err
}

/** The advice attached with {@link withHint}, if any. */
export function hintOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? hints.get(err) : undefined
}
