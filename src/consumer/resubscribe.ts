// Subscribing again past held messages. Without a retry ladder, a failed message is held unacked
// for its requeue backoff, and the broker counts it against the consumer's prefetch. When every
// message the broker let the consumer have is held, nothing else would come (and a requeued
// message goes back to the head of the queue): the consumer subscribes again, which gives it a
// fresh prefetch window for the messages behind, and cancels the old subscription (its held
// messages stay on the channel, to be requeued). Only while at most `max(prefetch, 20)` are held,
// so `unsettled` stays within `prefetch + max(prefetch, 20)`.
import type { ChannelSession } from '../amqp/channel-session.js'
import type { LapinError } from '../errors.js'
import { LogLimiter } from '../util/log-limiter.js'
import type { Logger } from '../util/logger.js'
import type { AckBatcher } from './ack-batcher.js'
import type { Message } from './message.js'

/** A consumer's subscription on its channel. */
export interface Subscription {
  session: ChannelSession
  acks: AckBatcher
  tag: string
}

/** What the resubscriber needs of its consumer. */
export interface ResubscribeHost {
  /** The subscription to replace: undefined unless the consumer runs, subscribed. */
  current(): Subscription | undefined
  /** A new subscription on `session`: its tag. */
  subscribe(session: ChannelSession, acks: AckBatcher): Promise<string>
  /** Makes `tag` the consumer's; false when it no longer runs on `session` (the tag is not kept). */
  adopt(session: ChannelSession, tag: string): boolean
  /** Messages held for their backoff, and messages delivered but not settled (held included). */
  held(): number
  unsettled(): number
  queue(): string
  logger(): Logger
}

/** @internal A consumer's re-subscribes past its held messages. */
export class Resubscriber {
  readonly #host: ResubscribeHost
  readonly #prefetch: number
  readonly #maxHeld: number
  /** See the consumer's options: false for streams, single-active-consumer queues, exclusive consumers. */
  #enabled: boolean
  /** A re-subscribe in flight. */
  #inFlight: Promise<void> | undefined
  /** A delivery came since the last re-subscribe: without one, another would change nothing. */
  #deliveredSince = true
  /** At most one debug line a second. */
  readonly #log = new LogLimiter()

  constructor(host: ResubscribeHost, prefetch: number, enabled: boolean) {
    this.#host = host
    this.#prefetch = prefetch
    this.#maxHeld = Math.max(prefetch, 20)
    this.#enabled = enabled
  }

  /** The re-subscribe in flight: stop() waits for it (it cancels its new subscription itself). */
  get inFlight(): Promise<void> | undefined {
    return this.#inFlight
  }

  /** A delivery arrived. */
  delivered(): void {
    this.#deliveredSince = true
  }

  /** The channel closed: the next one starts afresh. */
  reset(): void {
    this.#deliveredSince = true
  }

  /** A failed message is held for its backoff: the messages behind it may need room. */
  held(message: Message): void {
    // A stream's delivery (a stream declared elsewhere): it would start again at its offset.
    if (message.headers['x-stream-offset'] !== undefined) this.#enabled = false
    this.check()
  }

  /** Subscribes again if every message the broker let the consumer have is held (see above). */
  check(): void {
    if (!this.#enabled || this.#inFlight !== undefined || !this.#deliveredSince) return
    const host = this.#host
    const held = host.held()
    if (held < this.#prefetch || held > this.#maxHeld || host.unsettled() > held) return
    const current = host.current()
    if (current === undefined) return
    this.#inFlight = this.#resubscribe(current).finally(() => {
      this.#inFlight = undefined
      // Messages that failed while it went on (the new subscription's first ones) are held too.
      this.check()
    })
  }

  async #resubscribe({ session, acks, tag: old }: Subscription): Promise<void> {
    this.#deliveredSince = false
    const host = this.#host
    try {
      const tag = await host.subscribe(session, acks)
      if (!host.adopt(session, tag)) {
        // Stopped or closed meanwhile: the new subscription is not kept.
        if (session.open) await session.cancel(tag)
        return
      }
      await session.cancel(old)
      const suppressed = this.#log.take()
      if (suppressed !== undefined) {
        const fields = { queue: host.queue(), held: host.held(), suppressed }
        host.logger().debug(fields, 'lapinmq: subscribed again past held messages')
      }
    } catch (err) {
      // The channel is closing: its close handler starts the consumer again.
      host.logger().debug({ code: (err as LapinError).code }, 'lapinmq: could not subscribe again')
    }
  }
}
