import { ChannelClosingError, type ChannelSession, inFrameTurn } from '../amqp/channel-session.js'

/** How a delivery is settled. */
export type SettleOutcome = 'ack' | 'reject' | 'requeue'

const noop = (): void => {}

/**
 * Settles one channel's deliveries, folding the acks decided together into as few frames as is
 * safe: one `basic.ack` with `multiple` up to the highest acked tag below every delivery still
 * unsettled, single acks for the rest. Rejects go out at once.
 *
 * When acks leave: acks decided while the broker's frames are handled (a task that returns its
 * status at once, a publisher confirm that acks its source) leave at the end of that turn, a
 * microtask later, as does an ack with no other delivery left unsettled. Acks decided elsewhere
 * (tasks finishing in timers or on other I/O) while other deliveries are still unsettled wait for
 * the turn's immediate, so the acks of every task that finished in the same timers phase leave in
 * one frame instead of one write each.
 *
 * Why folding is safe: a consumer's channel carries only its deliveries, tagged 1, 2, 3... in
 * delivery order. An ack with `multiple` settles every tag up to it that the broker still holds
 * unsettled; it is sent only up to a tag below the lowest delivery not yet settled by the task, so
 * it covers exactly the acks waiting here (rejects and earlier acks already left). Its tag is
 * itself a waiting ack, never one the broker has already forgotten.
 *
 * Memory is bounded by the prefetch: only unsettled tags are kept (in a Set, whose iteration
 * order is insertion order, i.e. tag order: its first element is the lowest unsettled tag).
 */
export class AckBatcher {
  /** The channel incarnation whose deliveries this settles. */
  readonly session: ChannelSession
  readonly #onDropped: (count: number) => void
  readonly #onSettled: () => void
  readonly #unsettled = new Set<number>()
  #highestDelivered = 0
  #waiting: number[] = []
  #microtaskFlush = false
  #immediateFlush = false
  readonly #flushFromMicrotask = (): void => {
    this.#microtaskFlush = false
    this.flush()
  }
  readonly #flushFromImmediate = (): void => {
    this.#immediateFlush = false
    this.flush()
  }

  /**
   * @param onDropped told how many settles were dropped because the channel no longer sent
   * @param onSettled told of each settle decided (sent or dropped)
   */
  constructor(session: ChannelSession, onDropped: (count: number) => void, onSettled: () => void = noop) {
    this.session = session
    this.#onDropped = onDropped
    this.#onSettled = onSettled
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

  /** Settles a delivery as its task decided; a reject the channel refuses is counted as dropped. */
  settle(tag: number, outcome: SettleOutcome): void {
    if (outcome !== 'ack') {
      if (!this.#sendReject(tag, outcome === 'requeue')) this.#onDropped(1)
    } else if (this.session.open) this.ack(tag)
    else {
      this.#unsettled.delete(tag)
      this.#onDropped(1)
    }
    this.#onSettled()
  }

  /** Queues an ack; it leaves with the others decided in this turn. */
  ack(tag: number): void {
    this.#unsettled.delete(tag)
    this.#waiting.push(tag)
    // With nothing else unsettled, no other ack can join this one: it leaves at once.
    if (inFrameTurn() || this.#unsettled.size === 0) {
      if (!this.#microtaskFlush) {
        this.#microtaskFlush = true
        queueMicrotask(this.#flushFromMicrotask)
      }
    } else if (!this.#immediateFlush && !this.#microtaskFlush) {
      this.#immediateFlush = true
      setImmediate(this.#flushFromImmediate)
    }
  }

  /** Sends a reject (with or without requeue) at once. Throws when the channel no longer sends. */
  reject(tag: number, requeue: boolean): void {
    if (!this.#sendReject(tag, requeue)) throw new ChannelClosingError()
  }

  /** A reject leaves at once; false when the channel no longer sends. */
  #sendReject(tag: number, requeue: boolean): boolean {
    this.#unsettled.delete(tag)
    return this.session.nack(tag, false, requeue)
  }

  /** Sends the waiting acks now. Idempotent; called at the end of the turn and before the channel closes. */
  flush(): void {
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
    for (const tag of waiting) if (tag < below && tag > top) top = tag
    if (top > 0) {
      if (!this.session.ack(top, true)) {
        this.#onDropped(waiting.length)
        return
      }
      for (const tag of waiting) if (tag < below) sent++
    }
    for (const tag of waiting) {
      if (tag < below) continue
      if (!this.session.ack(tag, false)) {
        // The channel stopped sending: the broker requeues what was not acked.
        this.#onDropped(waiting.length - sent)
        return
      }
      sent++
    }
  }
}
