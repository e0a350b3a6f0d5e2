import { inspect } from 'node:util'
import type { AmqpDelivery, AmqpProperties } from './amqp.ts'
import type { ChannelSession } from './channel.ts'

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

/** How a delivery is settled. */
export type SettleOutcome = 'ack' | 'reject' | 'requeue'

/** Where a message's settle goes: the consumer that received it. */
export interface DeliverySettler {
  settleDelivery(session: ChannelSession, delivery: AmqpDelivery, outcome: SettleOutcome): void
}

/**
 * A message delivered to a consumer. Settle it once with `ack()`, `reject()` or `rejectRetry()`;
 * later calls do nothing. A settle after the delivering channel closed is dropped: the broker has
 * already requeued the message.
 *
 * @example
 * ```ts
 * const taskFunction = async (message: Message) => {
 *   const order = JSON.parse(message.body.toString())
 *   return order.valid ? MessageStatus.SUCCESS : MessageStatus.FAIL_DO_NOT_RETRY
 * }
 * ```
 */
export class Message {
  /** The body as the broker sent it. */
  readonly body: Buffer
  /** AMQP basic properties as the broker sent them. */
  readonly properties: AmqpProperties
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
  readonly #delivery: AmqpDelivery
  readonly #session: ChannelSession
  readonly #settler: DeliverySettler
  #settled = false

  constructor(delivery: AmqpDelivery, session: ChannelSession, settler: DeliverySettler) {
    this.#delivery = delivery
    this.#session = session
    this.#settler = settler
    this.body = delivery.content
    this.properties = delivery.properties
    this.headers = (delivery.properties.headers as Record<string, unknown> | undefined) ?? {}
    this.redelivered = delivery.fields.redelivered
    this.routingKey = delivery.fields.routingKey
    this.exchange = delivery.fields.exchange
    this.deliveryTag = delivery.fields.deliveryTag
    this.channelId = session.id
  }

  /** True once ack, reject or rejectRetry was called. */
  get settled(): boolean {
    return this.#settled
  }

  /** Acknowledges the message: the broker deletes it. */
  ack(): void {
    this.#settle('ack')
  }

  /** Rejects without requeue: dead-lettered if the queue has a dead-letter exchange. */
  reject(): void {
    this.#settle('reject')
  }

  /** Rejects with requeue: the broker delivers it again. */
  rejectRetry(): void {
    this.#settle('requeue')
  }

  /** Never shows the body, only its size. */
  [inspect.custom](): string {
    return `Message { exchange: '${this.exchange}', routingKey: '${this.routingKey}', deliveryTag: ${this.deliveryTag}, bodyBytes: ${this.body.length}, redelivered: ${this.redelivered}, settled: ${this.#settled} }`
  }

  #settle(outcome: SettleOutcome): void {
    if (this.#settled) return
    this.#settled = true
    this.#settler.settleDelivery(this.#session, this.#delivery, outcome)
  }
}
