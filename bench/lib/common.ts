// Shared settings and helpers of the benchmark: the broker URL, the message, the flags every peer
// uses, and a sliding window for peers whose publish API has none of its own.

/** The shared broker; never reconfigured, only fresh queues declared and deleted. */
export const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672/'

/** Same flags for every peer: 100-byte transient messages, mandatory, Nagle off. */
export const flags = { size: 100, persistent: false, mandatory: true, noDelay: true } as const

export const body = Buffer.alloc(flags.size, 'x')

/** What a peer reports back; the runner checks them against the broker's queue counts. */
export interface Counts {
  sent: number
  confirmed: number
  received: number
  nacked: number
}

export function newCounts(): Counts {
  return { sent: 0, confirmed: 0, received: 0, nacked: 0 }
}

/** Marks the measured part of a run: setup before start(), teardown after stop(). */
export interface Marks {
  start(): void
  stop(): void
  /** Records one confirm latency, from the performance.now() taken when the send was made. */
  latency(t0: number): void
}

/** One run of one peer in one scenario. */
export interface RunContext {
  /** The queue published to or consumed from (the source A in S7). */
  queue: string
  /** The sink B of the S7 pipeline. */
  sink: string
  /** Publish scenarios: how long to publish, in ms. */
  durationMs: number
  /** Consume scenarios: how many messages were prefilled (and must all be handled). */
  count: number
  window: number
  prefetch: number
  marks: Marks
  counts: Counts
}

export type PeerRun = (ctx: RunContext) => Promise<void>

/** A scenario runner: its peers, in the order they are interleaved. */
export interface Scenario {
  id: string
  title: string
  /** Messages in the queue before the peer starts (S5, S7). */
  prefill: (ctx: { count: number }) => number
  peers: Record<string, PeerRun>
}

/**
 * A window of in-flight sends for one producer loop: acquire() before a send (a promise only when
 * the window is full), release() on its confirm, idle() once everything sent is settled.
 */
export class Window {
  #free: number
  #waiter: (() => void) | undefined
  #idle: (() => void) | undefined
  readonly #size: number

  constructor(size: number) {
    this.#size = size
    this.#free = size
  }

  acquire(): Promise<void> | undefined {
    if (this.#free > 0) {
      this.#free--
      return undefined
    }
    return new Promise((resolve) => {
      this.#waiter = resolve
    })
  }

  release(): void {
    const waiter = this.#waiter
    if (waiter) {
      this.#waiter = undefined
      waiter()
      return
    }
    this.#free++
    if (this.#free === this.#size && this.#idle) {
      const idle = this.#idle
      this.#idle = undefined
      idle()
    }
  }

  idle(): Promise<void> {
    if (this.#free === this.#size) return Promise.resolve()
    return new Promise((resolve) => {
      this.#idle = resolve
    })
  }
}

/** A promise with its resolve, for "the last message was handled". */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {}
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}
