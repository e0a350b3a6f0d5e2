import { type AmqpDelivery, sendAck } from '../amqp.ts'
import type { ChannelSession } from '../channel.ts'

/** The one field of a delivery amqplib's ack and nack read. */
type Tagged = Pick<AmqpDelivery, 'fields'>

const tagged = (deliveryTag: number): Tagged => ({ fields: { deliveryTag } }) as Tagged

/**
 * Settles one channel's deliveries, folding the acks decided in one turn of the event loop into as
 * few frames as is safe: one `basic.ack` with `multiple` up to the highest acked tag below every
 * delivery still unsettled, single acks for the rest. Rejects go out at once.
 *
 * Why it is safe: a consumer's channel carries only its deliveries, tagged 1, 2, 3... in delivery
 * order. An ack with `multiple` settles every tag up to it that the broker still holds unsettled;
 * it is sent only up to a tag below the lowest delivery not yet settled by the task, so it covers
 * exactly the acks waiting here (rejects and earlier acks already left). Its tag is itself a
 * waiting ack, never one the broker has already forgotten.
 *
 * Memory is bounded by the prefetch: only unsettled tags are kept (in a Set, whose iteration
 * order is insertion order, i.e. tag order: its first element is the lowest unsettled tag).
 */
export class AckBatcher {
  /** The channel incarnation whose deliveries this settles. */
  readonly session: ChannelSession
  readonly #onDropped: (count: number) => void
  readonly #unsettled = new Set<number>()
  #highestDelivered = 0
  #waiting: number[] = []
  #scheduled = false
  readonly #flush = (): void => this.flush()

  /** @param onDropped told how many acks were dropped because the channel closed before they left */
  constructor(session: ChannelSession, onDropped: (count: number) => void) {
    this.session = session
    this.#onDropped = onDropped
  }

  /** Acks not sent yet. */
  get waiting(): number {
    return this.#waiting.length
  }

  /** Records a delivery (in the order the broker sent them). */
  delivered(tag: number): void {
    this.#unsettled.add(tag)
    this.#highestDelivered = tag
  }

  /** Queues an ack; it leaves with the others decided in this turn (a microtask later). */
  ack(tag: number): void {
    this.#unsettled.delete(tag)
    this.#waiting.push(tag)
    if (!this.#scheduled) {
      this.#scheduled = true
      queueMicrotask(this.#flush)
    }
  }

  /** Sends a reject (with or without requeue) at once. Throws what amqplib throws on a closing channel. */
  reject(tag: number, requeue: boolean): void {
    this.#unsettled.delete(tag)
    this.session.channel.nack(tagged(tag) as AmqpDelivery, false, requeue)
  }

  /** Sends the waiting acks now. Idempotent; called by the microtask and before the channel closes. */
  flush(): void {
    this.#scheduled = false
    const waiting = this.#waiting
    if (waiting.length === 0) return
    this.#waiting = []
    if (!this.session.open) {
      this.#onDropped(waiting.length)
      return
    }
    const lowest = this.#unsettled.values().next()
    const below = lowest.done ? this.#highestDelivered + 1 : lowest.value
    let top = 0
    let sent = 0
    try {
      for (const tag of waiting) if (tag < below && tag > top) top = tag
      if (top > 0) {
        sendAck(this.session.channel, top, true)
        for (const tag of waiting) if (tag < below) sent++
      }
      for (const tag of waiting) {
        if (tag >= below) {
          sendAck(this.session.channel, tag, false)
          sent++
        }
      }
    } catch {
      // The channel is closing: amqplib refuses to send; the broker requeues what was not acked.
      this.#onDropped(waiting.length - sent)
    }
  }
}
