import { inspect } from 'node:util'
import type { Delivery } from '../amqp/channel-session.js'
import { LapinError } from '../errors.js'
import type { MessageProperties } from '../properties.js'
import type { Logger } from '../util/logger.js'
import type { AckBatcher, SettleOutcome } from './ack-batcher.js'

/**
 * What a task function returns. Plain lower-case strings, so a module that cannot import lapinmq
 * (a worker thread) can return them as literals.
 */
export const MessageStatus = {
  /** Ack: the message is done. */
  SUCCESS: 'success',
  /** Reject with requeue: the message comes back (`redelivered === true`). */
  FAIL_RETRY_LATER: 'fail_retry_later',
  /** Reject without requeue: dead-lettered if the queue has a DLX, else dropped. */
  FAIL_DO_NOT_RETRY: 'fail_do_not_retry',
  /** lapinmq does nothing; the task or a publisher callback settles the message later. */
  HANDLED_VIA_CALLBACK: 'handled_via_callback',
} as const

/** One of the {@link MessageStatus} values. */
export type MessageStatus = (typeof MessageStatus)[keyof typeof MessageStatus]

/** What `#parsed` holds before `json()` first ran. */
const unparsed: unique symbol = Symbol('unparsed')

/**
 * A message delivered to a consumer. `T` is the type of `data`, the body validated by the
 * consumer's `schema`. Settle it once with `ack()`, `reject()` or `rejectRetry()`;
 * later calls do nothing. A settle after the delivering channel closed is dropped: the broker has
 * already requeued the message.
 *
 * @example
 * ```ts
 * const taskFunction = async (message: Message) => {
 *   const order = message.json<{ valid: boolean }>()
 *   return order.valid ? MessageStatus.SUCCESS : MessageStatus.FAIL_DO_NOT_RETRY
 * }
 * ```
 */
export class Message<T = unknown> {
  /** The body as the broker sent it. */
  readonly body: Buffer
  /** AMQP basic properties as the broker sent them. */
  readonly properties: MessageProperties
  /** Application headers (`properties.headers`, or `{}`). */
  readonly headers: Record<string, unknown>
  /** True when the broker delivered this message before (it was requeued). */
  readonly redelivered: boolean
  /** The routing key it was published with. */
  readonly routingKey: string
  /** The exchange it was published to (`''` for the default exchange). */
  readonly exchange: string
  /** The delivery tag on the channel that delivered it. */
  readonly deliveryTag: number
  /** The incarnation id of the channel that delivered it. */
  readonly channelId: number
  /** The settles of the channel that delivered it: a settle goes there, or nowhere. */
  readonly #acks: AckBatcher
  #settled = false
  /** The settles bound to this message, made on first use: most tasks return a status instead. */
  #bound: BoundSettles | undefined
  /** The body parsed by json(), or the error it gave: parsed once. */
  #parsed: unknown = unparsed
  #data: unknown

  /** @internal A message for a delivery, settled through `acks` (its channel's). */
  static from(delivery: Delivery, acks: AckBatcher): Message {
    return new Message(delivery, acks)
  }

  private constructor(delivery: Delivery, acks: AckBatcher) {
    this.#acks = acks
    this.body = delivery.body
    this.properties = delivery.properties
    this.headers = delivery.properties.headers ?? {}
    this.redelivered = delivery.redelivered
    this.routingKey = delivery.routingKey
    this.exchange = delivery.exchange
    this.deliveryTag = delivery.deliveryTag
    this.channelId = acks.session.id
  }

  /**
   * The body parsed as JSON (UTF-8), once: later calls return the same value. The type argument
   * only asserts the type; give the consumer a `schema` to have the body checked (then read `data`).
   * @throws LapinError `INVALID_BODY` when the body is not valid JSON (the error never quotes it).
   */
  json<U = unknown>(): U {
    if (this.#parsed === unparsed) {
      try {
        this.#parsed = JSON.parse(this.body.toString('utf8'))
      } catch {
        // No cause: the parser's message quotes the body.
        const text = `the body of the message (delivery tag ${this.deliveryTag}, ${this.body.length} bytes) is not valid JSON`
        this.#parsed = new LapinError('INVALID_BODY', text)
      }
    }
    // JSON.parse makes plain objects only: a LapinError here is the parse's own failure.
    if (this.#parsed instanceof LapinError) throw this.#parsed
    return this.#parsed as U
  }

  /**
   * The body as the consumer's `schema` validated it (its output, transforms and defaults
   * applied), set before the task is called. `undefined` on a consumer without a `schema`.
   */
  get data(): T {
    return this.#data as T
  }

  /** @internal Sets `data` to the schema's output. */
  setData(value: unknown): void {
    this.#data = value
  }

  /** True once ack, reject or rejectRetry was called. */
  get settled(): boolean {
    return this.#settled
  }

  /**
   * Acknowledges the message: the broker deletes it. Bound to its message, so it can be passed on
   * as a callback (`callbacks: { ackCallback: message.ack }`).
   */
  get ack(): () => void {
    this.#bound ??= bind(this)
    return this.#bound.ack
  }

  /** Rejects without requeue: dead-lettered if the queue has a dead-letter exchange. Bound, like `ack`. */
  get reject(): () => void {
    this.#bound ??= bind(this)
    return this.#bound.reject
  }

  /** Rejects with requeue: the broker delivers it again. Bound, like `ack`. */
  get rejectRetry(): () => void {
    this.#bound ??= bind(this)
    return this.#bound.rejectRetry
  }

  /** Never shows the body, only its size. */
  [inspect.custom](): string {
    return `Message { exchange: '${this.exchange}', routingKey: '${this.routingKey}', deliveryTag: ${this.deliveryTag}, bodyBytes: ${this.body.length}, redelivered: ${this.redelivered}, settled: ${this.#settled} }`
  }

  /** @internal Settles the message once: later settles do nothing. */
  settleAs(outcome: SettleOutcome): void {
    if (this.#settled) return
    this.#settled = true
    this.#acks.settle(this.deliveryTag, outcome)
  }
}

interface BoundSettles {
  ack: () => void
  reject: () => void
  rejectRetry: () => void
}

function bind(message: Message): BoundSettles {
  return {
    ack: () => message.settleAs('ack'),
    reject: () => message.settleAs('reject'),
    rejectRetry: () => message.settleAs('requeue'),
  }
}

/** @internal A task threw or its promise rejected: logged, and the message is retried later. */
export function taskFailed(message: Message, err: unknown, logger: Logger): MessageStatus {
  const fields = { err: (err as Error)?.message, deliveryTag: message.deliveryTag }
  logger.warn(fields, 'lapinmq: task failed')
  return MessageStatus.FAIL_RETRY_LATER
}

/** @internal Settles `message` as `status` says; HANDLED_VIA_CALLBACK leaves it to the task's callbacks. */
export function settleByStatus(message: Message, status: unknown, logger: Logger): void {
  if (status === MessageStatus.SUCCESS) message.settleAs('ack')
  else if (status === MessageStatus.HANDLED_VIA_CALLBACK) return
  else if (status === MessageStatus.FAIL_DO_NOT_RETRY) message.settleAs('reject')
  else {
    if (status !== MessageStatus.FAIL_RETRY_LATER) {
      const text = 'lapinmq: task returned no MessageStatus; retrying later'
      logger.warn({ status: describeStatus(status) }, text)
    }
    message.settleAs('requeue')
  }
}

/**
 * A result that is not a status, named for a log line by its type only: it may be (part of) the
 * body, returned by mistake, and describing it must never throw.
 */
function describeStatus(status: unknown): string {
  if (typeof status === 'string') return `a string of ${status.length} characters`
  if (status === null) return 'null'
  if (typeof status === 'object' || typeof status === 'function') return `a ${typeof status}`
  return typeof status === 'symbol' ? 'a symbol' : String(status)
}
