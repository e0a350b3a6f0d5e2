import { LapinError } from '../errors.js'

/** What a consumer's `queueUnavailable` event tells. */
export interface QueueUnavailableInfo {
  /** The queue. */
  queue: string
  /** `QUEUE_UNAVAILABLE`: with the broker's refusal as its `cause`, `replyCode` and `replyText` when it refused. */
  error: LapinError
  /** Failed attempts to consume it so far, from 1. */
  attempt: number
  /** Milliseconds until the next attempt. */
  delay: number
}

/**
 * The error to report when `error` says a queue exists but cannot be consumed now, else
 * undefined: a classic queue whose node is down or cut off (RabbitMQ answers `404 NOT_FOUND - home
 * node '…' of durable queue '…' … is down or inaccessible`), or a queue that left a declare or a
 * consume without an answer (see {@link noAnswer}). Such a queue comes back with its nodes.
 */
export function asUnavailable(error: LapinError, queue: string): LapinError | undefined {
  if (error.code === 'QUEUE_UNAVAILABLE') return error
  if (error.replyCode !== 404 || !/is down or inaccessible/.test(error.replyText ?? error.message))
    return undefined
  return new LapinError(
    'QUEUE_UNAVAILABLE',
    `queue '${queue}' is unavailable: its node is down or cut off from this one`,
    { cause: error, replyCode: error.replyCode, replyText: error.replyText },
  )
}

/** No answer to a queue's declaration or consume within `timeoutMs`: a quorum queue without a majority, say. */
export function noAnswer(queue: string, timeoutMs: number): LapinError {
  return new LapinError(
    'QUEUE_UNAVAILABLE',
    `no answer from the broker about queue '${queue}' within ${timeoutMs} ms (a quorum queue without a majority of its nodes?)`,
  )
}
