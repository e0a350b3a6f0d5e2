import { ChannelClosingError, type ChannelSession, inFrameTurn } from '../amqp/channel-session.js'

/** The longest acks wait behind a delivery settling soon, in ms. */
export const maxHoldMs = 50

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
 *
 * A delivery whose settle is only a confirm away (a failed message being copied along a retry
 * ladder: its ack follows the copy's confirm) would make every ack above it a frame of its own.
 * When the lowest unsettled delivery is such a one, the acks above it wait for it (at most
 * `maxHoldMs`), then leave folded with it in one frame.
 */
export class AckBatcher {
  /** The channel incarnation whose deliveries this settles. */
  readonly session: ChannelSession
  readonly #onDropped: (count: number) => void
  readonly #onSettled: (outcome: SettleOutcome) => void
  readonly #unsettled = new Set<number>()
  #highestDelivered = 0
  #waiting: number[] = []
  /** Unsettled deliveries whose settle is coming soon (see the class comment). */
  readonly #soon = new Set<number>()
  /** Ends a hold of the acks behind a delivery settling soon. */
  #holdTimer: NodeJS.Timeout | undefined
  /** The delivery the acks are held behind (0: none). */
  #holdingFor = 0
  /** When the oldest ack now waiting was decided (performance.now()): a hold ends `maxHoldMs` after it. */
  #waitingSince = 0
  #microtaskFlush = false
  #immediateFlush = false
  readonly #flushFromMicrotask = (): void => {
    this.#microtaskFlush = false
    this.#flush(false)
  }
  readonly #flushFromImmediate = (): void => {
    this.#immediateFlush = false
    this.#flush(false)
  }
  readonly #endHold = (): void => {
    this.#clearHold()
    this.#flush(true)
  }

  /**
   * @param onDropped told how many settles were dropped because the channel no longer sent
   * @param onSettled told of each settle decided (sent or dropped)
   */
  constructor(
    session: ChannelSession,
    onDropped: (count: number) => void,
    onSettled: (outcome: SettleOutcome) => void = noop,
  ) {
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

  /**
   * Marks an unsettled delivery as settling soon (`soon` true: acks above it may wait for it, see
   * the class comment), or no longer so.
   */
  settlingSoon(tag: number, soon = true): void {
    if (!soon) {
      // Acks held behind it go now.
      if (this.#soon.delete(tag) && this.#holdingFor === tag) this.#scheduleMicrotaskFlush()
    } else if (this.#unsettled.has(tag)) this.#soon.add(tag)
  }

  /** Settles a delivery as its task decided; a reject the channel refuses is counted as dropped. */
  settle(tag: number, outcome: SettleOutcome): void {
    const released = this.#soon.delete(tag) || this.#holdingFor === tag
    if (released && this.#waiting.length > 0) this.#scheduleMicrotaskFlush()
    if (outcome !== 'ack') {
      if (!this.#sendReject(tag, outcome === 'requeue')) this.#onDropped(1)
    } else if (this.session.open) this.ack(tag)
    else {
      this.#unsettled.delete(tag)
      this.#onDropped(1)
    }
    this.#onSettled(outcome)
  }

  /** Queues an ack; it leaves with the others decided in this turn. */
  ack(tag: number): void {
    this.#unsettled.delete(tag)
    // The clock is read only when a hold can happen (a retry ladder moving a message).
    if (this.#waiting.length === 0 && this.#soon.size > 0) this.#waitingSince = performance.now()
    this.#waiting.push(tag)
    // With nothing else unsettled, no other ack can join this one: it leaves at once.
    if (inFrameTurn() || this.#unsettled.size === 0) {
      this.#scheduleMicrotaskFlush()
    } else if (!this.#immediateFlush && !this.#microtaskFlush) {
      this.#immediateFlush = true
      setImmediate(this.#flushFromImmediate)
    }
  }

  #clearHold(): void {
    clearTimeout(this.#holdTimer)
    this.#holdTimer = undefined
    this.#holdingFor = 0
  }

  #scheduleMicrotaskFlush(): void {
    if (!this.#microtaskFlush) {
      this.#microtaskFlush = true
      queueMicrotask(this.#flushFromMicrotask)
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

  /** Sends every waiting ack now. Idempotent; called before the channel closes. */
  flush(): void {
    this.#flush(true)
  }

  /**
   * Sends the waiting acks below the lowest unsettled delivery as one frame, and those above it
   * one by one; unless (`all` false) that delivery settles soon: those above it then wait for it.
   */
  #flush(all: boolean): void {
    const waiting = this.#waiting
    if (waiting.length === 0) return
    this.#waiting = []
    if (!this.session.open) {
      this.#onDropped(waiting.length)
      return
    }
    const lowest = this.#unsettled.values().next()
    const below = lowest.done ? this.#highestDelivered + 1 : lowest.value
    // Held for at most maxHoldMs after the oldest waiting ack, however many deliveries it waits behind.
    const left =
      !all && !lowest.done && this.#soon.has(below) ? maxHoldMs - (performance.now() - this.#waitingSince) : 0
    const hold = left > 0
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
    if (hold) {
      // Kept for the delivery below them: its settle flushes them (or the hold ends).
      for (const tag of waiting) if (tag > below) this.#waiting.push(tag)
      if (this.#waiting.length === 0) {
        this.#clearHold()
        return
      }
      this.#holdingFor = below
      if (this.#holdTimer === undefined) {
        this.#holdTimer = setTimeout(this.#endHold, left)
        this.#holdTimer.unref()
      }
      return
    }
    this.#clearHold()
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
