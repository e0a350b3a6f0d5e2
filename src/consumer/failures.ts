// What becomes of a consumer's failed messages. With a retry ladder, a confirmed copy goes to the
// next delay queue (or the dead-letter queue) and the original is acked. Without one, a message to
// retry is held unacked for the consumer's backoff (100 ms, doubling to 5 s while failures follow
// one another, reset by a success), then requeued: a message that always fails comes back a few
// times a second at most, not thousands. While it is held, the consumer keeps taking the messages
// behind it (see Consumer's widening of its window).
import type { MoveResult, RetryLadder } from '../retry/ladder.js'
import { LogLimiter } from '../util/log-limiter.js'
import type { Logger } from '../util/logger.js'
import type { FailureHandler, FailureLog, Message } from './message.js'

/** The first requeue backoff, in ms. */
export const firstBackoff = 100
/** The longest requeue backoff, in ms. */
export const maxBackoff = 5_000

export interface FailuresOptions {
  queue: () => string
  ladder: RetryLadder | undefined
  /** False: a message to retry is requeued at once (no backoff). */
  backoff: boolean
  logger: () => Logger
  /** A message is now held: the consumer may need room for the messages behind it. */
  onHeld: (message: Message) => void
  /** A held message was requeued at the end of its backoff. */
  onReleased: () => void
  /** A copy came back unroutable: a ladder queue was deleted, and is to be declared again. */
  onLadderQueueMissing: () => void
  /** The ladder confirmed a failed message's copy (`result`: where it went). */
  onMoved?: (result: MoveResult) => void
}

/** @internal A consumer's failure handling: the retry ladder, or the requeue backoff. */
export class Failures implements FailureHandler {
  readonly #options: FailuresOptions
  readonly #held = new Map<Message, NodeJS.Timeout>()
  readonly #logLimit = new LogLimiter()
  readonly #debugLimit = new LogLimiter()
  #backoff = firstBackoff
  /** Set by stop(): a message failing from now on is requeued at once, not held. */
  #stopping = false

  constructor(options: FailuresOptions) {
    this.#options = options
  }

  /** Messages held unacked, waiting out their backoff before the requeue. */
  get held(): number {
    return this.#held.size
  }

  /** The backoff the next held message gets, in ms. */
  get backoff(): number {
    return this.#backoff
  }

  succeeded(): void {
    this.#backoff = firstBackoff
  }

  failed(message: Message, final: boolean, reason: string, log: FailureLog): void {
    const { ladder } = this.#options
    if (ladder === undefined) {
      this.#log(message, final, reason, log)
      if (final) message.sendSettle('reject')
      else this.#requeue(message)
      return
    }
    message.settlingSoon()
    ladder.move(message, final, reason).then(
      (result) => {
        this.#log(message, final, reason, log, result)
        this.#options.onMoved?.(result)
        // The ladder works again: a later refused copy starts its backoff from the first step.
        this.#backoff = firstBackoff
        if (result === 'rejected') message.sendSettle('reject')
        else message.sendSettle('ack', result === 'delayed' ? 'retried' : 'dead-lettered')
      },
      (err: { code?: string; message?: string }) => {
        // The copy was refused or lost: the original goes back to the work queue, after the
        // backoff (a ladder queue deleted under us must not make the message spin).
        const fields = { queue: this.#options.queue(), deliveryTag: message.deliveryTag, code: err?.code }
        this.#warn(fields, 'lapinmq: could not move the failed message along the retry ladder; requeuing it')
        if (err?.code === 'UNROUTABLE') this.#options.onLadderQueueMissing()
        message.settlingSoon(false)
        this.#requeue(message)
      },
    )
  }

  /** stop(): every held message is requeued now, and any that fails later at once. */
  releaseAll(): void {
    this.#stopping = true
    for (const [message, timer] of this.#held) {
      clearTimeout(timer)
      message.sendSettle('requeue')
    }
    this.#held.clear()
  }

  /** The channel closed: the broker has requeued the held messages already. */
  forget(): void {
    for (const [message, timer] of this.#held) {
      clearTimeout(timer)
      message.dropped()
    }
    this.#held.clear()
  }

  #requeue(message: Message): void {
    if (!this.#options.backoff || this.#stopping || !message.channelOpen) {
      message.sendSettle('requeue')
      return
    }
    const timer = setTimeout(() => {
      this.#held.delete(message)
      message.sendSettle('requeue')
      this.#options.onReleased()
    }, this.#backoff)
    this.#held.set(message, timer)
    this.#backoff = Math.min(this.#backoff * 2, maxBackoff)
    this.#options.onHeld(message)
  }

  /**
   * A failure the task did not choose (it threw, or returned no status) is a warning; a status it
   * returned, a debug line; an invalid message (reported already), nothing. A line at most once a
   * second, with the count of those held back.
   */
  #log(message: Message, final: boolean, reason: string, log: FailureLog, result?: string): void {
    if (log === 'none') return
    const fields: Record<string, unknown> = {
      queue: this.#options.queue(),
      deliveryTag: message.deliveryTag,
      attempt: message.attempt,
      reason,
    }
    if (result !== undefined) fields.outcome = result
    else fields.outcome = final ? 'rejected' : this.#options.backoff ? 'requeued after backoff' : 'requeued'
    if (log === 'warn') this.#warn(fields, 'lapinmq: task failed')
    else {
      const suppressed = this.#debugLimit.take()
      if (suppressed !== undefined)
        this.#options.logger().debug(withCount(fields, suppressed), 'lapinmq: task failed')
    }
  }

  #warn(fields: Record<string, unknown>, text: string): void {
    const suppressed = this.#logLimit.take()
    if (suppressed !== undefined) this.#options.logger().warn(withCount(fields, suppressed), text)
  }
}

/** Log fields with the count of lines held back, when there were any. */
function withCount(fields: Record<string, unknown>, suppressed: number): Record<string, unknown> {
  return suppressed > 0 ? { ...fields, suppressed } : fields
}
