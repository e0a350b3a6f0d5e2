// The headers a retry ladder reads and writes. The attempt counter is read only from a message that
// the broker dead-lettered out of one of this ladder's delay queues (its newest `x-death` entry
// says so), and clamped to the ladder's length: a counter a producer wrote cannot shorten the
// ladder, lengthen it, or overflow it.
import type { ResolvedRetry } from './options.js'

/** Failures so far (a number). */
export const attemptHeader = 'x-lapinmq-attempt'
/** When the first failure happened, in ms since the epoch. */
export const firstFailureHeader = 'x-lapinmq-first-failure'
/** Why the last attempt failed: a status, a timeout, or an error's name and message (≤ 256 characters). */
export const lastErrorHeader = 'x-lapinmq-last-error'
/** The queue the message failed in. */
export const queueHeader = 'x-lapinmq-queue'
/** The exchange the message was first published to. */
export const originalExchangeHeader = 'x-lapinmq-original-exchange'
/** The routing key the message was first published with. */
export const originalRoutingKeyHeader = 'x-lapinmq-original-routing-key'

/** Every header the ladder writes: a replay removes them to start the ladder over. */
export const ladderHeaders: readonly string[] = [
  attemptHeader,
  firstFailureHeader,
  lastErrorHeader,
  queueHeader,
  originalExchangeHeader,
  originalRoutingKeyHeader,
]

/** The longest `x-lapinmq-last-error`. */
const maxReason = 256

/**
 * @internal The failures a delivered message already had on this ladder: its `x-lapinmq-attempt`
 * when the broker brought it back from one of the ladder's delay queues, clamped to
 * `0..delays.length`; 0 for any other message (a first delivery, a replay, a forged counter).
 */
export function failuresSoFar(headers: Record<string, unknown>, retry: ResolvedRetry): number {
  if (!cameFromDelayQueue(headers, retry)) return 0
  const value = headers[attemptHeader]
  const n = typeof value === 'bigint' ? Number(value) : value
  if (typeof n !== 'number' || !(n >= 0)) return 0
  return Math.min(Math.floor(n), retry.delays.length)
}

/** True when the newest dead-lettering of the message was an expiry in one of the ladder's delay queues. */
function cameFromDelayQueue(headers: Record<string, unknown>, retry: ResolvedRetry): boolean {
  const deaths = headers['x-death']
  if (!Array.isArray(deaths)) return false
  const newest: unknown = deaths[0]
  if (typeof newest !== 'object' || newest === null) return false
  const { queue, reason } = newest as { queue?: unknown; reason?: unknown }
  return reason === 'expired' && typeof queue === 'string' && retry.delayQueues.includes(queue)
}

/** @internal What a moved message carries: its own headers with the ladder's, updated for this failure. */
export function failureHeaders(
  message: { headers: Record<string, unknown>; exchange: string; routingKey: string },
  failures: number,
  failuresBefore: number,
  reason: string,
  queue: string,
): Record<string, unknown> {
  const headers = { ...message.headers }
  const first = headers[firstFailureHeader]
  if (failuresBefore === 0 || typeof first !== 'number' || !(first > 0)) {
    // A new ladder: what a producer may have written is replaced.
    headers[firstFailureHeader] = Date.now()
    headers[originalExchangeHeader] = message.exchange
    headers[originalRoutingKeyHeader] = message.routingKey
  }
  headers[attemptHeader] = failures
  headers[lastErrorHeader] = reason
  headers[queueHeader] = queue
  return headers
}

/**
 * @internal A thrown value as a short reason: an error's name and message, cut to 256 characters;
 * never its stack. A `SyntaxError` by its name only: the parser's message quotes its input, which is
 * likely the body. Anything else is named by its type only (it may be part of the body).
 */
export function errorReason(err: unknown): string {
  if (err instanceof SyntaxError) return 'SyntaxError (its message is left out: it may quote the body)'
  if (err instanceof Error) return cut(`${err.name}: ${err.message}`)
  if (err === null || err === undefined) return `threw ${String(err)}`
  return `threw a ${typeof err}`
}

/** @internal A reason cut to the 256 characters a header keeps. */
export function cut(text: string): string {
  return text.length <= maxReason ? text : `${text.slice(0, maxReason - 1)}…`
}
