import { LapinError } from '../errors.js'

/** What a consumer's `queueUnavailable` event tells. */
export interface QueueUnavailableInfo {
  /** The queue. */
  queue: string
  /** `QUEUE_UNAVAILABLE`, with the broker's refusal as its `cause`, `replyCode` and `replyText`. */
  error: LapinError
  /** Failed attempts to consume it so far, from 1. */
  attempt: number
  /** Milliseconds until the next attempt. */
  delay: number
}

/**
 * The broker's refusal when a queue exists but cannot be reached: a classic queue whose node is
 * down or cut off (RabbitMQ answers `404 NOT_FOUND - home node '…' of durable queue '…' … is down
 * or inaccessible`). Such a queue comes back with its node; the consumer tries again.
 */
export function queueUnavailable(error: LapinError, queue: string, delay: number): LapinError | undefined {
  if (error.replyCode !== 404 || !/is down or inaccessible/.test(error.replyText ?? error.message))
    return undefined
  return new LapinError(
    'QUEUE_UNAVAILABLE',
    `queue '${queue}' is unavailable (its node is down or cut off from this one); consuming again in ${delay} ms`,
    { cause: error, replyCode: error.replyCode, replyText: error.replyText },
  )
}
