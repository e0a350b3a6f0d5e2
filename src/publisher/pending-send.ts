import type { Span } from '@opentelemetry/api'
import type { PublishOptions } from '../amqp/channel-session.js'
import type { LapinError, UnroutableError } from '../errors.js'
import type { PublisherCounters } from '../telemetry/stats.js'
import { endSendSpan } from '../telemetry/tracing.js'
import { Fifo } from '../util/fifo.js'
import type { Logger } from '../util/logger.js'
import type { PublishCallbacks } from './options.js'

const noop = (): void => {}

/** One send on its way: its message, deadline, promise, and how to settle it. A class, for one stable shape on the hot path. */
export class PendingSend {
  readonly exchange: string
  readonly routingKey: string
  readonly body: Buffer
  readonly options: PublishOptions
  /** `Date.now()` value past which the send fails with a timeout. */
  readonly deadline: number
  readonly callbacks: PublishCallbacks | undefined
  /** What the caller awaits. Made pre-handled (`catch`) only when it is about to reject. */
  readonly promise: Promise<void>
  resolve: () => void = noop
  reject: (error: LapinError) => void = noop
  /** Set by `basic.return`; the send rejects with it when its confirm arrives. */
  returned: UnroutableError | undefined = undefined
  /** Published at least once (it may then have been put back to be republished after a drop). */
  sent = false
  /** Nacked, and put back to go out again on a fresh channel (see FailoverNacks): its deadline rejects it as nacked. */
  nacked = false
  done = false
  /** Its span, when the send is traced: ended with its outcome. */
  span: Span | undefined = undefined
  /** The publisher's counters: told of the outcome. */
  stats: PublisherCounters | undefined = undefined
  /** `performance.now()` at its last write to a channel (0: never written). */
  publishedAt = 0

  constructor(
    exchange: string,
    routingKey: string,
    body: Buffer,
    options: PublishOptions,
    deadline: number,
    callbacks: PublishCallbacks | undefined,
  ) {
    this.exchange = exchange
    this.routingKey = routingKey
    this.body = body
    this.options = options
    this.deadline = deadline
    this.callbacks = callbacks
    this.promise = new Promise<void>(capture)
    this.resolve = captured.resolve
    this.reject = captured.reject
  }
}

/** The resolvers of the promise just made: one shared executor rather than a closure per send. */
const captured: { resolve: () => void; reject: (error: LapinError) => void } = { resolve: noop, reject: noop }
function capture(resolve: () => void, reject: (error: LapinError) => void): void {
  captured.resolve = resolve
  captured.reject = reject
}

/** Settles a send exactly once: promise first, then its callback (a throwing callback is logged, not spread). */
export function settleSend(pending: PendingSend, error: LapinError | undefined, logger: Logger): void {
  if (pending.done) return
  pending.done = true
  if (pending.span !== undefined) endSendSpan(pending.span, error)
  pending.stats?.settled(error?.code)
  const cb = pending.callbacks
  try {
    if (error) {
      // A handler attached before the rejection: a caller that never awaits gets no unhandled rejection.
      pending.promise.catch(noop)
      pending.reject(error)
      cb?.nackCallback?.(error)
    } else {
      pending.resolve()
      cb?.ackCallback?.()
    }
  } catch (err) {
    logger.error({ err: (err as Error)?.message }, 'lapinmq: a publish callback threw')
  }
}

/** Sends waiting to be published, oldest first, with the bytes of their bodies counted: both are bounded. */
export class WaitingSends {
  readonly #fifo = new Fifo<PendingSend>()
  #bytes = 0

  get length(): number {
    return this.#fifo.length
  }

  /** Bytes of the bodies waiting. */
  get bytes(): number {
    return this.#bytes
  }

  push(pending: PendingSend): void {
    this.#bytes += pending.body.length
    this.#fifo.push(pending)
  }

  unshift(pending: PendingSend): void {
    this.#bytes += pending.body.length
    this.#fifo.unshift(pending)
  }

  peek(): PendingSend | undefined {
    return this.#fifo.peek()
  }

  shift(): PendingSend | undefined {
    const pending = this.#fifo.shift()
    if (pending) this.#bytes -= pending.body.length
    return pending
  }

  /** Removes and returns every send. */
  drain(): PendingSend[] {
    this.#bytes = 0
    return this.#fifo.drain()
  }
}
