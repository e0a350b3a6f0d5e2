// Task deadlines with one periodic sweep per consumer instead of a timer per task: a task that
// returns a promise is tracked (one Map entry, start time), untracked when it settles, and the sweep
// hands those past the deadline to `onTimeout`. A task that returns its status directly costs
// nothing. Entries are kept in start order (a Map keeps insertion order), so a sweep stops at the
// first one still within its deadline.
import { LapinError } from '../errors.js'
import type { Message } from './message.js'
import type { ResolvedConsumerOptions, TaskTimeoutInfo } from './options.js'

/** Deadlines of running tasks, keyed by whatever identifies a task (its message). */
export class TaskDeadline<K extends object> {
  readonly timeoutMs: number
  readonly #onTimeout: (key: K) => void
  readonly #startedAt = new Map<K, number>()
  readonly #sweepMs: number
  #timer: NodeJS.Timeout | undefined

  /**
   * @param timeoutMs the deadline (> 0)
   * @param onTimeout called once for a task past its deadline; it is untracked already
   */
  constructor(timeoutMs: number, onTimeout: (key: K) => void) {
    this.timeoutMs = timeoutMs
    this.#onTimeout = onTimeout
    // A task times out at most a tenth of its deadline late (and at most 1 s late).
    this.#sweepMs = Math.min(1000, Math.max(5, Math.floor(timeoutMs / 10)))
  }

  /** Tasks being tracked. */
  get size(): number {
    return this.#startedAt.size
  }

  /** Starts the sweep (an unref'd interval: it never keeps the process alive). Idempotent. */
  start(): void {
    if (this.#timer) return
    this.#timer = setInterval(() => this.sweep(performance.now()), this.#sweepMs)
    this.#timer.unref()
  }

  /** Stops the sweep: tasks still tracked are never timed out (untrack still works). Idempotent. */
  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Starts the clock of a task. */
  track(key: K): void {
    this.#startedAt.set(key, performance.now())
  }

  /** Ends the clock of a task: false when it had already timed out (its result must be ignored). */
  untrack(key: K): boolean {
    return this.#startedAt.delete(key)
  }

  /** Times out every task started `timeoutMs` or more before `now`. Public for tests. */
  sweep(now: number): void {
    for (const [key, startedAt] of this.#startedAt) {
      if (now - startedAt < this.timeoutMs) return
      this.#startedAt.delete(key)
      this.#onTimeout(key)
    }
  }
}

/**
 * The broker's `consumer_timeout` closes a channel with 406 PRECONDITION_FAILED "delivery
 * acknowledgement on channel N timed out": that close, as a `CONSUMER_TIMEOUT` error saying what
 * happened and what to do. Any other close: undefined.
 */
export function consumerTimeoutError(error: LapinError | undefined): LapinError | undefined {
  if (error?.replyCode !== 406 || !/acknowledgement .*timed out/i.test(error.message)) return undefined
  return new LapinError(
    'CONSUMER_TIMEOUT',
    "the broker closed the consumer channel: a delivery stayed unacked past its consumer_timeout, and every unacked message on the channel was requeued; the channel is reopened. Set taskTimeout below the broker's consumer_timeout",
    { cause: error, replyCode: 406, replyText: error.replyText },
  )
}

/** Settles a message whose task timed out, per `onTaskTimeout` (unless the task already did), and says what was done. */
export function settleTimedOut(
  message: Message,
  options: Pick<ResolvedConsumerOptions, 'taskTimeout' | 'onTaskTimeout'>,
  inWorker: boolean,
): TaskTimeoutInfo {
  let action: TaskTimeoutInfo['action'] = 'none'
  if (!message.settled) {
    // A failure like any other: along the retry ladder, or requeued after the backoff.
    const reason = `the task timed out after ${options.taskTimeout} ms`
    const reject = options.onTaskTimeout === 'reject'
    action = reject ? 'rejected' : 'requeued'
    message.fail(reject, reason)
  }
  const messageId = message.properties.messageId
  return {
    deliveryTag: message.deliveryTag,
    channelId: message.channelId,
    messageId: typeof messageId === 'string' ? messageId : undefined,
    redelivered: message.redelivered,
    timeoutMs: options.taskTimeout,
    action,
    inWorker,
  }
}
