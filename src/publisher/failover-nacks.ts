import type { PendingSend } from './pending-send.js'

/**
 * How long after a change (the connection recovered, or the publisher's channel was lost) a new
 * channel's nacks may be the broker's failover artefact rather than a refusal.
 */
export const failoverWindowMs = 30_000

/** The delay before the n-th replacement of a channel that only nacks (from 0): 250 ms, doubling to 2 s. */
export function replacementDelay(n: number): number {
  return Math.min(250 * 2 ** Math.min(n, 3), 2_000)
}

/**
 * Tells a nack worth sending again from one that must reach its caller.
 *
 * A RabbitMQ cluster (3.10 at least) nacks every publish to a quorum queue on a channel whose
 * first publish to that queue came while the queue's leader was gone — as a channel opened right
 * after a failover does — until the old leader's node is back, and for ever if it is lost; a
 * channel opened once a new leader is elected is fine. A nack for any other reason (a full queue
 * with `x-overflow: reject-publish`, ...) looks the same on the wire, and must reach the caller at
 * once. What tells them apart is when they happen: on a channel opened within
 * {@link failoverWindowMs} of a change, a nack for a destination (exchange and routing key) that
 * the channel has never confirmed is sent again on a fresh channel, within the send's deadline.
 * Anywhere else, a nack is final.
 */
export class FailoverNacks {
  /** The channel was opened within the window after a change: its nacks may be an artefact. */
  #suspect = false
  /** Destinations the channel confirmed a send to (exchange → routing keys); kept only while suspect. */
  readonly #confirmed = new Map<string, Set<string>>()

  /** A new channel: suspect when opened within the window after a change (`changedAt`, ms since epoch). */
  channelOpened(changedAt: number | undefined, now = Date.now()): void {
    this.#suspect = changedAt !== undefined && now - changedAt < failoverWindowMs
    this.#confirmed.clear()
  }

  /** The channel confirmed `pending`: nacks to its destination are final from now on. */
  confirmed(pending: PendingSend): void {
    if (!this.#suspect) return
    let keys = this.#confirmed.get(pending.exchange)
    if (keys === undefined) {
      keys = new Set()
      this.#confirmed.set(pending.exchange, keys)
    }
    keys.add(pending.routingKey)
  }

  /** True when the nacked `pending` should go out again on a fresh channel rather than fail. */
  sendAgain(pending: PendingSend, now: number): boolean {
    return (
      this.#suspect &&
      pending.returned === undefined &&
      pending.deadline > now &&
      this.#confirmed.get(pending.exchange)?.has(pending.routingKey) !== true
    )
  }
}
