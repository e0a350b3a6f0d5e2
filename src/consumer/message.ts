import { inspect } from 'node:util'
import type { Delivery } from '../amqp/channel-session.js'
import { LapinError } from '../errors.js'
import type { MessageProperties } from '../properties.js'
import type { Replier, ReplyOptions } from '../rpc/replier.js'
import type { ProcessSpan, TracedOutcome } from '../telemetry/tracing.js'
import { parseJson } from '../util/json.js'
import type { AckBatcher, SettleOutcome } from './ack-batcher.js'

/**
 * What a task function returns. Plain lower-case strings, so a module that cannot import lapinmq
 * (a worker thread) can return them as literals.
 */
export const MessageStatus = {
  /** Ack: the message is done. */
  SUCCESS: 'success',
  /**
   * Try again later: with `retry`, the message waits in the next delay queue; without, it is
   * requeued after the consumer's backoff (`redelivered === true`).
   */
  FAIL_RETRY_LATER: 'fail_retry_later',
  /**
   * Do not try again: with `retry`, the message goes to the dead-letter queue; without, it is
   * rejected without requeue (dead-lettered if the queue has a DLX, else dropped).
   */
  FAIL_DO_NOT_RETRY: 'fail_do_not_retry',
  /** lapinmq does nothing; the task or a publisher callback settles the message later. */
  HANDLED_VIA_CALLBACK: 'handled_via_callback',
} as const

/** One of the {@link MessageStatus} values. */
export type MessageStatus = (typeof MessageStatus)[keyof typeof MessageStatus]

/**
 * @internal What becomes of a consumer's failed messages (its retry ladder, or its requeue
 * backoff), and who hears of its successes (a success resets the backoff).
 */
export interface FailureHandler {
  /**
   * `message` failed; `final`: it must not be retried. `reason` is short, never a body. `log`: a
   * warning (a throw, a result that is not a status), a debug line (a status the task chose), or
   * none (the failure was reported already, as an invalid message).
   */
  failed(message: Message, final: boolean, reason: string, log: FailureLog): void
  succeeded(): void
}

/** @internal How a failure is logged: see {@link FailureHandler}. */
export type FailureLog = 'warn' | 'debug' | 'none'

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
  /**
   * 1 on the first delivery. With the consumer's `retry`, one more for each failure the ladder
   * counted (`x-lapinmq-attempt`, trusted only on a message back from the ladder's delay queue);
   * without, one more for each requeue a quorum queue counted (`x-delivery-count`).
   */
  readonly attempt: number
  /** The settles of the channel that delivered it: a settle goes there, or nowhere. */
  readonly #acks: AckBatcher
  readonly #failures: FailureHandler
  readonly #replier: Replier
  /** Why the task refused it, when it said more than its status (a validator's verdict). */
  #reason: string | undefined
  /** How the failure that `#reason` explains is logged. */
  #log: FailureLog = 'debug'
  #settled = false
  /** The settles bound to this message, made on first use: most tasks return a status instead. */
  #bound: BoundSettles | undefined
  /** The body parsed by json(), or the error it gave: parsed once. */
  #parsed: unknown = unparsed
  #data: unknown
  /** Its process span, when the delivery is traced: ended at the settle. */
  #trace: ProcessSpan | undefined

  /**
   * @internal A message for a delivery, settled through `acks` (its channel's); its failures go
   * to `failures`.
   */
  static from(
    delivery: Delivery,
    acks: AckBatcher,
    failures: FailureHandler,
    replier: Replier,
    attempt: number,
  ): Message {
    return new Message(delivery, acks, failures, replier, attempt)
  }

  private constructor(
    delivery: Delivery,
    acks: AckBatcher,
    failures: FailureHandler,
    replier: Replier,
    attempt: number,
  ) {
    this.#acks = acks
    this.#failures = failures
    this.#replier = replier
    this.attempt = attempt
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
      this.#parsed = parseJson(this.body, `the body of the message (delivery tag ${this.deliveryTag})`)
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

  /**
   * Answers a request: sends `body` to this message's `replyTo` with its `correlationId` (an
   * {@link RpcClient}'s call gets it as its reply), on a channel of the consumer's connection, with a
   * publisher confirm. Resolves once the broker has taken the reply; a reply to a caller that has
   * gone (its call ended) is dropped by the broker, and this still resolves. Rejects as a send does:
   * `CONNECTION_CLOSED` when the connection is lost after the reply went out and before its
   * confirm (the request is then redelivered, and answered again); a reply made while the
   * connection is down goes out once it is back, within the confirm deadline (30 s). Settle the
   * message as usual: return a status after awaiting this. Replies are not persistent unless the
   * options say so, and never mandatory.
   * @throws LapinError `NO_REPLY_TO` at the call when the message has no `replyTo`; `TypeError` for a bad body or option.
   */
  reply(body: string | Buffer | Uint8Array, options?: ReplyOptions): Promise<void> {
    return this.#replier.reply(this, body, options)
  }

  /**
   * {@link Message.reply} with `value` as JSON (UTF-8, `contentType: 'application/json'` unless the
   * options name another). A value JSON cannot encode throws `TypeError` at the call.
   */
  replyJson(value: unknown, options?: ReplyOptions): Promise<void> {
    return this.#replier.replyJson(this, value, options)
  }

  /** True once ack, reject or rejectRetry was called. */
  get settled(): boolean {
    return this.#settled
  }

  /**
   * Acknowledges the message: the broker deletes it. Bound to its message, so it can be passed on
   * as a callback (`callbacks: { ackCallback: message.ack }`). Like a `SUCCESS`, it resets the
   * consumer's requeue backoff.
   */
  get ack(): () => void {
    this.#bound ??= bind(this)
    return this.#bound.ack
  }

  /**
   * Gives up on the message, as `FAIL_DO_NOT_RETRY` does: with the consumer's `retry`, it goes to
   * the dead-letter queue; without, it is rejected without requeue (dead-lettered if the queue has
   * a dead-letter exchange). Bound, like `ack`.
   */
  get reject(): () => void {
    this.#bound ??= bind(this)
    return this.#bound.reject
  }

  /**
   * Tries the message again later, as `FAIL_RETRY_LATER` does: with the consumer's `retry`, it
   * waits in the next delay queue; without, it is requeued after the consumer's backoff. Bound,
   * like `ack`.
   */
  get rejectRetry(): () => void {
    this.#bound ??= bind(this)
    return this.#bound.rejectRetry
  }

  /** Never shows the body, only its size. */
  [inspect.custom](): string {
    return `Message { exchange: '${this.exchange}', routingKey: '${this.routingKey}', deliveryTag: ${this.deliveryTag}, bodyBytes: ${this.body.length}, redelivered: ${this.redelivered}, settled: ${this.#settled} }`
  }

  /** @internal Its process span, if the delivery is traced. */
  get trace(): ProcessSpan | undefined {
    return this.#trace
  }

  /** @internal Gives the message its process span. */
  traced(span: ProcessSpan): void {
    this.#trace = span
  }

  /** @internal Settles the message once: later settles do nothing. */
  settleAs(outcome: SettleOutcome): void {
    if (this.#settled) return
    this.#settled = true
    this.#trace?.end(outcome, !this.channelOpen)
    this.#acks.settle(this.deliveryTag, outcome)
  }

  /** @internal Will never be settled: its channel closed (the broker requeued it). Ends its span. */
  dropped(): void {
    this.#trace?.end('requeue', true)
  }

  /** @internal Hands the failed message to the consumer's retry ladder or backoff, once. */
  fail(final: boolean, reason: string, log: FailureLog = 'debug'): void {
    if (this.#settled) return
    this.#settled = true
    const failureLog = this.#reason === undefined ? log : this.#log
    const trace = this.#trace
    // In the span's context: the copy a retry ladder publishes is its child.
    if (trace === undefined) this.#failures.failed(this, final, this.#reason ?? reason, failureLog)
    else trace.run(() => this.#failures.failed(this, final, this.#reason ?? reason, failureLog), undefined)
  }

  /** @internal A success: acked, and the consumer's backoff reset. */
  succeed(): void {
    if (this.#settled) return
    this.#settled = true
    this.#trace?.end('ack', !this.channelOpen)
    this.#acks.settle(this.deliveryTag, 'ack')
    this.#failures.succeeded()
  }

  /**
   * @internal Sends the settle a failure handler decided, for a message already marked settled;
   * `traced`: the outcome its span tells, when it says more (a move along the retry ladder).
   */
  sendSettle(outcome: SettleOutcome, traced: TracedOutcome = outcome): void {
    this.#trace?.end(traced, !this.channelOpen)
    this.#acks.settle(this.deliveryTag, outcome)
  }

  /**
   * @internal Its settle is a confirm away (`soon`): acks of later deliveries may wait for it, to
   * leave in one frame; or no longer.
   */
  settlingSoon(soon = true): void {
    this.#acks.settlingSoon(this.deliveryTag, soon)
  }

  /** @internal True while the channel that delivered it can still settle it. */
  get channelOpen(): boolean {
    return this.#acks.session.open
  }

  /** @internal Why the task refused it, for the dead-letter headers (a validator's verdict, say). */
  setFailureReason(reason: string, log: FailureLog): void {
    this.#reason = reason
    this.#log = log
  }
}

interface BoundSettles {
  ack: () => void
  reject: () => void
  rejectRetry: () => void
}

function bind(message: Message): BoundSettles {
  return {
    ack: () => message.succeed(),
    reject: () => message.fail(true, 'rejected by the task'),
    rejectRetry: () => message.fail(false, 'retried by the task'),
  }
}

/** @internal Settles `message` as `status` says; HANDLED_VIA_CALLBACK leaves it to the task's callbacks. */
export function settleByStatus(message: Message, status: unknown): void {
  if (status === MessageStatus.SUCCESS) message.succeed()
  else if (status === MessageStatus.HANDLED_VIA_CALLBACK) return
  else if (status === MessageStatus.FAIL_DO_NOT_RETRY) message.fail(true, status)
  else if (status === MessageStatus.FAIL_RETRY_LATER) message.fail(false, status)
  else message.fail(false, `the task returned ${describeStatus(status)}, not a MessageStatus`, 'warn')
}

/**
 * A result that is not a status, named for a log line by its type only: it may be (part of) the
 * body, returned by mistake, and describing it must never throw.
 */
export function describeStatus(status: unknown): string {
  if (typeof status === 'string') return `a string of ${status.length} characters`
  if (status === null) return 'null'
  if (typeof status === 'object' || typeof status === 'function') return `a ${typeof status}`
  return typeof status === 'symbol' ? 'a symbol' : String(status)
}
