import type { ReturnedMessage } from '../amqp/channel-session.js'
import { sameAsSent } from '../amqp/wire-properties.js'
import { UnroutableError } from '../errors.js'
import type { PendingSend } from './pending-send.js'

/**
 * The published, unconfirmed sends of one channel, by delivery tag (publish order). Tags start at
 * 1 on every new channel in confirm mode.
 */
export class ConfirmTracker {
  readonly #byTag = new Map<number, PendingSend>()
  #lastTag = 0

  get size(): number {
    return this.#byTag.size
  }

  /** Deadline of the oldest unconfirmed send. */
  get oldestDeadline(): number | undefined {
    return this.#byTag.values().next().value?.deadline
  }

  /** Records a send just published on the channel. */
  add(pending: PendingSend): void {
    this.#byTag.set(++this.#lastTag, pending)
  }

  /** Removes and returns the sends a `basic.ack`/`basic.nack` covers. */
  confirm(tag: number, multiple: boolean): PendingSend[] {
    const covered: PendingSend[] = []
    if (multiple) {
      for (const [t, pending] of this.#byTag) {
        if (t > tag) break
        this.#byTag.delete(t)
        covered.push(pending)
      }
    } else {
      const pending = this.#byTag.get(tag)
      if (pending) {
        this.#byTag.delete(tag)
        covered.push(pending)
      }
    }
    return covered
  }

  /**
   * `basic.return` names no delivery tag, but the broker sends it before the confirm of the same
   * message, and returns come in publish order: the returned message is the oldest unconfirmed,
   * not yet returned send with the same exchange, routing key, body and properties (headers
   * included, compared as they were on the wire). When no send has those properties (a broker
   * that re-encodes them, nested headers changed after the send), the oldest with the same
   * exchange, routing key and body is taken: a message wrongly reported returned is safer than a
   * returned one reported confirmed. False if none matches: its send already ended.
   */
  markReturned(message: ReturnedMessage): boolean {
    const { exchange, routingKey, body } = message
    let fallback: PendingSend | undefined
    for (const pending of this.#byTag.values()) {
      if (
        pending.returned !== undefined ||
        pending.exchange !== exchange ||
        pending.routingKey !== routingKey ||
        !pending.body.equals(body)
      ) {
        continue
      }
      if (sameAsSent(pending.options, message.properties) !== false) return this.#returned(pending, message)
      fallback ??= pending
    }
    return fallback ? this.#returned(fallback, message) : false
  }

  #returned(pending: PendingSend, message: ReturnedMessage): true {
    const { exchange, routingKey, replyCode, replyText } = message
    pending.returned = new UnroutableError(exchange, routingKey, replyCode, replyText)
    return true
  }

  /** Removes and returns the sends whose deadline has passed. */
  takeExpired(now: number): PendingSend[] {
    const expired: PendingSend[] = []
    for (const [t, pending] of this.#byTag) {
      if (pending.deadline > now) break
      this.#byTag.delete(t)
      expired.push(pending)
    }
    return expired
  }

  /** Removes and returns every send, and starts tags again at 1 (for the next channel). */
  takeAll(): PendingSend[] {
    const all = [...this.#byTag.values()]
    this.#byTag.clear()
    this.#lastTag = 0
    return all
  }
}
