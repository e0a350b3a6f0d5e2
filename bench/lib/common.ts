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
  returned: number
  /** Deliveries flagged redelivered (S10). */
  redelivered: number
  /** Connections the broker (or the network) dropped during the run (S10). */
  connectionsLost: number
  /** S11: tasks that returned FAIL_RETRY_LATER. */
  failed: number
  /** S11: deliveries with `message.attempt` 2 or more (back from a delay queue). */
  retried: number
  /**
   * S11: dead-letterings out of a delay queue, as the broker wrote them in the `x-death` header
   * (the sum of its `count`s for the ladder's delay queues) of the messages that came back.
   */
  deadLettered: number
  /** S12: calls that rejected (timed out, channel closed). */
  callErrors: number
  /** S12: replies that were not the echo of their request's body. */
  mismatched: number
  /** S14: spans the OpenTelemetry SDK exported (the peer with the SDK). */
  spans: number
}

export function newCounts(): Counts {
  return {
    sent: 0,
    confirmed: 0,
    received: 0,
    nacked: 0,
    returned: 0,
    redelivered: 0,
    connectionsLost: 0,
    failed: 0,
    retried: 0,
    deadLettered: 0,
    callErrors: 0,
    mismatched: 0,
    spans: 0,
  }
}

/** Marks the measured part of a run: setup before start(), teardown after stop(). */
export interface Marks {
  start(): void
  stop(): void
  /** Records one confirm latency, from the performance.now() taken when the send was made. */
  latency(t0: number): void
  /** Records one consumer latency (publish → delivery), from the publisher's performance.now(). */
  consumerLatency(t0: number): void
}

/** A consumer's task in S5: none, 1 ms of waiting (a timer), or 1 ms of CPU (a busy loop). */
export type Task = 'noop' | 'async' | 'cpu'

/** One point of a scenario's sweep; the fields a scenario does not use keep their defaults. */
export interface Variant {
  label: string
  /** Publish scenarios: how long to publish, in ms. */
  durationMs: number
  /** Consume scenarios: how many messages to prefill (and handle). */
  count: number
  /** Unconfirmed messages in flight (1 = sync); 0 = no confirms (S0, S1); S12: calls in flight. */
  window: number
  prefetch: number
  /** Body size in bytes. @default flags.size */
  size?: number
  /**
   * S3: publish objects (~100 B of JSON, see `jsonValue`) serialized the way each peer's docs show,
   * not the pre-built Buffer body. @default false
   */
  json?: boolean
  /** @default flags.persistent */
  persistent?: boolean
  /** S5 task. @default 'noop' */
  task?: Task
  /** S10: the connection's heartbeat (s) and how long each task blocks the event loop (ms). */
  heartbeat?: number
  blockMs?: number
  /** S6: fixed publish rate, msg/s. */
  rate?: number
  /** S8: round trip added by the delaying proxy, ms. */
  rttMs?: number
  /** S7, S8: lapinmq's publisher kind. @default 'async' */
  publisher?: 'sync' | 'async'
  /** S9: sample RSS each second while publishing. */
  sampleRss?: boolean
  /** S11: the lapinmq consumer's `retry.delays` (the peers that use a retry ladder). */
  retryDelays?: readonly number[]
  /** S11: the first delivery of every Nth message fails (FAIL_RETRY_LATER); 0 = none fails. */
  failEvery?: number
  /** Prefilled messages carry `messageId` '0', '1', … (S11 pairs a failure with its redelivery). */
  messageIds?: boolean
  /** S12: each peer calls a server written with its own library, not the shared echo server. */
  ownServer?: boolean
  /** S14: S7's pipeline (prefilled A → B), not S3's publisher. */
  pipeline?: boolean
  /** Queue arguments (S9: a bounded queue). */
  queueArgs?: Record<string, unknown>
  /** Only these peers run this variant. @default all the scenario's peers */
  peers?: readonly string[] | undefined
  /** Rounds of this variant. @default the run's --rounds */
  rounds?: number | undefined
  /** A shorter run of each peer before the rounds (the first variant of a scenario only). @default true */
  warmUp?: boolean
  /**
   * A warm-up of its own even when it is not the scenario's first variant (S14: S7's pipeline after
   * S3's publisher, code the first warm-up did not run). @default false
   */
  ownWarmUp?: boolean
}

/** One run of one peer in one scenario. */
export interface RunContext extends Variant {
  /** The queue published to or consumed from (the source A in S7). */
  queue: string
  /** The sink B of the S7 pipeline. */
  sink: string
  /** Where peers connect: the broker, or the delaying proxy in S8. */
  url: string
  body: Buffer
  persistent: boolean
  marks: Marks
  counts: Counts
  /** S9: RSS samples (MB), one a second, taken by the peer's run. */
  rss: number[]
}

export type PeerRun = (ctx: RunContext) => Promise<void>

/** What the runner learnt about a run, for the scenario's verdict. */
export interface Check {
  counts: Counts
  /** Messages prefilled in A. */
  prefilled: number
  /** Queue A's depth after the peer closed. */
  left: number
  /** Queue B's depth (S7). */
  inSink: number
  /** Messages left in the retry ladder's delay and dead-letter queues (S11). */
  ladderLeft: number
  /** S12: requests the RPC server answered. */
  served: number
}

/** S12's RPC servers: the plain amqplib echo server, or one written with lapinmq or rabbitmq-client. */
export type RpcServerKind = 'echo' | 'lapinmq' | 'rabbitmq-client'

/** A scenario runner: its peers, in the order they are interleaved. */
export interface Scenario {
  id: string
  title: string
  /** The headline rate: msgs sent, confirmed or received per second. */
  headline: 'sent' | 'confirmed' | 'received'
  /** Messages in the queue before the peer starts (S5, S7). */
  prefill: (variant: Variant) => number
  /** S7 has a sink queue B. */
  sink?: boolean
  /** S11: the retry ladder's queues a peer declares for `queue` (counted, then deleted, by the runner). */
  ladderQueues?: (queue: string, variant: Variant, peer: string) => string[]
  /**
   * S12: the RPC server the runner starts on the run's queue (in a process of its own, see
   * lib/rpc-server.ts) before the peer runs, and stops after: its kind, by variant and peer.
   */
  server?: (variant: Variant, peer: string) => RpcServerKind
  /** Peers that run only in the variants whose `peers` name them (the pooled variants' peers). */
  variantOnlyPeers?: readonly string[]
  /** More flags for some peers' node processes, by peer (S14: the hook that hides the OTel API). */
  peerNodeArgs?: Record<string, readonly string[]>
  /** Counts agree with the broker's: nothing lost, duplicated or nacked. */
  verify: (check: Check, variant: Variant) => boolean
  peers: Record<string, PeerRun>
}

/** Publishers (S3) or pipelines (S7) of the pooled variants, spread over a pool of `size` connections. */
export const pooledWorkers = 4
export const poolSizes = [1, 2, 4] as const
/** The peer of the pooled variants that runs them on a pool of `size` connections. */
export const poolPeer = (size: number): string => `lapinmq, pool of ${size}`
export const poolPeers: readonly string[] = poolSizes.map(poolPeer)

/** The minimal raw client of S0: the broker's ceiling, not a peer; no ratios are taken against it. */
export const ceilingPeer = 'raw (S0)'

/** Publish scenarios: the sender's counts match the broker's. */
export function publishVerified({ counts, left }: Check, variant: Variant): boolean {
  if (counts.nacked !== 0 || counts.returned !== 0) return false
  if (variant.window === 0) return left === counts.sent
  return counts.sent === counts.confirmed && left === counts.confirmed
}

/**
 * The JSON variant's message: a fresh object for each send (as an application builds one per
 * event), ~100 bytes once serialized (98–104 as `id` grows). Every peer serializes it itself.
 */
export function jsonValue(id: number): JsonValue {
  return { id, type: 'order.created', customer: 'c-004821', amount: 129.95, currency: 'EUR', paid: true }
}

/** A type, not an interface: @cloudamqp/amqp-client's publish() wants an index signature. */
export type JsonValue = {
  id: number
  type: string
  customer: string
  amount: number
  currency: string
  paid: boolean
}

/** A body of `size` bytes (the first 8 hold a timestamp in S6). */
export function bodyOf(size: number): Buffer {
  return Buffer.alloc(size, 'x')
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
