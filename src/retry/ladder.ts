// Moves failed messages along a retry ladder: a confirmed copy goes to the next delay queue (or to
// the dead-letter queue), and only then may the caller ack the original. Until the confirm, the
// original stays unacked in the work queue: a crash or a lost connection at any point leaves the
// message there (and maybe its copy too, a duplicate), never nowhere.
import type { Connection } from '../connection/connection.js'
import { ConnectionClosedError } from '../errors.js'
import type { MessageProperties } from '../properties.js'
import { type SendOptions, shortStringProps } from '../publisher/options.js'
import { Publisher } from '../publisher/publisher.js'
import type { Logger } from '../util/logger.js'
import { failureHeaders, failuresSoFar } from './headers.js'
import type { ResolvedRetry } from './options.js'

/** What the ladder needs of a delivered message. */
export interface FailedMessage {
  readonly body: Buffer
  readonly properties: MessageProperties
  readonly headers: Record<string, unknown>
  readonly exchange: string
  readonly routingKey: string
}

/** Where a move sent the message. */
export type MoveResult = 'delayed' | 'dead-lettered' | 'rejected'

/** @internal A consumer's retry ladder: its queues' names, and the publisher that moves messages. */
export class RetryLadder {
  readonly retry: ResolvedRetry
  #publisher: Publisher | undefined

  constructor(retry: ResolvedRetry) {
    this.retry = retry
  }

  /** Failures the message already had on this ladder (0 for a first delivery or a forged counter). */
  failuresOf(headers: Record<string, unknown>): number {
    return failuresSoFar(headers, this.retry)
  }

  /**
   * Starts the publisher that moves messages, on `connection` (the shared publishing connection
   * when undefined). `window`: most moves in flight at once.
   */
  async start(connection: Connection | undefined, logger: Logger, window: number): Promise<void> {
    const publisher = new Publisher({
      kind: 'async',
      maxInFlight: window,
      ...(connection && { connection }),
      logger,
      // A copy left unconfirmed by a lost channel is not sent again: its original is redelivered.
      republish: false,
    })
    await publisher.start()
    this.#publisher = publisher
  }

  /** Waits for moves in flight (up to `timeout` ms), then closes the publisher. */
  async stop(timeout: number): Promise<void> {
    await this.#publisher?.stop({ timeout })
    this.#publisher = undefined
  }

  /**
   * Moves `message` after its failure: to the next delay queue, or (`final`, or the ladder is
   * done) to the dead-letter queue. Resolves once the broker confirmed the copy: the original may
   * then be acked. `'rejected'`: there is no dead-letter queue, the original is to be rejected.
   * Rejects when the copy was refused or lost (the original is then to be requeued).
   */
  async move(message: FailedMessage, final: boolean, reason: string): Promise<MoveResult> {
    const { retry } = this
    const before = failuresSoFar(message.headers, retry)
    const failures = before + 1
    const dead = final || before >= retry.delays.length
    const target = dead ? retry.deadLetterQueue : retry.delayQueues[before]
    if (target === false) return 'rejected'
    const publisher = this.#publisher
    if (publisher === undefined) throw new ConnectionClosedError('the retry ladder is not started')
    const headers = failureHeaders(message, failures, before, reason, retry.queue)
    await publisher.sendMessageToQueue(
      target as string,
      message.body,
      sendOptionsOf(message.properties, headers),
    )
    return dead ? 'dead-lettered' : 'delayed'
  }
}

/**
 * A delivered message's properties as send options for its copy, with `headers`. Left out:
 * `expiration` (the copy would expire in the delay or dead-letter queue; the broker drops it when it
 * dead-letters too), `userId` (the broker refuses one that is not the connection's own user), and
 * the `CC` and `BCC` headers (the broker would route the copy to the queues they name as well).
 */
export function sendOptionsOf(properties: MessageProperties, headers: Record<string, unknown>): SendOptions {
  const { CC: _cc, BCC: _bcc, ...kept } = headers
  const options: SendOptions = {
    persistent: properties.deliveryMode !== 1,
    headers: kept,
  }
  for (const key of shortStringProps) {
    const value: unknown = properties[key as keyof MessageProperties]
    if (key !== 'userId' && typeof value === 'string') options[key as 'messageId'] = value
  }
  if (typeof properties.priority === 'number') options.priority = properties.priority
  if (typeof properties.timestamp === 'number') options.timestamp = properties.timestamp
  return options
}
